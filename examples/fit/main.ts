/**
 * Distillation inside plain tfjs `model.fit`: existing training code gains a
 * teacher with three changed lines, and the student is saved as usual.
 *
 * On the `mnist` package's 10,000 digits (8,000 to train, 2,000 balanced to
 * test, the quickstart's split, see `../shared/mnist.ts`; `--train` takes a smaller prefix):
 * 1. a teacher MLP trained with `model.fit` on the labels;
 * 2. a student trained the same way ("labels only");
 * 3. the same student, from the same initial weights, trained with the same
 *    `fit` call, wrapped by `withDistillationHead` and given the teacher's
 *    logits (`computeTeacherLogits`) as a second target; then the unwrapped
 *    student is saved with `saveStudent`, loaded back and checked.
 * `compressionReport` prints what the student costs and keeps.
 *
 * Run: `npx tsx examples/fit/main.ts` (about a minute on 2 cores).
 * Flags: `--backend wasm|cpu` (default wasm), `--seed 0`, `--train 8000`,
 * `--epochs 10`, `--temperature 4`, `--alpha 0.1`, `--out <dir>` (default: a temporary directory).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  compressionReport,
  computeTeacherLogits,
  formatCompressionReport,
  pickTrainingBackend,
  withDistillationHead,
  withSeed,
} from '../../src/index.js';
import { loadStudent, saveStudent } from '../../src/node/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, toTensors } from '../shared/mnist.js';
import { buildMlp } from '../shared/mlp.js';
import { printMarkdownTable } from '../shared/table.js';
import { pct } from '../shared/stats.js';

/** Every setting of the run; flags override them. */
const DEFAULTS = {
  backend: 'wasm',
  seed: 0,
  /** Training digits: a prefix of the seeded, shuffled training side of the split (all 8,000 by default). */
  train: 8000,
  testPerClass: 200,
  /** The quickstart's teacher and student, so the numbers can be set side by side. */
  teacherHidden: [256, 256],
  teacherEpochs: 12,
  studentHidden: [32],
  epochs: 10,
  batchSize: 64,
  learningRate: 1e-2,
  temperature: 4,
  alpha: 0.1,
  out: '',
};

async function main(): Promise<void> {
  const settings = readFlags();
  tf.env().set('PROD', true); // silences the "use tfjs-node" banner
  const choice = await pickTrainingBackend({ prefer: [settings.backend as 'wasm' | 'cpu'] });
  console.log(choice.reasons.join('\n'));

  const split = loadMnistSplit({ testPerClass: settings.testPerClass, seed: settings.seed });
  const all = toTensors(split.train);
  const train = {
    x: tf.slice(all.x, [0, 0], [settings.train, MNIST_PIXELS]),
    y: tf.slice(all.y, [0], [settings.train]),
  };
  tf.dispose([all.x, all.y]);
  const test = toTensors(split.test);
  // tfjs's fit checks each target's width against its output's: one-hot labels.
  const trainOneHot = tf.oneHot(train.y, MNIST_CLASSES);
  const testOneHot = tf.oneHot(test.y, MNIST_CLASSES);
  console.log(`MNIST: ${settings.train} train, ${split.test.size} test digits; backend ${tf.getBackend()}, seed ${settings.seed}`);

  // 1. A teacher, trained with plain tfjs.
  const teacher = withSeed(settings.seed, () => buildMlp(settings.teacherHidden, { dropout: 0.3, inputDropout: 0.2 }));
  teacher.compile({ optimizer: tf.train.adam(1e-3), loss: softmaxCrossEntropy });
  await withSeed(settings.seed, () =>
    teacher.fit(train.x, trainOneHot, { epochs: settings.teacherEpochs, batchSize: settings.batchSize }),
  );

  // 2. Existing training code: a student on the labels.
  const studentSeed = `${settings.seed}/student`;
  const scratch = withSeed(studentSeed, () => buildMlp(settings.studentHidden));
  scratch.compile({ optimizer: tf.train.adam(settings.learningRate), loss: softmaxCrossEntropy });
  await withSeed(settings.seed, () =>
    scratch.fit(train.x, trainOneHot, {
      epochs: settings.epochs,
      batchSize: settings.batchSize,
      validationData: [test.x, testOneHot],
    }),
  );

  // 3. The same code, distilling: the three changed lines are marked.
  const student = withSeed(studentSeed, () => buildMlp(settings.studentHidden));
  const teacherLogits = await computeTeacherLogits(teacher, train.x); // (1) the teacher, once
  const testTeacherLogits = await computeTeacherLogits(teacher, test.x);
  const wrapped = withDistillationHead(student, {
    // (2) wrap and compile
    optimizer: tf.train.adam(settings.learningRate),
    temperature: settings.temperature,
    alpha: settings.alpha,
    metrics: { hard: 'acc' },
  });
  const history = await withSeed(settings.seed, () =>
    wrapped.fit(train.x, [trainOneHot, teacherLogits], {
      // (3) two targets
      epochs: settings.epochs,
      batchSize: settings.batchSize,
      validationData: [test.x, [testOneHot, testTeacherLogits]],
    }),
  );
  const last = (key: string) => (history.history[key] as number[]).at(-1)!;
  console.log(
    `wrapped.fit, last epoch: loss ${last('loss').toFixed(4)} (hard_loss ${last('hard_loss').toFixed(4)} + ` +
      `soft_loss ${last('soft_loss').toFixed(4)}), train acc ${pct(last('hard_acc'))}, val acc ${pct(last('val_hard_acc'))}`,
  );

  // Save the student, not the wrapped model; load it back and check it predicts the same.
  const dir = settings.out || (await mkdtemp(join(tmpdir(), 'kd-fit-')));
  await saveStudent(student, dir);
  const loaded = await loadStudent(dir);
  const same = tf.tidy(() =>
    tf.max(tf.abs(tf.sub(loaded.predict(test.x) as tf.Tensor, student.predict(test.x) as tf.Tensor))).dataSync()[0]!,
  );
  console.log(`saved the student to ${dir} (${loaded.layers.length} layers); loaded copy differs by at most ${same}`);

  console.log('');
  const rows: string[][] = [];
  for (const [name, model] of [
    [`teacher ${arch(settings.teacherHidden)}`, teacher],
    [`student ${arch(settings.studentHidden)}, labels only`, scratch],
    [`student ${arch(settings.studentHidden)}, distilled in fit (T=${settings.temperature}, alpha=${settings.alpha})`, loaded],
  ] as const) {
    const report = await compressionReport({ teacher, student: model, x: test.x, labels: test.y, repeats: 5 });
    rows.push([
      name,
      model.countParams().toLocaleString('en-US'),
      pct(report.student.accuracy!),
      String(Math.round((1 - report.student.accuracy!) * split.test.size)),
      pct(report.agreement),
    ]);
  }
  printMarkdownTable(['model', 'parameters', 'test accuracy', `test errors (of ${split.test.size})`, 'agreement with teacher'], rows);

  console.log('\ncompressionReport(teacher, distilled student) on the test digits:\n');
  const report = await compressionReport({ teacher, student: loaded, x: test.x, labels: test.y });
  console.log(formatCompressionReport(report));

  tf.dispose([train.x, train.y, test.x, test.y, trainOneHot, testOneHot, teacherLogits, testTeacherLogits]);
  for (const model of [teacher, scratch, student, loaded]) model.dispose();
}

/** Softmax cross-entropy on logits: tfjs's 'categoricalCrossentropy' wants probabilities. */
function softmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Tensor {
  return tf.losses.softmaxCrossEntropy(labels, logits);
}


function arch(hidden: number[]): string {
  return [MNIST_PIXELS, ...hidden, MNIST_CLASSES].join('-');
}

function readFlags(): typeof DEFAULTS {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      seed: { type: 'string' },
      train: { type: 'string' },
      epochs: { type: 'string' },
      temperature: { type: 'string' },
      alpha: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const number = (name: string, fallback: number) => {
    const raw = values[name as keyof typeof values];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got ${raw}`);
    return value;
  };
  const settings = {
    ...DEFAULTS,
    backend: values.backend ?? DEFAULTS.backend,
    seed: number('seed', DEFAULTS.seed),
    train: number('train', DEFAULTS.train),
    epochs: number('epochs', DEFAULTS.epochs),
    temperature: number('temperature', DEFAULTS.temperature),
    alpha: number('alpha', DEFAULTS.alpha),
    out: values.out ?? DEFAULTS.out,
  };
  if (!Number.isInteger(settings.train) || settings.train < 1 || settings.train > 10_000 - 10 * settings.testPerClass) {
    throw new Error(`--train must be an integer from 1 to ${10_000 - 10 * settings.testPerClass}, got ${settings.train}`);
  }
  return settings;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
