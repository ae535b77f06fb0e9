/**
 * Teachers from the JavaScript ML ecosystem, two runs:
 *
 * - SST-2 (default): a BERT-shaped classifier run by transformers.js scores
 *   Tang et al.'s augmented transfer set once into a TeacherCache; the BiLSTM
 *   student is distilled from it in tfjs (needs this folder's package:
 *   `npm ci --prefix examples/onnx-teacher`, and GLUE SST-2 in `--data`).
 * - MNIST (`--mnist`): a PyTorch CNN exported to ONNX, run by onnxruntime-web
 *   through onnxTeacher, teaches the MNIST demo's small MLP (kd-ts's dev
 *   dependencies only).
 *
 * Each prints a table: accuracy, parameters, ms per 1,000 rows for the
 * teacher (onnxruntime) and the student (tfjs wasm). See README.md.
 *
 * Run: `npx tsx examples/onnx-teacher/main.ts --data ../shared/data/sst2` or `... main.ts --mnist`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { pickTrainingBackend } from '../../src/index.js';
import { printMarkdownTable } from '../shared/table.js';

const USAGE = `usage: npx tsx examples/onnx-teacher/main.ts [--mnist] [options]
SST-2 (default; transformers.js teacher):
  --data <GLUE SST-2 folder>  (or env KD_SST2_DIR)   --train-rows N (default: all)   --epochs 1
  --aug-passes 1  --aug-seed 0  --teacher-batch-size 64  --threads 1  --teacher-out <file.npy|.jsonl|.arrow>
MNIST (--mnist; ONNX CNN teacher through onnxTeacher):
  --train-limit N (default: all 8,000 digits)  --epochs 30  --temperature 2  --alpha 0.5
Both: --seed 0  --batch-size (SST-2 50, MNIST 128)  --lr 0.001  --backend wasm|cpu  --quick  --out results.json`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mnist: { type: 'boolean', default: false },
      data: { type: 'string' },
      'train-rows': { type: 'string' },
      'train-limit': { type: 'string' },
      epochs: { type: 'string' },
      'aug-passes': { type: 'string', default: '1' },
      'aug-seed': { type: 'string', default: '0' },
      'teacher-batch-size': { type: 'string', default: '64' },
      threads: { type: 'string', default: '1' },
      'teacher-out': { type: 'string' },
      temperature: { type: 'string', default: '2' },
      alpha: { type: 'string', default: '0.5' },
      seed: { type: 'string', default: '0' },
      'batch-size': { type: 'string' },
      lr: { type: 'string', default: '0.001' },
      backend: { type: 'string', default: 'wasm' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const int = (value: string | undefined) => (value === undefined ? undefined : Number.parseInt(value, 10));
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: [values.backend === 'cpu' ? 'cpu' : 'wasm'] });
  console.log(choice.reasons.join('\n'));
  const started = performance.now();
  let results: unknown;

  if (values.mnist) {
    const { runMnist } = await import('./mnist.js');
    const settings = {
      seed: int(values.seed)!,
      trainLimit: int(values['train-limit']) ?? (values.quick ? 1000 : undefined),
      epochs: int(values.epochs) ?? (values.quick ? 1 : 30),
      hidden: [64],
      learningRate: Number(values.lr),
      batchSize: int(values['batch-size']) ?? 128,
      temperature: Number(values.temperature),
      alpha: Number(values.alpha),
      log: console.log,
    };
    const r = await runMnist(settings);
    results = { settings: { ...settings, log: undefined }, ...r };
    console.log(`\n## MNIST: ONNX CNN teacher (test errors of ${r.testDigits})\n`);
    printMarkdownTable(
      ['model', 'test errors', 'parameters', 'ms per 1,000 digits', 'runtime'],
      [
        ['teacher: CNN, PyTorch → ONNX', String(r.teacher.testErrors), r.teacher.parameters.toLocaleString('en-US'), r.teacher.msPer1000.toFixed(1), 'onnxruntime-web (wasm, 1 thread)'],
        [`MLP ${settings.hidden.join('-')} on labels`, String(r.labels.testErrors), r.student.parameters.toLocaleString('en-US'), '', ''],
        [`MLP ${settings.hidden.join('-')} distilled (T=${settings.temperature}, alpha ${settings.alpha})`, String(r.distilled.testErrors), r.student.parameters.toLocaleString('en-US'), r.student.msPer1000.toFixed(1), `tfjs ${tf.getBackend()}`],
      ],
    );
    console.log(`\nteacher scoring: ${r.teacher.scoringRowsPerSecond.toFixed(0)} rows/s; the cached teacher ran the session ${r.teacher.sessionRuns} times (first epoch only)`);
  } else {
    const data = values.data ?? process.env.KD_SST2_DIR;
    if (data === undefined) throw new Error(`--data <GLUE SST-2 folder> is required for the SST-2 run (or --mnist)\n${USAGE}`);
    const { runSst2 } = await import('./sst2.js');
    const settings = {
      data,
      trainRows: int(values['train-rows']) ?? (values.quick ? 1000 : undefined),
      epochs: int(values.epochs) ?? 1,
      augPasses: values.quick ? 0 : int(values['aug-passes'])!,
      augSeed: int(values['aug-seed'])!,
      maxLength: 50,
      teacherBatchSize: int(values['teacher-batch-size'])!,
      threads: int(values.threads)!,
      teacherOut: values['teacher-out'],
      seed: int(values.seed)!,
      batchSize: int(values['batch-size']) ?? 50,
      learningRate: Number(values.lr),
      dropout: 0,
      teacherMembers: 0,
      teacherEpochs: 0,
      log: console.log,
    };
    const r = await runSst2(settings);
    results = { settings: { ...settings, log: undefined, data: undefined }, ...r };
    const pct = (v: number) => (v * 100).toFixed(2);
    console.log(`\n## SST-2: transformers.js teacher, BiLSTM student (${r.trainRows} training rows, ${r.transferRows} in the transfer set)\n`);
    const [teacherSpeed, studentSpeed] = r.speed;
    printMarkdownTable(
      ['model', 'dev accuracy (%)', 'parameters', 'ms per 1,000 sentences', 'runtime'],
      [
        ['teacher: tiny BERT (transformers.js)', pct(r.teacher.devAccuracy), r.teacher.parameters.toLocaleString('en-US'), teacherSpeed!.msPer1000.toFixed(0), teacherSpeed!.runtime],
        ['BiLSTM on labels', pct(r.labels.devAccuracy), studentSpeed!.parameters.toLocaleString('en-US'), '', ''],
        [`BiLSTM distilled (MSE on logits, ${r.transferRows} rows)`, pct(r.distilled.devAccuracy), studentSpeed!.parameters.toLocaleString('en-US'), studentSpeed!.msPer1000.toFixed(0), studentSpeed!.runtime],
      ],
    );
    console.log(`\nteacher scoring: ${r.transferRows} rows in ${r.teacher.scoringSeconds.toFixed(1)} s (${r.teacher.rowsPerSecond.toFixed(0)} rows/s, ${r.teacher.modelCalls} model calls)`);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`\ntotal ${seconds.toFixed(0)} s, backend ${tf.getBackend()}`);
  if (values.out !== undefined) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify({ ...(results as object), totalSeconds: seconds }, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
