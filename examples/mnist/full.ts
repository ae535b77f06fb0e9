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
 * Hinton et al.'s §3 experiment as well: the 2×800 student distilled on a
 * transfer set without a single 3, scored on the test 3s before and after
 * raising the bias of class 3 (by the amount that makes the student call as
 * many training digits 3s as there are 3s among the training labels: no test
 * label is used).
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
import type * as tfl from '@tensorflow/tfjs-layers';
import { cachedTeacher } from '../../src/index.js';
import { MNIST_PIXELS, toTensors, type MnistSet } from '../shared/mnist.js';
import { markdownTable } from '../shared/table.js';
import { learningCurvesSvg } from './chart.js';
import { SeedCheckpoints } from './checkpoint.js';
import { EpochBatches, loadDemoData } from './data.js';
import { buildMlp, countMismatches, distill, trainOnLabels, type EpochPoint, type MlpSpec } from './train.js';

/** The recipe. */
export interface FullSettings {
  seeds: number[];
  /** Epochs of every student. */
  epochs: number;
  /** Epochs of the teacher (default: `epochs`). */
  teacherEpochs?: number;
  batchSize: number;
  learningRate: number;
  teacher: MlpSpec;
  shift: number;
  temperature: number;
  alpha: number;
  /** Extra temperatures tried on the small students. */
  smallStudentTemperatures: number[];
  /** The class left out of the transfer set in the §3 experiment. */
  omittedDigit: number;
  /** `--checkpoint DIR`: survive a kill (see checkpoint.ts); run the same command again to resume. */
  checkpoint?: string;
  /**
   * Train only these models of each seed, by key (`s800-kd`, `s800-kd-no3`...;
   * the teacher always trains): a shorter run of part of the recipe. All
   * when undefined.
   */
  only?: string[];
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
  omittedDigit: 3,
};

/** One trained model of one seed. */
export interface RunResult {
  /** Stable key, e.g. `s800-kd-shift`. */
  key: string;
  label: string;
  testErrors: number;
  seconds: number;
  curve: EpochPoint[];
  /** The §3 experiment's scores on the omitted digit, before and after the bias adjustment. */
  omitted?: OmittedDigitResult;
}

/** Hinton et al.'s §3 experiment: a student that never saw one digit. */
export interface OmittedDigitResult {
  digit: number;
  /** Test digits of that class. */
  testCount: number;
  /** Before the bias adjustment: errors on the omitted digit's test digits (all errors are `testErrors`). */
  errorsOnDigit: number;
  /** What was added to the class's output bias. */
  biasIncrease: number;
  /** After the adjustment: errors on all test digits and on the omitted digit's. */
  adjusted: { testErrors: number; errorsOnDigit: number };
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
  const known = ['teacher', ...studentJobs({ ...settings, only: undefined }).map((job) => job.key), omittedKey(settings)];
  const unknown = (settings.only ?? []).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw new RangeError(`unknown model key(s) ${unknown.join(', ')} in --only; the keys: ${known.join(', ')}`);
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

/** Models trained per seed: the teacher, then per student its label-only and distilled runs (those of `only`). */
function runsPerSeed(settings: FullSettings): number {
  return 1 + studentJobs(settings).length + (included(settings, omittedKey(settings)) ? 1 : 0);
}

/** Whether `--only` (if given) names this model. */
function included(settings: FullSettings, key: string): boolean {
  return settings.only === undefined || settings.only.includes(key);
}

/** The §3 experiment's key, e.g. `s800-kd-no3`. */
function omittedKey(settings: FullSettings): string {
  return `s800-kd-no${settings.omittedDigit}`;
}

/** Every student of a seed but the §3 one: the models of the bar first, the extra runs (control, temperature sweep) last. */
function studentJobs(settings: FullSettings): StudentJob[] {
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
  return jobs.filter((job) => included(settings, job.key));
}

/** The `seed-N.json` files in `outDir` made with the same epochs, students' and teacher's (complete or not), by seed. */
async function readSeedFiles(outDir: string, settings: FullSettings): Promise<Map<number, RunResult[]>> {
  const bySeed = new Map<number, RunResult[]>();
  for (const name of (await readdir(outDir)).filter((n) => /^seed-\d+\.json$/.test(n)).sort()) {
    const file = JSON.parse(await readFile(path.join(outDir, name), 'utf8')) as { seed: number; complete: boolean; settings: FullSettings; results: RunResult[] };
    const teacherEpochs = (f: FullSettings) => f.teacherEpochs ?? f.epochs;
    if (file.settings.epochs === settings.epochs && teacherEpochs(file.settings) === teacherEpochs(settings)) bySeed.set(file.seed, file.results);
  }
  return new Map([...bySeed.entries()].sort(([a], [b]) => a - b));
}

/** Trains every model of one seed, reporting each as it finishes. */
async function runSeed(settings: FullSettings, seed: number, log: (line: string) => void, report: (r: RunResult) => Promise<void>): Promise<void> {
  // With --checkpoint: models finished by a killed run are reported from their saved results, not trained again.
  const saved = settings.checkpoint === undefined ? undefined : new SeedCheckpoints(settings.checkpoint, seed);
  const done = async (result: RunResult) => {
    await saved?.saveResult(result.key, result);
    await report(result);
  };
  const priorResult = async (key: string): Promise<RunResult | undefined> => {
    const result = await saved?.result<RunResult>(key);
    if (result !== undefined) log(`[seed ${seed}] ${key}: finished before, read from ${saved!.directory}`);
    return result;
  };
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
  const teacherResult = await priorResult('teacher');
  if (teacherResult !== undefined && (await saved!.loadWeights('teacher', teacher))) {
    await report(teacherResult);
  } else {
    const teacherRun = await trainOnLabels(teacher, batches({ oneHot: true, maxShift: settings.shift }), {
      ...common,
      epochs: settings.teacherEpochs ?? settings.epochs,
      seed: `${seed}/teacher`,
      onEpoch: progress('teacher'),
    });
    await saved?.saveWeights('teacher', teacher); // before its result: a result on disk means weights on disk
    await record('teacher', labelFor('teacher'), teacherRun);
  }
  // One cache per seed, shared by every unshifted distillation: the teacher scores each digit once.
  const cache = cachedTeacher(teacher);

  const jobs = studentJobs(settings);
  for (const job of jobs) {
    const prior = await priorResult(job.key);
    if (prior !== undefined) {
      await report(prior);
      continue;
    }
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
            ...(saved === undefined ? {} : { checkpoint: await saved.student(job.key) }),
          });
    await record(job.key, labelFor(job.key, job.temperature), run);
    student.dispose();
  }
  if (jobs.length > 0) log(`[seed ${seed}] teacher ran on ${cache.teacherCalls} batches for all unshifted distillations (cache of ${cache.cache.size} digits)`);
  const omittedResult = included(settings, omittedKey(settings)) ? await priorResult(omittedKey(settings)) : undefined;
  if (omittedResult !== undefined) await report(omittedResult);
  if (!included(settings, omittedKey(settings)) || omittedResult !== undefined) {
    teacher.dispose();
    tf.dispose([test.x, test.y]);
    return;
  }

  // Hinton et al. 2015, §3: the transfer set without a single example of one digit.
  const digit = settings.omittedDigit;
  const transfer = withoutDigit(split.train, digit);
  const studentSeed = `${seed}/s800`;
  const student = buildMlp({ hidden: [800, 800] }, studentSeed);
  const run = await distill(
    cachedTeacher(teacher),
    student,
    new EpochBatches(transfer, { batchSize: settings.batchSize, seed: `${seed}/batches`, oneHot: false, maxShift: 0, ids: true }),
    {
      ...common,
      seed: studentSeed,
      temperature: settings.temperature,
      alpha: settings.alpha,
      onEpoch: progress(`s800-kd-no${digit}`),
      ...(saved === undefined ? {} : { checkpoint: await saved.student(`s800-kd-no${digit}`) }),
    },
  );
  const omitted = await scoreOmittedDigit(student, digit, split.train, split.test, test.x);
  log(
    `[seed ${seed}] 2×800 distilled without any ${digit}: ${omitted.errorsOnDigit} of ${omitted.testCount} test ${digit}s wrong; ` +
      `bias of class ${digit} + ${omitted.biasIncrease.toFixed(2)}: ${omitted.adjusted.errorsOnDigit} wrong (${omitted.adjusted.testErrors} errors in all)`,
  );
  await done({ key: `s800-kd-no${digit}`, label: labelFor(`s800-kd-no${digit}`), testErrors: last(run.curve), seconds: run.seconds, curve: run.curve, omitted });
  student.dispose();
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
  const omittedRuns = [...bySeed.values()].map((runs) => runs.find((r) => r.omitted !== undefined)?.omitted).filter((o): o is OmittedDigitResult => o !== undefined);
  const omittedTable =
    omittedRuns.length === 0
      ? []
      : [
          '',
          `Hinton et al.'s §3: the 2×800 student distilled (T=${settings.temperature}) on a transfer set without any ${settings.omittedDigit}; ` +
            `errors of 2,000, and on the ${omittedRuns[0]!.testCount} test ${settings.omittedDigit}s:`,
          '',
          markdownTable(
            ['', 'all test digits', `test ${settings.omittedDigit}s wrong`, `accuracy on ${settings.omittedDigit}s`],
            [
              [
                'as trained',
                spread(errorsOf(`s800-kd-no${settings.omittedDigit}`)),
                spread(omittedRuns.map((o) => o.errorsOnDigit)),
                `${spread(omittedRuns.map((o) => (100 * (o.testCount - o.errorsOnDigit)) / o.testCount))} %`,
              ],
              [
                `bias of class ${settings.omittedDigit} raised (by ${spread(omittedRuns.map((o) => o.biasIncrease), 2)})`,
                spread(omittedRuns.map((o) => o.adjusted.testErrors)),
                spread(omittedRuns.map((o) => o.adjusted.errorsOnDigit)),
                `${spread(omittedRuns.map((o) => (100 * (o.testCount - o.adjusted.errorsOnDigit)) / o.testCount))} %`,
              ],
            ],
          ),
        ];
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
    ...omittedTable,
  ].join('\n');
}

function labelFor(key: string, temperature?: number): string {
  if (/^s800-kd-no\d$/.test(key)) return `2×800 distilled without any ${key.slice(-1)} (T=${FULL_RECIPE.temperature})`;
  return BAR.find((row) => row.key === key)?.label ?? `${key.replace(/^s/, '').replace(/-kd-T\d+$/, '')} distilled (T=${temperature})`;
}

function labelOf(bySeed: Map<number, RunResult[]>, key: string): string {
  return [...bySeed.values()][0]?.find((r) => r.key === key)?.label ?? key;
}

/** The set without any example of `digit`; rows renumbered (its own teacher cache). */
function withoutDigit(set: MnistSet, digit: number): MnistSet {
  const rows = Array.from({ length: set.size }, (_, r) => r).filter((r) => set.labels[r] !== digit);
  const x = new Float32Array(rows.length * MNIST_PIXELS);
  rows.forEach((r, i) => x.set(set.x.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS), i * MNIST_PIXELS));
  return { x, labels: Int32Array.from(rows, (r) => set.labels[r]!), ids: Int32Array.from(rows, (r) => set.ids[r]!), size: rows.length };
}

/**
 * Scores a student that never saw `digit` on the test digits of that class,
 * then raises the class's output bias by δ and scores again. δ is chosen on
 * the training images alone: the smallest increase that makes the student
 * call as many of them `digit` as there are `digit`s among the training
 * labels (the class's prior), i.e. a quantile of (best other logit − logit of
 * `digit`) over the training images.
 */
export async function scoreOmittedDigit(student: tfl.LayersModel, digit: number, train: MnistSet, test: MnistSet, testX: tf.Tensor2D): Promise<OmittedDigitResult> {
  const logitsOf = async (x: tf.Tensor2D) => {
    const logits = student.predict(x, { batchSize: 500 }) as tf.Tensor2D;
    const rows = (await logits.array()) as number[][];
    logits.dispose();
    return rows;
  };
  const trainX = tf.tensor2d(train.x, [train.size, MNIST_PIXELS]);
  const trainLogits = await logitsOf(trainX);
  trainX.dispose();
  const margins = trainLogits.map((row) => Math.max(...row.filter((_, c) => c !== digit)) - row[digit]!).sort((a, b) => a - b);
  const wanted = train.labels.filter((label) => label === digit).length;
  const biasIncrease = wanted === 0 ? 0 : Math.max(0, (margins[wanted - 1]! + (margins[wanted] ?? margins[wanted - 1]! + 1e-3)) / 2);
  const testLogits = await logitsOf(testX);
  const predict = (shift: number) => Int32Array.from(testLogits, (row) => row.map((v, c) => (c === digit ? v + shift : v)).reduce((best, v, c, all) => (v > all[best]! ? c : best), 0));
  const onDigit = (predicted: Int32Array) => test.labels.reduce((n, label, r) => n + (label === digit && predicted[r] !== digit ? 1 : 0), 0);
  const before = predict(0);
  const after = predict(biasIncrease);
  return {
    digit,
    testCount: test.labels.filter((label) => label === digit).length,
    errorsOnDigit: onDigit(before),
    biasIncrease,
    adjusted: { testErrors: countMismatches(after, test.labels), errorsOnDigit: onDigit(after) },
  };
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
