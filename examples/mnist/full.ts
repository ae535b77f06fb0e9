/**
 * `--full`: the Hinton et al. (2015, §3) MNIST recipe on the 8,000/2,000
 * split, per seed, against the bar a PyTorch run set on the same kind of split.
 *
 * Per seed: a 2×1200 teacher (dropout 0.2 on the pixels, 0.5 after each
 * hidden layer, ±2-pixel shifts); students of 2×800, 64 and 16 hidden units,
 * each trained on the labels alone and distilled at T=2, alpha=0.5 (the 2×800
 * also with shifts, and on the labels with shifts as a control; the small
 * ones also at T=1, 4 and 8). Every model: Adam, 40 epochs, final-epoch test
 * errors (no early stopping, no selection on the test set).
 *
 * Distillation without shifts reads the teacher's outputs through a
 * `cachedTeacher` shared by all such runs of a seed: the teacher scores each
 * training digit once. With shifts the teacher runs online on the shifted
 * batch the student reads.
 *
 * @packageDocumentation
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { cachedTeacher } from '../../src/index.js';
import { toTensors } from '../shared/mnist.js';
import { markdownTable } from '../shared/table.js';
import { learningCurvesSvg } from './chart.js';
import { EpochBatches, loadDemoData } from './data.js';
import { buildMlp, distill, trainOnLabels, type EpochPoint, type MlpSpec } from './train.js';

/** The recipe. */
export interface FullSettings {
  seeds: number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  teacher: MlpSpec;
  shift: number;
  temperature: number;
  alpha: number;
  /** Extra temperatures tried on the small students. */
  smallStudentTemperatures: number[];
}

/** Defaults of `--full`; `--seeds` and `--epochs` override. */
export const FULL_RECIPE: FullSettings = {
  seeds: [0, 1, 2],
  epochs: 40,
  batchSize: 128,
  learningRate: 1e-3,
  teacher: { hidden: [1200, 1200], inputDropout: 0.2, dropout: 0.5 },
  shift: 2,
  temperature: 2,
  alpha: 0.5,
  smallStudentTemperatures: [1, 4, 8],
};

/** One trained model of one seed. */
export interface RunResult {
  /** Stable key, e.g. `s800-kd-shift`. */
  key: string;
  label: string;
  testErrors: number;
  seconds: number;
  curve: EpochPoint[];
}

/** One student run of a seed. */
interface StudentJob {
  key: string;
  hidden: number[];
  /** Labels only, or distilled from the cached teacher (unshifted digits) or the teacher itself (shifted digits). */
  teacher: 'none' | 'cached' | 'online';
  shift: number;
  temperature?: number;
}

/** One row of the comparison with the PyTorch bar. */
interface BarRow {
  key: string;
  label: string;
  /** Test errors of the PyTorch run (of 2,000), when it measured this model. */
  bar?: number;
}

/** The PyTorch bar of issue #4 (one run), and the extra runs made here. */
const BAR: BarRow[] = [
  { key: 'teacher', label: 'teacher 2×1200, dropout, shifts', bar: 42 },
  { key: 's800-labels', label: '2×800 labels only', bar: 72 },
  { key: 's800-kd', label: '2×800 distilled (T=2, alpha=0.5)', bar: 55 },
  { key: 's800-kd-shift', label: '2×800 distilled, with shifts', bar: 38 },
  { key: 's800-labels-shift', label: '2×800 labels only, with shifts (control)' },
  { key: 's64-labels', label: '64 labels only', bar: 110 },
  { key: 's64-kd-T2', label: '64 distilled (T=2)', bar: 97 },
  { key: 's16-labels', label: '16 labels only', bar: 147 },
  { key: 's16-kd-T2', label: '16 distilled (T=2)', bar: 142 },
];

/**
 * Runs the recipe for every seed, writing each seed's results as soon as it
 * is done (`seed-N.json`), then the summary (`summary.md`, `summary.json`, a
 * chart) of every complete seed file in `outDir`: seeds run by separate
 * processes into one folder are summarized together by whichever ends last.
 *
 * @param settings - See {@link FullSettings}.
 * @param outDir - Folder for results.
 * @param log - Progress lines.
 */
export async function runFull(settings: FullSettings, outDir: string, log: (line: string) => void): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const started = performance.now();
  for (const seed of settings.seeds) {
    const results: RunResult[] = [];
    const seedStarted = performance.now();
    await runSeed(settings, seed, log, async (result) => {
      results.push(result);
      log(`[seed ${seed}] ${result.label}: ${result.testErrors} test errors (${result.seconds.toFixed(0)} s)`);
      const complete = results.length === runsPerSeed(settings);
      const seconds = (performance.now() - seedStarted) / 1000;
      await writeFile(path.join(outDir, `seed-${seed}.json`), `${JSON.stringify({ seed, complete, wallSeconds: seconds, settings, results }, null, 2)}\n`);
    });
  }
  const wallSeconds = (performance.now() - started) / 1000;
  log(`this process: seeds ${settings.seeds.join(', ')}, wall time ${(wallSeconds / 60).toFixed(1)} min`);
  await summarizeFull(settings, outDir, log);
}

/**
 * Summarizes every `seed-N.json` in `outDir` made with `settings.epochs`
 * (complete or not): `summary.md`, `summary.json` and a chart of the mean
 * learning curves. `--full --summarize` runs it alone, e.g. while seeds run.
 *
 * @param settings - The recipe (its epochs select the seed files).
 * @param outDir - Folder of the seed files.
 * @param log - Prints the summary.
 */
export async function summarizeFull(settings: FullSettings, outDir: string, log: (line: string) => void): Promise<void> {
  const bySeed = await readSeedFiles(outDir, settings);
  if (bySeed.size === 0) {
    log(`no seed-N.json made with ${settings.epochs} epochs in ${outDir}`);
    return;
  }
  const summary = summarize({ ...settings, seeds: [...bySeed.keys()] }, bySeed);
  log(`\n${summary}`);
  const keys = ['teacher', 's800-labels', 's800-labels-shift', 's800-kd', 's800-kd-shift'];
  const svg = await learningCurvesSvg(
    keys.map((key) => ({ model: labelOf(bySeed, key), curve: meanCurve([...bySeed.values()].map((runs) => runs.find((r) => r.key === key))) })),
    2000,
    `Full recipe: mean over seeds ${[...bySeed.keys()].join(', ')}`,
  );
  await writeFile(path.join(outDir, 'learning-curves.svg'), svg);
  await writeFile(path.join(outDir, 'summary.md'), `${summary}\n\nBackend ${tf.getBackend()}.\n\n![learning curves](learning-curves.svg)\n`);
  await writeFile(path.join(outDir, 'summary.json'), `${JSON.stringify({ settings, backend: tf.getBackend(), seeds: Object.fromEntries(bySeed) }, null, 2)}\n`);
}

/** Models trained per seed: the teacher, then per student its label-only and distilled runs. */
function runsPerSeed(settings: FullSettings): number {
  return 1 + 4 + 2 * (2 + settings.smallStudentTemperatures.length);
}

/** The `seed-N.json` files in `outDir` made with the same epochs (complete or not), by seed. */
async function readSeedFiles(outDir: string, settings: FullSettings): Promise<Map<number, RunResult[]>> {
  const bySeed = new Map<number, RunResult[]>();
  for (const name of (await readdir(outDir)).filter((n) => /^seed-\d+\.json$/.test(n)).sort()) {
    const file = JSON.parse(await readFile(path.join(outDir, name), 'utf8')) as { seed: number; complete: boolean; settings: FullSettings; results: RunResult[] };
    if (file.settings.epochs === settings.epochs) bySeed.set(file.seed, file.results);
  }
  return new Map([...bySeed.entries()].sort(([a], [b]) => a - b));
}

/** Trains every model of one seed, reporting each as it finishes. */
async function runSeed(settings: FullSettings, seed: number, log: (line: string) => void, done: (r: RunResult) => Promise<void>): Promise<void> {
  const split = loadDemoData({ seed });
  const test = toTensors(split.test);
  const scoreOn = { x: test.x, labels: split.test.labels };
  const batches = (options: { oneHot: boolean; maxShift: number; ids?: boolean }) =>
    new EpochBatches(split.train, { batchSize: settings.batchSize, seed: `${seed}/batches`, ...options });
  const common = { epochs: settings.epochs, learningRate: settings.learningRate, test: scoreOn };
  const last = (curve: EpochPoint[]) => curve[curve.length - 1]!.testErrors;
  const record = async (key: string, label: string, run: { curve: EpochPoint[]; seconds: number }) =>
    done({ key, label, testErrors: last(run.curve), seconds: run.seconds, curve: run.curve });
  const progress = (key: string) => (p: EpochPoint) => {
    if (p.epoch % 10 === 0) log(`  [seed ${seed}] ${key} epoch ${p.epoch}: ${p.testErrors} test errors`);
  };

  const teacher = buildMlp(settings.teacher, `${seed}/teacher`);
  const teacherRun = await trainOnLabels(teacher, batches({ oneHot: true, maxShift: settings.shift }), {
    ...common,
    seed: `${seed}/teacher`,
    onEpoch: progress('teacher'),
  });
  await record('teacher', labelFor('teacher'), teacherRun);
  // One cache per seed, shared by every unshifted distillation: the teacher scores each digit once.
  const cache = cachedTeacher(teacher);

  // The models of the bar first, the extra runs (control, temperature sweep) last.
  const jobs: StudentJob[] = [
    { key: 's800-labels', hidden: [800, 800], teacher: 'none', shift: 0 },
    { key: 's800-kd', hidden: [800, 800], teacher: 'cached', shift: 0, temperature: settings.temperature },
    { key: 's800-kd-shift', hidden: [800, 800], teacher: 'online', shift: settings.shift, temperature: settings.temperature },
    ...[[64], [16]].flatMap((hidden) => [
      { key: `s${hidden[0]}-labels`, hidden, teacher: 'none' as const, shift: 0 },
      { key: `s${hidden[0]}-kd-T${settings.temperature}`, hidden, teacher: 'cached' as const, shift: 0, temperature: settings.temperature },
    ]),
    { key: 's800-labels-shift', hidden: [800, 800], teacher: 'none', shift: settings.shift },
    ...settings.smallStudentTemperatures.flatMap((temperature) =>
      [[64], [16]].map((hidden) => ({ key: `s${hidden[0]}-kd-T${temperature}`, hidden, teacher: 'cached' as const, shift: 0, temperature })),
    ),
  ];
  for (const job of jobs) {
    // Every run of one student size starts from the same initial weights.
    const studentSeed = `${seed}/s${job.hidden[0]}`;
    const student = buildMlp({ hidden: job.hidden }, studentSeed);
    const options = { ...common, seed: studentSeed, onEpoch: progress(job.key) };
    const run =
      job.teacher === 'none'
        ? await trainOnLabels(student, batches({ oneHot: true, maxShift: job.shift }), options)
        : await distill(job.teacher === 'cached' ? cache : teacher, student, batches({ oneHot: false, maxShift: job.shift, ids: job.teacher === 'cached' }), {
            ...options,
            temperature: job.temperature!,
            alpha: settings.alpha,
          });
    await record(job.key, labelFor(job.key, job.temperature), run);
    student.dispose();
  }
  log(`[seed ${seed}] teacher ran on ${cache.teacherCalls} batches for all unshifted distillations (cache of ${cache.cache.size} digits)`);
  teacher.dispose();
  tf.dispose([test.x, test.y]);
}

/** The comparison with the bar, the gap closed, and the temperature sweep. */
function summarize(settings: FullSettings, bySeed: Map<number, RunResult[]>): string {
  const errorsOf = (key: string) => [...bySeed.values()].map((runs) => runs.find((r) => r.key === key)?.testErrors).filter((e): e is number => e !== undefined);
  const seeds = settings.seeds.join(', ');
  const main = markdownTable(
    ['model', 'PyTorch bar (1 run)', `kd-ts, mean ± sd (seeds ${seeds})`, 'per seed'],
    BAR.map(({ key, label, bar }) => [label, bar === undefined ? '-' : String(bar), spread(errorsOf(key)), errorsOf(key).join(' / ')]),
  );
  const gap = (student: string, distilled: string) => {
    const closed = [...bySeed.values()].map((runs) => {
      const get = (k: string) => runs.find((r) => r.key === k)?.testErrors ?? NaN;
      return ((get(student) - get(distilled)) / (get(student) - get('teacher'))) * 100;
    });
    return `${spread(closed.filter(Number.isFinite), 0)} %`;
  };
  const temperatures = [settings.temperature, ...settings.smallStudentTemperatures].sort((a, b) => a - b);
  const sweep = markdownTable(
    ['student', 'labels only', ...temperatures.map((t) => `distilled T=${t}`)],
    ['s64', 's16'].map((s) => [s === 's64' ? '784-64-10' : '784-16-10', spread(errorsOf(`${s}-labels`)), ...temperatures.map((t) => spread(errorsOf(`${s}-kd-T${t}`)))]),
  );
  return [
    `Test errors of 2,000 after ${settings.epochs} epochs (mean ± sample standard deviation over seeds).`,
    '',
    main,
    '',
    `Gap closed by distillation, (labels only − distilled) / (labels only − teacher): 2×800 ${gap('s800-labels', 's800-kd')} (bar 57 %); ` +
      `with shifts ${gap('s800-labels', 's800-kd-shift')}.`,
    '',
    `Temperature, small students (alpha=${settings.alpha}):`,
    '',
    sweep,
  ].join('\n');
}

function labelFor(key: string, temperature?: number): string {
  return BAR.find((row) => row.key === key)?.label ?? `${key.replace(/^s/, '').replace(/-kd-T\d+$/, '')} distilled (T=${temperature})`;
}

function labelOf(bySeed: Map<number, RunResult[]>, key: string): string {
  return [...bySeed.values()][0]?.find((r) => r.key === key)?.label ?? key;
}

/** The epoch-wise mean of several runs' curves. */
function meanCurve(all: (RunResult | undefined)[]): EpochPoint[] {
  const runs = all.filter((r): r is RunResult => r !== undefined);
  if (runs.length === 0) return [];
  return runs[0]!.curve.map((point, i) => ({
    epoch: point.epoch,
    testErrors: runs.reduce((sum, r) => sum + r.curve[i]!.testErrors, 0) / runs.length,
    trainLoss: runs.reduce((sum, r) => sum + r.curve[i]!.trainLoss, 0) / runs.length,
  }));
}

/** `mean ± sample sd` (just the value for one). */
function spread(values: number[], digits = 1): string {
  if (values.length === 0) return '-';
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (values.length === 1) return mean.toFixed(digits);
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1));
  return `${mean.toFixed(digits)} ± ${sd.toFixed(digits)}`;
}
