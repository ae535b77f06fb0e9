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
 * Run: `npx tsx examples/quickstart/main.ts` (about 1–2 minutes on 2 cores).
 * Flags: `--backend wasm|cpu` (default wasm; cpu is several times slower),
 * `--seed 0`, `--epochs 10` (students), `--teacher-epochs 12`,
 * `--temperature 4`, `--alpha 0.1`, `--student-hidden 32` (e.g. `64,32`).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
// In Node the wasm backend loads its .wasm binary from its own dist/ folder
// (next to the CommonJS entry point), so no setWasmPaths and no network.
import '@tensorflow/tfjs-backend-wasm';
import { Distiller, pickTrainingBackend, withSeed } from '../../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, toTensors } from '../shared/mnist.js';
import { buildMlp } from '../shared/mlp.js';
import { printMarkdownTable } from '../shared/table.js';

/** Every setting of the run, in one place. Flags override the marked ones. */
const DEFAULTS = {
  /** `--backend`: tfjs backend, `wasm` (default) or `cpu`. */
  backend: 'wasm',
  /** `--seed`: seeds the split, every initialization, shuffle and dropout mask. */
  seed: 0,
  /** `--teacher-epochs`. */
  teacherEpochs: 12,
  teacherHidden: [256, 256],
  /** Dropout on the pixels and after each hidden layer: the teacher must generalize, not memorize 8,000 digits. */
  teacherInputDropout: 0.2,
  teacherDropout: 0.3,
  teacherLearningRate: 1e-3,
  /** `--student-hidden` (comma-separated): a student ~10× smaller than the teacher. */
  studentHidden: [32],
  /** `--epochs`: the students' budget, the same for both. */
  epochs: 10,
  /**
   * The students' Adam learning rate. Soft targets train more slowly than
   * one-hot labels; at 1e-3 the distilled student needed ~15 epochs to pass
   * the scratch one, at 1e-2 it leads from the first epochs. The scratch
   * student does no worse at 1e-2 than at 1e-3 (it overfits either way).
   */
  learningRate: 1e-2,
  batchSize: 64,
  /** `--temperature`: Hinton et al. 2015 (§3) found 2.5 to 4 best for MNIST students with 30 hidden units. */
  temperature: 4,
  /** `--alpha`: weight of the hard-label loss; 1 − alpha goes to the teacher's soft targets. */
  alpha: 0.1,
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
  // turns on tfjs's per-kernel leak check, which throws on wasm's fused matmul.
  tf.env().set('PROD', true);
  // On wasm, kd-ts adds the fast matrix products (and the kernels stock wasm lacks for training).
  const choice = await pickTrainingBackend({ prefer: [settings.backend as 'wasm' | 'cpu'] });
  console.log(choice.reasons.join('\n'));
  await tf.ready();

  const split = loadMnistSplit({ testPerClass: settings.testPerClass, seed: settings.seed });
  const train = toTensors(split.train);
  const test = toTensors(split.test);
  // tfjs-layers' fit (teacher, scratch student) wants one-hot targets; the Distiller takes class ids.
  const trainOneHot = tf.oneHot(train.y, MNIST_CLASSES);
  console.log(
    `MNIST from the mnist package: ${split.train.size} train, ${split.test.size} test (${settings.testPerClass} per class); ` +
      `backend ${tf.getBackend()}, seed ${settings.seed}`,
  );

  const teacher = withSeed(settings.seed, () => buildMlp(settings.teacherHidden, { dropout: settings.teacherDropout, inputDropout: settings.teacherInputDropout }));
  const teacherName = `teacher ${architecture(settings.teacherHidden)}`;

  // Two students built under the same seed: same architecture, same initial
  // weights, same budget; the only difference is what they learn from.
  const studentSeed = `${settings.seed}/student`;
  const scratch = withSeed(studentSeed, () => buildMlp(settings.studentHidden));
  const distilled = withSeed(studentSeed, () => buildMlp(settings.studentHidden));
  const studentName = `student ${architecture(settings.studentHidden)}`;

  // Set the Distiller up before any training, so that a bad temperature or
  // alpha fails before a minute of training. The Distiller reads the teacher at
  // every step, so training the teacher afterwards is fine.
  const distiller = new Distiller({ teacher, student: distilled });
  distiller.compile({
    optimizer: tf.train.adam(settings.learningRate),
    temperature: settings.temperature,
    alpha: settings.alpha,
  });

  console.log(`training ${teacherName} on the labels, ${epochs(settings.teacherEpochs)}...`);
  const teacherSeconds = await fitOnLabels(teacher, train.x, trainOneHot, {
    epochs: settings.teacherEpochs,
    learningRate: settings.teacherLearningRate,
    batchSize: settings.batchSize,
    seed: settings.seed,
  });
  // Inference mode (dropout off), as the Distiller runs the teacher.
  const teacherOnTest = await predictClasses(teacher, test.x);

  console.log(`training ${studentName} on the labels, ${epochs(settings.epochs)}...`);
  const scratchSeconds = await fitOnLabels(scratch, train.x, trainOneHot, {
    epochs: settings.epochs,
    learningRate: settings.learningRate,
    batchSize: settings.batchSize,
    seed: settings.seed,
  });

  console.log(`distilling ${teacherName} into ${studentName}, ${epochs(settings.epochs)}...`);
  const started = performance.now();
  await distiller.fit(train.x, train.y, { epochs: settings.epochs, batchSize: settings.batchSize, seed: settings.seed });
  const distilledSeconds = (performance.now() - started) / 1000;

  const score = async (model: string, network: tfl.LayersModel, seconds: number): Promise<Row> => {
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
  };
  const rows = [
    await score(teacherName, teacher, teacherSeconds),
    await score(`${studentName}, labels only`, scratch, scratchSeconds),
    await score(`${studentName}, distilled (T=${settings.temperature}, alpha=${settings.alpha})`, distilled, distilledSeconds),
  ];

  console.log('');
  printTable(rows, split.test.size);
  // The Distiller scores the same thing itself; its numbers match the last row.
  const report = await distiller.evaluate(test.x, test.y, { batchSize: 500 });
  console.log(
    `\ndistiller.evaluate(test): acc ${report.acc!.toFixed(4)}, agreement ${report.agreement!.toFixed(4)}, ` +
      `distillation_loss ${report.distillation_loss!.toFixed(4)}, student_loss ${report.student_loss!.toFixed(4)}`,
  );
  console.log(
    `teacher: ${epochs(settings.teacherEpochs)}, Adam ${settings.teacherLearningRate}; students: ${epochs(settings.epochs)} each, ` +
      `Adam ${settings.learningRate}; batch ${settings.batchSize}. The distilled student's time includes the teacher's forward passes.`,
  );

  tf.dispose([train.x, train.y, test.x, test.y, trainOneHot]);
  for (const model of [teacher, scratch, distilled]) model.dispose();
}


function epochs(count: number): string {
  return count === 1 ? '1 epoch' : `${count} epochs`;
}

function architecture(hidden: number[]): string {
  return [MNIST_PIXELS, ...hidden, MNIST_CLASSES].join('-');
}

/**
 * Trains a logits model on one-hot labels with plain tfjs-layers, the
 * baseline way. tfjs's built-in 'categoricalCrossentropy' expects
 * probabilities, so the loss is softmax cross-entropy on the logits.
 *
 * @returns Training time in seconds.
 */
async function fitOnLabels(
  model: tfl.LayersModel,
  x: tf.Tensor,
  oneHot: tf.Tensor,
  options: { epochs: number; learningRate: number; batchSize: number; seed: number },
): Promise<number> {
  model.compile({
    optimizer: tf.train.adam(options.learningRate),
    loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits),
  });
  const started = performance.now();
  // tfjs-layers shuffles and draws dropout masks from Math.random: seed it.
  await withSeed(options.seed, () => model.fit(x, oneHot, { epochs: options.epochs, batchSize: options.batchSize, verbose: 0 }));
  return (performance.now() - started) / 1000;
}

/** Class ids predicted by a logits model, in inference mode (dropout off). */
async function predictClasses(model: tfl.LayersModel, x: tf.Tensor): Promise<Int32Array> {
  const classes = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: 500 }) as tf.Tensor, -1));
  const values = (await classes.data()) as Int32Array;
  classes.dispose();
  return values;
}

/** Prints the results as a Markdown table, so it can be pasted into a README as is. */
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
  printMarkdownTable(header, cells);
}

/** A bad command line: reported as a message and the usage, without a stack. */
class UsageError extends Error {}

const USAGE =
  'usage: npx tsx examples/quickstart/main.ts [--backend wasm|cpu] [--seed 0] [--epochs 10] [--teacher-epochs 12] ' +
  '[--temperature 4] [--alpha 0.1] [--student-hidden 32]';

/** Settings from the command line over {@link DEFAULTS}. */
function readFlags(): Settings {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        backend: { type: 'string' },
        seed: { type: 'string' },
        epochs: { type: 'string' },
        'teacher-epochs': { type: 'string' },
        temperature: { type: 'string' },
        alpha: { type: 'string' },
        'student-hidden': { type: 'string' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const settings = { ...DEFAULTS };
  const backend = values.backend ?? settings.backend;
  if (backend !== 'wasm' && backend !== 'cpu') throw new UsageError(`--backend must be wasm or cpu, got ${backend}`);
  settings.backend = backend;
  const number = (name: string, fallback: number, integer: boolean): number => {
    const value = values[name];
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got ${value}`);
    }
    return parsed;
  };
  settings.seed = number('seed', settings.seed, true);
  settings.epochs = number('epochs', settings.epochs, true);
  settings.teacherEpochs = number('teacher-epochs', settings.teacherEpochs, true);
  settings.temperature = number('temperature', settings.temperature, false);
  settings.alpha = number('alpha', settings.alpha, false);
  const hidden = values['student-hidden'];
  if (hidden !== undefined) {
    const widths = hidden.split(',').map(Number);
    if (widths.some((units) => !Number.isInteger(units) || units < 1)) {
      throw new UsageError(`--student-hidden must be layer widths separated by commas (e.g. 64,32), got ${hidden}`);
    }
    settings.studentHidden = widths;
  }
  return settings;
}

// The wasm module rethrows uncaught errors after printing its whole minified
// source: report errors here instead. Invalid epochs, T or alpha are left to
// tfjs and the Distiller, whose errors say what to change.
main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
  else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
