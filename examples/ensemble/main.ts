/**
 * Ensemble distillation (Hinton, Vinyals and Dean 2015, §4): train several
 * MLPs that differ only in their seed, average them with `EnsembleTeacher`,
 * and distil the ensemble into one network of a single member's size.
 *
 * Per seed, on the `mnist` package's digits (8,000 train, 2,000 balanced test,
 * see `../shared/mnist.ts`):
 * 1. `--members` teacher MLPs, each trained on the labels with plain tfjs
 *    `model.fit`, from its own initial weights, shuffles and dropout masks;
 * 2. the ensemble of them (`EnsembleTeacher`, mean of logits; the mean of
 *    probabilities is scored too);
 * 3. a student of the members' architecture trained from scratch with the
 *    `Distiller` on the ensemble's softened outputs plus the labels, through
 *    `cachedTeacher`, so the five teachers run in the first epoch only;
 * 4. the same architecture, from the same initial weights, on the labels only.
 *
 * The score is the share of the ensemble's gain over the average member that
 * the student keeps: (student − mean member) / (ensemble − mean member).
 *
 * Run: `npx tsx examples/ensemble/main.ts` (3 seeds, several minutes on 2 cores).
 * Flags: `--seeds 0,1,2`, `--members 5`, `--epochs 10` (every model),
 * `--temperature 2`, `--alpha 0.5`, `--student-lr 0.003` (the distilled student's Adam rate), `--quick` (seed 0 only, 4 epochs).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  Distiller,
  EnsembleTeacher,
  cachedTeacher,
  pickTrainingBackend,
  seededRandom,
  withSeed,
  type DatasetLike,
  type DistillationBatch,
} from '../../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, toTensors } from '../shared/mnist.js';
import { printMarkdownTable } from '../shared/table.js';
import { mean, pct, spread } from '../shared/stats.js';

/** Every setting of the run, in one place. Flags override the marked ones. */
const DEFAULTS = {
  /** `--seeds`: one full run (split, members, students) per seed. */
  seeds: [0, 1, 2],
  /** `--members`: teachers in the ensemble. */
  members: 5,
  /** Members and students alike: 784-128-128-10 with dropout, half the quickstart teacher's width to fit the time budget. */
  hidden: [128, 128],
  inputDropout: 0.2,
  dropout: 0.3,
  /** `--epochs`: every model gets the same budget. */
  epochs: 10,
  /** Adam, for members and the label-only baseline. */
  learningRate: 1e-3,
  /** `--student-lr`: Adam for the distilled student: soft targets train more slowly than one-hot labels (see the quickstart README). */
  studentLearningRate: 3e-3,
  batchSize: 64,
  /** `--temperature`. */
  temperature: 2,
  /** `--alpha`: weight of the hard-label loss. */
  alpha: 0.5,
  testPerClass: 200,
};

type Settings = typeof DEFAULTS;

/** Test accuracies of one seed's models. */
interface SeedResult {
  seed: number;
  members: number[];
  meanLogits: number;
  meanProbs: number;
  baseline: number;
  distilled: number;
  callsAfterEpoch1: number;
  callsAtEnd: number;
  seconds: { members: number; baseline: number; distilled: number };
}

async function main(): Promise<void> {
  const settings = readFlags();
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: ['wasm'] });
  console.log(choice.reasons.join('\n'));
  await tf.ready();
  console.log(
    `${settings.members} members ${architecture(settings.hidden)} (dropout ${settings.inputDropout}/${settings.dropout}), ` +
      `${settings.epochs} epochs each; seeds ${settings.seeds.join(', ')}; backend ${tf.getBackend()}`,
  );
  const results: SeedResult[] = [];
  for (const seed of settings.seeds) results.push(await runSeed(settings, seed));

  console.log('\n## Summary\n');
  printMarkdownTable(
    ['seed', 'mean member', 'best member', 'ensemble (mean logits)', 'ensemble (mean probs)', 'labels only', 'distilled', 'gain kept'],
    results.map((r) => [
      String(r.seed),
      pct(mean(r.members)),
      pct(Math.max(...r.members)),
      pct(r.meanLogits),
      pct(r.meanProbs),
      pct(r.baseline),
      pct(r.distilled),
      share(r),
    ]),
  );
  const column = (f: (r: SeedResult) => number) => spread(results.map(f));
  console.log('');
  console.log(`mean member ${column((r) => mean(r.members) * 100)} %; ensemble (mean logits) ${column((r) => r.meanLogits * 100)} %`);
  console.log(`labels only ${column((r) => r.baseline * 100)} %; distilled ${column((r) => r.distilled * 100)} %`);
  const shares = results.map(keptShare).filter(Number.isFinite);
  console.log(
    `gain kept, (distilled − mean member) / (ensemble − mean member): ${shares.length > 0 ? `${spread(shares.map((s) => s * 100))} %` : 'undefined'}` +
      ` over ${shares.length} seed(s) (mean ± sample standard deviation; Hinton et al. 2015 report 86 % for speech)`,
  );
}

/** One seed: split, members, ensemble, distilled student and baseline. */
async function runSeed(settings: Settings, seed: number): Promise<SeedResult> {
  console.log(`\n## Seed ${seed}\n`);
  const split = loadMnistSplit({ testPerClass: settings.testPerClass, seed });
  const train = toTensors(split.train);
  const test = toTensors(split.test);
  const trainOneHot = tf.oneHot(train.y, MNIST_CLASSES);
  const labels = split.test.labels;
  const name = architecture(settings.hidden);

  const members: tfl.Sequential[] = [];
  const memberAccuracy: number[] = [];
  let started = performance.now();
  for (let k = 0; k < settings.members; k++) {
    const memberSeed = `${seed}/member-${k}`;
    const model = withSeed(memberSeed, () => mlp(settings));
    const seconds = await fitOnLabels(model, train.x, trainOneHot, settings.learningRate, settings, memberSeed);
    memberAccuracy.push(accuracy(await predictClasses(model, test.x), labels));
    console.log(`member ${k} (${name}): test accuracy ${pct(memberAccuracy[k]!)}, ${seconds.toFixed(1)} s`);
    members.push(model);
  }
  const memberSeconds = (performance.now() - started) / 1000;

  const ensemble = new EnsembleTeacher(members, { combine: 'mean-logits' });
  const meanLogits = accuracy(await ensembleClasses(ensemble, test.x), labels);
  const meanProbs = accuracy(await ensembleClasses(new EnsembleTeacher(members, { combine: 'mean-probs' }), test.x), labels);
  console.log(`ensemble of ${settings.members}: mean logits ${pct(meanLogits)}, mean probs (T = 1) ${pct(meanProbs)}; mean member ${pct(mean(memberAccuracy))}`);

  // Same architecture, same initial weights (built under one seed); only what they learn from differs.
  const studentSeed = `${seed}/student`;
  const baseline = withSeed(studentSeed, () => mlp(settings));
  const student = withSeed(studentSeed, () => mlp(settings));

  const baselineSeconds = await fitOnLabels(baseline, train.x, trainOneHot, settings.learningRate, settings, studentSeed);
  const baselineAccuracy = accuracy(await predictClasses(baseline, test.x), labels);
  console.log(`labels only (${name}): test accuracy ${pct(baselineAccuracy)}, ${baselineSeconds.toFixed(1)} s`);

  // The ensemble runs on each example once (epoch 1); later epochs read its logits by example id.
  const teacher = cachedTeacher(ensemble);
  const distiller = new Distiller({ teacher, student });
  distiller.compile({ optimizer: tf.train.adam(settings.studentLearningRate), temperature: settings.temperature, alpha: settings.alpha });
  let callsAfterEpoch1 = 0;
  started = performance.now();
  await distiller.fitDataset(batches(train.x, train.y, split.train.ids, settings.batchSize, seed), {
    epochs: settings.epochs,
    seed,
    callbacks: {
      onEpochEnd: async (epoch: number) => {
        if (epoch !== 0) return;
        callsAfterEpoch1 = teacher.teacherCalls;
        console.log(
          `distilling: after epoch 1 the ensemble has run on ${teacher.teacherCalls} batches ` +
            `(${teacher.cache.size} examples cached), ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
      },
    },
  });
  const distilledSeconds = (performance.now() - started) / 1000;
  const distilledAccuracy = accuracy(await predictClasses(student, test.x), labels);
  console.log(
    `distilled (${name}, T=${settings.temperature}, alpha=${settings.alpha}): test accuracy ${pct(distilledAccuracy)}, ` +
      `${distilledSeconds.toFixed(1)} s; ensemble runs after ${settings.epochs} epochs: ${teacher.teacherCalls}`,
  );

  const result: SeedResult = {
    seed,
    members: memberAccuracy,
    meanLogits,
    meanProbs,
    baseline: baselineAccuracy,
    distilled: distilledAccuracy,
    callsAfterEpoch1,
    callsAtEnd: teacher.teacherCalls,
    seconds: { members: memberSeconds, baseline: baselineSeconds, distilled: distilledSeconds },
  };
  console.log('');
  printMarkdownTable(
    ['model', 'test accuracy', `errors (of ${labels.length})`, 'train time'],
    [
      ...memberAccuracy.map((a, k) => [`member ${k}`, pct(a), errors(a, labels.length), '']),
      ['mean of members', pct(mean(memberAccuracy)), '', `${memberSeconds.toFixed(1)} s (all)`],
      ['ensemble, mean logits (distilled from)', pct(meanLogits), errors(meanLogits, labels.length), ''],
      ['ensemble, mean probs', pct(meanProbs), errors(meanProbs, labels.length), ''],
      ['student, labels only', pct(baselineAccuracy), errors(baselineAccuracy, labels.length), `${baselineSeconds.toFixed(1)} s`],
      ['student, distilled from the ensemble', pct(distilledAccuracy), errors(distilledAccuracy, labels.length), `${distilledSeconds.toFixed(1)} s`],
    ],
  );
  console.log(`gain kept: ${share(result)}; ensemble runs: ${callsAfterEpoch1} batches after epoch 1, ${teacher.teacherCalls} at the end`);

  tf.dispose([train.x, train.y, test.x, test.y, trainOneHot]);
  for (const model of [...members, baseline, student]) model.dispose();
  return result;
}

/**
 * Batches `{ xs, ys, id }` for `Distiller.fitDataset`, reshuffled every epoch
 * by a seeded generator. `id` is the digit's id in the mnist package, which is
 * what `cachedTeacher` keys its rows by.
 */
function batches(x: tf.Tensor2D, y: tf.Tensor1D, ids: Int32Array, batchSize: number, seed: number): DatasetLike<DistillationBatch> {
  const random = seededRandom(`${seed}/batches`);
  const rows = ids.length;
  return {
    iterator: async () => {
      const order = Int32Array.from({ length: rows }, (_, i) => i);
      for (let i = rows - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      let start = 0;
      return {
        next: async (): Promise<IteratorResult<DistillationBatch>> => {
          if (start >= rows) return { done: true, value: undefined };
          const picked = order.subarray(start, Math.min(start + batchSize, rows));
          start += batchSize;
          const indices = tf.tensor1d(picked, 'int32');
          const value: DistillationBatch = {
            xs: tf.gather(x, indices),
            ys: tf.gather(y, indices),
            id: tf.tensor1d(Int32Array.from(picked, (r) => ids[r]!), 'int32'),
          };
          indices.dispose();
          return { done: false, value };
        },
      };
    },
  };
}

/** A 784-…-10 MLP with dropout that outputs logits (members and students alike). */
function mlp(settings: Settings): tfl.Sequential {
  const model = tfl.sequential();
  model.add(tfl.layers.dropout({ rate: settings.inputDropout, inputShape: [MNIST_PIXELS] }));
  for (const units of settings.hidden) {
    model.add(tfl.layers.dense({ units, activation: 'relu' }));
    model.add(tfl.layers.dropout({ rate: settings.dropout }));
  }
  model.add(tfl.layers.dense({ units: MNIST_CLASSES }));
  return model;
}

/** Plain tfjs-layers training on one-hot labels, softmax cross-entropy on the logits. Returns seconds. */
async function fitOnLabels(
  model: tfl.LayersModel,
  x: tf.Tensor,
  oneHot: tf.Tensor,
  learningRate: number,
  settings: Settings,
  seed: string,
): Promise<number> {
  model.compile({
    optimizer: tf.train.adam(learningRate),
    loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits),
  });
  const started = performance.now();
  await withSeed(seed, () => model.fit(x, oneHot, { epochs: settings.epochs, batchSize: settings.batchSize, verbose: 0 }));
  return (performance.now() - started) / 1000;
}

async function predictClasses(model: tfl.LayersModel, x: tf.Tensor): Promise<Int32Array> {
  const classes = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: 500 }) as tf.Tensor, -1));
  const values = (await classes.data()) as Int32Array;
  classes.dispose();
  return values;
}

/** The ensemble's classes at temperature 1 (for mean probs, the argmax of the averaged probabilities). */
async function ensembleClasses(ensemble: EnsembleTeacher, x: tf.Tensor): Promise<Int32Array> {
  const logits = await ensemble.predict(x, { temperature: 1 });
  const classes = tf.argMax(logits, -1);
  const values = (await classes.data()) as Int32Array;
  tf.dispose([logits, classes]);
  return values;
}

function accuracy(predicted: Int32Array, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

function keptShare(r: SeedResult): number {
  const gain = r.meanLogits - mean(r.members);
  return gain === 0 ? Number.NaN : (r.distilled - mean(r.members)) / gain;
}

function share(r: SeedResult): string {
  const s = keptShare(r);
  return Number.isFinite(s) ? `${(s * 100).toFixed(0)} %` : 'undefined (no ensemble gain)';
}

function errors(acc: number, n: number): string {
  return String(Math.round((1 - acc) * n));
}

function architecture(hidden: number[]): string {
  return [MNIST_PIXELS, ...hidden, MNIST_CLASSES].join('-');
}

class UsageError extends Error {}

const USAGE =
  'usage: npx tsx examples/ensemble/main.ts [--seeds 0,1,2] [--members 5] [--epochs 10] [--temperature 2] [--alpha 0.5] [--student-lr 0.003] [--quick]';

function readFlags(): Settings {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        seeds: { type: 'string' },
        members: { type: 'string' },
        epochs: { type: 'string' },
        temperature: { type: 'string' },
        alpha: { type: 'string' },
        'student-lr': { type: 'string' },
        quick: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const settings = { ...DEFAULTS };
  if (values.quick === true) {
    settings.seeds = [0];
    settings.epochs = 4;
  }
  const number = (name: string, fallback: number, check: (v: number) => boolean, what: string): number => {
    const value = values[name];
    if (typeof value !== 'string') return fallback;
    const parsed = Number(value);
    if (!check(parsed)) throw new UsageError(`--${name} must be ${what}, got ${value}`);
    return parsed;
  };
  const positiveInteger = (v: number) => Number.isInteger(v) && v > 0;
  settings.members = number('members', settings.members, positiveInteger, 'a positive integer');
  settings.epochs = number('epochs', settings.epochs, positiveInteger, 'a positive integer');
  settings.temperature = number('temperature', settings.temperature, (v) => Number.isFinite(v) && v > 0, 'a number > 0');
  settings.studentLearningRate = number('student-lr', settings.studentLearningRate, (v) => Number.isFinite(v) && v > 0, 'a number > 0');
  settings.alpha = number('alpha', settings.alpha, (v) => v >= 0 && v <= 1, 'a number from 0 to 1');
  if (typeof values.seeds === 'string') {
    const seeds = values.seeds.split(',').map(Number);
    if (seeds.some((s) => !Number.isInteger(s))) throw new UsageError(`--seeds must be integers separated by commas, got ${values.seeds}`);
    settings.seeds = seeds;
  }
  return settings;
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
  else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
