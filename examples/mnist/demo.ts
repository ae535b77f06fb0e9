/**
 * The default run (and its `--quick` smoke version): one teacher, one
 * student trained on the labels alone, the same student distilled; a
 * compression table and a report with learning curves.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { cachedTeacher, compressionReport, type CompressionReport } from '../../src/index.js';
import { toTensors } from '../shared/mnist.js';
import { markdownTable } from '../shared/table.js';
import { learningCurvesSvg } from './chart.js';
import { EpochBatches, loadDemoData } from './data.js';
import { writeReport } from './report.js';
import { architecture, buildMlp, distill, trainOnLabels, type EpochPoint, type MlpSpec, type TrainingRun } from './train.js';

/** Everything a demo run does, in one place. */
export interface DemoSettings {
  /** Seeds the split, every initialization, the order and shifts of every epoch, and dropout. */
  seed: number;
  /** Keep only this many training digits (smoke runs); all 8,000 when undefined. */
  trainLimit?: number;
  teacher: MlpSpec;
  teacherEpochs: number;
  /** The teacher trains on digits shifted by up to this many pixels, redrawn every epoch (Hinton et al. 2015, §3). */
  teacherShift: number;
  student: MlpSpec;
  /** Both students get the same budget. */
  studentEpochs: number;
  /** Adam, every model. */
  learningRate: number;
  batchSize: number;
  temperature: number;
  /** Weight of the hard-label loss; 1 − alpha goes to the teacher's soft targets. */
  alpha: number;
  /** Timed inference runs per model in the compression report. */
  latencyRepeats: number;
}

/**
 * `npm run demo`: about 3 minutes of CPU (wasm with kd-ts's kernels, one
 * thread). Seed 0 of `--full` cut to three of its models: the 2×1200 teacher
 * (dropout, jitter, 20 epochs) and Hinton et al.'s small 64-unit student,
 * 47× smaller, on the labels and distilled. T=1: in `--full`'s sweep (3
 * seeds, 20 epochs) it was the only temperature that helped the 64-unit
 * student on every seed (T=2 was even, T=4 and 8 hurt); that sweep scored on
 * the same test sets, so the choice is not independent of them.
 */
export const DEFAULT_DEMO: DemoSettings = {
  seed: 0,
  teacher: { hidden: [1200, 1200], inputDropout: 0.2, dropout: 0.5 },
  teacherEpochs: 20,
  teacherShift: 2,
  student: { hidden: [64] },
  studentEpochs: 20,
  learningRate: 1e-3,
  batchSize: 128,
  temperature: 1,
  alpha: 0.5,
  latencyRepeats: 7,
};

/** `npm run demo -- --quick`: proves the pipeline end to end in seconds (the numbers mean nothing). */
export const QUICK_DEMO: DemoSettings = {
  ...DEFAULT_DEMO,
  trainLimit: 1000,
  teacher: { hidden: [128, 128], inputDropout: 0.2, dropout: 0.5 },
  teacherEpochs: 2,
  student: { hidden: [32] },
  studentEpochs: 2,
  latencyRepeats: 3,
};

/** One model's line in the table. */
interface ModelResult {
  name: string;
  run: TrainingRun;
}

/**
 * Trains the three models, prints the compression table, and writes the
 * report (Markdown, learning-curve SVG, JSON) to `outDir`.
 *
 * @param settings - See {@link DemoSettings}.
 * @param outDir - Report folder (created if missing).
 * @param log - Progress lines.
 */
export async function runDemo(settings: DemoSettings, outDir: string, log: (line: string) => void): Promise<void> {
  const started = performance.now();
  const split = loadDemoData({ seed: settings.seed, trainLimit: settings.trainLimit });
  const test = toTensors(split.test);
  const scoreOn = { x: test.x, labels: split.test.labels };
  log(`MNIST (mnist package): ${split.train.size} train, ${split.test.size} test digits; backend ${tf.getBackend()}, seed ${settings.seed}`);

  const batches = (options: { oneHot: boolean; maxShift: number; ids?: boolean }) =>
    new EpochBatches(split.train, { batchSize: settings.batchSize, seed: `${settings.seed}/batches`, ...options });
  const progress = (name: string, epochs: number) => (p: EpochPoint) =>
    log(`  ${name} epoch ${p.epoch}/${epochs}: ${p.testErrors} test errors, train loss ${p.trainLoss.toFixed(4)}`);

  const teacherName = `teacher ${architecture(settings.teacher)}`;
  const teacher = buildMlp(settings.teacher, `${settings.seed}/teacher`);
  log(`training ${teacherName} on the labels (dropout, ±${settings.teacherShift}-pixel shifts), ${settings.teacherEpochs} epochs...`);
  const teacherRun = await trainOnLabels(teacher, batches({ oneHot: true, maxShift: settings.teacherShift }), {
    epochs: settings.teacherEpochs,
    learningRate: settings.learningRate,
    seed: `${settings.seed}/teacher`,
    test: scoreOn,
    onEpoch: progress('teacher', settings.teacherEpochs),
  });

  // Same architecture, same initial weights, same batches in the same order:
  // the students differ only in what they learn from.
  const studentName = `student ${architecture(settings.student)}`;
  const scratch = buildMlp(settings.student, `${settings.seed}/student`);
  const distilled = buildMlp(settings.student, `${settings.seed}/student`);
  const studentOptions = { epochs: settings.studentEpochs, learningRate: settings.learningRate, seed: `${settings.seed}/student`, test: scoreOn };
  log(`training ${studentName} on the labels, ${settings.studentEpochs} epochs...`);
  const scratchRun = await trainOnLabels(scratch, batches({ oneHot: true, maxShift: 0 }), {
    ...studentOptions,
    onEpoch: progress('labels only', settings.studentEpochs),
  });
  log(`distilling into ${studentName} (T=${settings.temperature}, alpha=${settings.alpha}), ${settings.studentEpochs} epochs...`);
  // The students read unshifted digits, so the teacher's outputs can be computed
  // once per digit (first epoch) and served from memory afterwards.
  const distilledRun = await distill(cachedTeacher(teacher), distilled, batches({ oneHot: false, maxShift: 0, ids: true }), {
    ...studentOptions,
    temperature: settings.temperature,
    alpha: settings.alpha,
    onEpoch: progress('distilled', settings.studentEpochs),
  });

  log('measuring size, accuracy, agreement and inference time (compressionReport)...');
  const measure = (student: tfl.LayersModel) =>
    compressionReport({ teacher, student, x: test.x, labels: test.y, repeats: settings.latencyRepeats, latencyRows: 1000 });
  const scratchReport = await measure(scratch);
  const distilledReport = await measure(distilled);

  const models: ModelResult[] = [
    { name: teacherName, run: teacherRun },
    { name: `${studentName}, labels only`, run: scratchRun },
    { name: `${studentName}, distilled (T=${settings.temperature}, alpha=${settings.alpha})`, run: distilledRun },
  ];
  const table = compressionTable(models, [scratchReport, distilledReport]);
  const wallSeconds = (performance.now() - started) / 1000;
  log('');
  log(table);

  const svg = await learningCurvesSvg(
    models.map((m) => ({ model: m.name, curve: m.run.curve })),
    split.test.size,
    `MNIST, ${split.train.size.toLocaleString('en-US')} training digits, seed ${settings.seed}`,
  );
  const files = await writeReport(outDir, {
    title: 'kd-ts MNIST demo',
    settings,
    backend: tf.getBackend(),
    wallSeconds,
    table,
    svg,
    results: {
      models: models.map((m) => ({ name: m.name, seconds: m.run.seconds, curve: m.run.curve })),
      compression: { scratch: scratchReport, distilled: distilledReport },
    },
  });
  log(`\nreport: ${files.markdown} (learning curves: ${files.svg}); wall time ${wallSeconds.toFixed(0)} s`);

  tf.dispose([test.x, test.y]);
  for (const model of [teacher, scratch, distilled]) model.dispose();
}

/**
 * The table: every column of the two compression reports, each student
 * against the teacher. The teacher's own line comes from the first report.
 */
function compressionTable(models: ModelResult[], reports: [CompressionReport, CompressionReport]): string {
  const teacher = reports[0].teacher;
  const rows = reports[0].rows;
  const errors = (accuracy: number | undefined) => Math.round((1 - (accuracy ?? NaN)) * rows);
  const teacherErrors = errors(teacher.accuracy);
  const header = [
    'model',
    'parameters',
    'saved size',
    `test errors (of ${rows.toLocaleString('en-US')})`,
    'test accuracy',
    'agreement with teacher',
    'ms per 1,000 images',
    'train time',
  ];
  const lines = [
    [
      models[0]!.name,
      integer(teacher.parameters),
      megabytes(teacher.bytes),
      String(teacherErrors),
      percent(teacher.accuracy),
      '-',
      teacher.latencyMsPer1000.toFixed(1),
      seconds(models[0]!.run.seconds),
    ],
    ...reports.map((report, i) => {
      const student = report.student;
      const studentErrors = errors(student.accuracy);
      const delta = studentErrors - teacherErrors;
      return [
        models[i + 1]!.name,
        `${integer(student.parameters)} (${report.ratios.parameters.toFixed(1)}× fewer)`,
        `${megabytes(student.bytes)} (${report.ratios.bytes.toFixed(1)}× smaller)`,
        `${studentErrors} (${delta >= 0 ? '+' : ''}${delta})`,
        percent(student.accuracy),
        percent(report.agreement),
        `${student.latencyMsPer1000.toFixed(1)} (${report.ratios.latency.toFixed(1)}× faster)`,
        seconds(models[i + 1]!.run.seconds),
      ];
    }),
  ];
  return markdownTable(header, lines);
}

function integer(value: number): string {
  return value.toLocaleString('en-US');
}

function megabytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

function percent(share: number | undefined): string {
  return share === undefined ? '-' : `${(share * 100).toFixed(2)} %`;
}

function seconds(value: number): string {
  return `${value.toFixed(1)} s`;
}
