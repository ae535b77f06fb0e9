/**
 * The BiLSTM student's inference speed (forward only, no tape) on wasm with
 * kd-ts's kernels, at batch 1 and 64, FastLSTM against tfjs-layers' LSTM,
 * next to PyTorch on one thread in the same run
 * (bench/reference/bilstm_infer.py), and next to the teacher it is distilled
 * from in examples/sst2: Kim's CNN (filters of widths 3, 4 and 5, 100 each,
 * over a 300-d embedding; random weights, the same vocabulary and tokens).
 *
 * Run: `npx tsx bench/inference.ts [--runs 7] [--no-torch]`
 *
 * Each figure: median over `--runs` timed runs of the milliseconds per
 * `model.predict` (outputs read back), after 3 warm-up calls; a run repeats
 * calls for ≥ 0.3 s. Shared machines are noisy: read the ratios.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { withSeed } from '../src/index.js';
import { enableWasmTraining } from '../src/backend/wasm.js';
import { benchCase, MODEL_SETTINGS, type LstmKind } from './models.js';
import { loadAverage, machine, median, printTable } from './util.js';
import { TextCnn } from '../examples/sst2/textCnn.js';

const BATCHES = [1, 64] as const;

function timePredict(lstm: LstmKind, batch: number, runs: number): number {
  const c = withSeed(0, () => benchCase('bilstm', lstm));
  const tokens = tf.randomUniform([batch, MODEL_SETTINGS.bilstm.tokens], 1, MODEL_SETTINGS.bilstm.vocabulary, 'int32', 11);
  const ms = timeCalls(() => c.student.predict(tokens) as tf.Tensor, runs);
  tf.dispose([tokens, c.inputs, c.teacherLogits]);
  c.student.dispose();
  return ms;
}

/** The SST-2 example's teacher, one Kim CNN, on the same token ids. */
function timeCnn(batch: number, runs: number): number {
  const cnn = withSeed(0, () => new TextCnn({ vocabSize: MODEL_SETTINGS.bilstm.vocabulary }));
  const tokens = tf.randomUniform([batch, MODEL_SETTINGS.bilstm.tokens], 1, MODEL_SETTINGS.bilstm.vocabulary, 'int32', 11);
  const ms = timeCalls(() => cnn.apply(tokens), runs);
  tokens.dispose();
  tf.dispose(cnn.variables);
  return ms;
}

/** Median ms per call of `forward` (outputs read back) over `runs` runs of ≥ 0.3 s, after 3 warm-up calls. */
function timeCalls(forward: () => tf.Tensor, runs: number): number {
  const predict = () => {
    const y = forward();
    y.dataSync();
    y.dispose();
  };
  for (let i = 0; i < 3; i++) predict();
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    let n = 0;
    let elapsed = 0;
    do {
      predict();
      n++;
      elapsed = performance.now() - started;
    } while (elapsed < 300);
    times.push(elapsed / n);
  }
  return median(times);
}

function torchTimes(runs: number): Record<string, number> | string {
  const script = fileURLToPath(new URL('./reference/bilstm_infer.py', import.meta.url));
  const out = spawnSync('/usr/bin/python3', [script, '--runs', String(runs)], { encoding: 'utf8' });
  if (out.status !== 0) return `PyTorch failed: ${(out.stderr || out.error?.message || '').trim().split('\n').pop() ?? ''}`;
  return (JSON.parse(out.stdout) as { ms_per_batch: Record<string, number> }).ms_per_batch;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, 'no-torch': { type: 'boolean', default: false } } });
  const runs = Math.max(3, Number(values.runs) || 7);
  const loadBefore = loadAverage();
  const torch = values['no-torch'] ? 'skipped (--no-torch)' : torchTimes(runs);
  tf.env().set('PROD', true);
  enableWasmTraining();
  if (!(await tf.setBackend('wasm'))) throw new Error('could not start the wasm backend');
  const rows: string[][] = [];
  for (const batch of BATCHES) {
    const reference = typeof torch === 'string' ? undefined : torch[String(batch)];
    for (const lstm of ['fast', 'tfjs'] as const) {
      const ms = timePredict(lstm, batch, runs);
      const label = lstm === 'fast' ? 'kd-ts FastLSTM' : 'tfjs-layers LSTM';
      rows.push([String(batch), label, ms.toFixed(2), (ms / batch).toFixed(3), reference === undefined ? '–' : `${(reference / ms).toFixed(2)}×`]);
    }
    if (reference !== undefined) rows.push([String(batch), 'PyTorch CPU, 1 thread', reference.toFixed(2), (reference / batch).toFixed(3), '1×']);
    const cnn = timeCnn(batch, runs);
    // Another model: no ratio to PyTorch's BiLSTM.
    rows.push([String(batch), 'Kim CNN teacher (tfjs, wasm)', cnn.toFixed(2), (cnn / batch).toFixed(3), '–']);
  }
  console.log(`BiLSTM student inference, wasm + enableWasmTraining(), 32 tokens (ms, lower is better); the CNN teacher for scale\n`);
  console.log(`- machine: ${machine()}; load average before: ${loadBefore}, after: ${loadAverage()}`);
  console.log(`- command: npx tsx bench/inference.ts --runs ${runs}${typeof torch === 'string' ? `; ${torch}` : ''}\n`);
  printTable(['batch', 'model', 'ms per batch (median)', 'ms per sentence', '× PyTorch speed'], rows);
}

await main();
