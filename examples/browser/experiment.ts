/**
 * One run of the demo, in the page: a teacher (loaded or trained here), a
 * student trained on the labels alone ("scratch"), and the same student,
 * from the same initial weights, distilled from the teacher with kd-ts.
 * Nothing here touches the DOM; the page listens through {@link RunHooks}.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Distiller, softmaxWithTemperature, withSeed } from 'kd-ts';
import type { CheckpointStore } from 'kd-ts/distill';
import type { DemoData } from './data.js';
import { CLASSES, PIXELS, architecture, buildMlp } from './models.js';

/** What the user can set (the page's controls and URL parameters). */
export interface RunSettings {
  temperature: number;
  /** Weight of the hard-label loss; 1 − alpha goes to the teacher's soft targets. */
  alpha: number;
  /** Epochs of each student. */
  epochs: number;
  /** `pretrained`: load the teacher prepare.ts trained in Node; `train`: train one here first. */
  teacher: 'pretrained' | 'train';
  teacherEpochs: number;
  seed: number;
}

/** Settings the controls do not show. */
const FIXED = {
  studentHidden: [32],
  /** Same as the pretrained teacher's. */
  teacherHidden: [256, 256],
  teacherLearningRate: 1e-3,
  /** Soft targets train slowly at 1e-3; at 1e-2 the distilled student leads early (see examples/quickstart). */
  studentLearningRate: 1e-2,
  batchSize: 64,
  /** Digits shown with their soft predictions. */
  softExamples: 6,
  /** Timed predictions per model (median taken), after one warm-up. */
  inferenceRuns: 5,
};

/** The three curves of the chart. */
export type Series = 'teacher' | 'scratch' | 'distilled';

/** One row of the results table. */
export interface ModelRow {
  model: string;
  series: Series;
  parameters: number;
  /** Test accuracy in [0, 1]. */
  accuracy: number;
  /** Share of test digits where the model's class is the teacher's (null for the teacher). */
  agreement: number | null;
  /** Median time to classify all test digits, in milliseconds. */
  inferenceMs: number;
  /** Training time in this page, in seconds (0 for a loaded teacher). */
  trainSeconds: number;
}

/** A test digit with the teacher's and the distilled student's softened predictions. */
export interface SoftExample {
  /** Row in the test set. */
  index: number;
  label: number;
  /** Probabilities at the run's temperature, 10 each. */
  teacher: number[];
  student: number[];
}

/** Everything a run produced: what the page shows and what the test reads. */
export interface RunResult {
  settings: RunSettings;
  rows: ModelRow[];
  /** Test accuracy after each epoch (index 0: before training), per series. */
  curves: Record<Series, number[]>;
  soft: SoftExample[];
  seconds: number;
}

/** A run's result and the distilled student, which the caller owns (to save it, then dispose it). */
export interface RunOutcome {
  result: RunResult;
  student: tfl.LayersModel;
}

/** Where the distillation checkpoints, so that a reloaded page resumes it. */
export interface RunCheckpoints {
  store: CheckpointStore;
  /** Test accuracies of the distilled student measured before the reload, by epoch. */
  earlier: number[];
}

/** Progress callbacks. */
export interface RunHooks {
  status(text: string): void;
  /** A test accuracy measured after `epoch` epochs of `series` (0: before training). */
  point(series: Series, epoch: number, accuracy: number): void;
}

/**
 * Runs teacher, scratch student and distilled student on the active backend.
 *
 * @param settings - What the user chose.
 * @param data - The digits (see data.ts).
 * @param base - The page's base URL (the pretrained teacher is under `teacher/`).
 * @param hooks - Progress callbacks.
 * @param checkpoints - Where the distillation checkpoints and resumes from (see resume.ts); none: no checkpoints.
 * @returns Scores, curves, soft predictions, and the distilled student. Every other tensor and model made here is disposed.
 */
export async function runExperiment(
  settings: RunSettings,
  data: DemoData,
  base: string,
  hooks: RunHooks,
  checkpoints?: RunCheckpoints,
): Promise<RunOutcome> {
  const started = performance.now();
  const curves: Record<Series, number[]> = { teacher: [], scratch: [], distilled: [] };
  const point = (series: Series, epoch: number, accuracy: number): void => {
    curves[series][epoch] = accuracy;
    hooks.point(series, epoch, accuracy);
  };
  const xTrain = tf.tensor2d(data.train.x, [data.train.size, PIXELS]);
  const yTrain = tf.tensor1d(data.train.labels, 'int32');
  const oneHotTrain = tf.oneHot(yTrain, CLASSES);
  const xTest = tf.tensor2d(data.test.x, [data.test.size, PIXELS]);
  const yTest = tf.tensor1d(data.test.labels, 'int32');
  // Disposed at the end; the distilled student only if the run fails.
  const models: tfl.LayersModel[] = [];
  let succeeded = false;
  let distilledModel: tfl.LayersModel | undefined;
  let teacherLogits: tf.Tensor | undefined;
  const optimizers: tf.Optimizer[] = [];
  try {
    const accuracyOf = async (model: tfl.LayersModel): Promise<number> => score(await predictClasses(model, xTest), data.test.labels);

    // 1. The teacher.
    let teacher: tfl.LayersModel;
    let teacherSeconds = 0;
    if (settings.teacher === 'pretrained') {
      hooks.status('loading the pretrained teacher…');
      teacher = await tfl.loadLayersModel(new URL('teacher/model.json', base).href);
      models.push(teacher);
    } else {
      teacher = withSeed(settings.seed, () => buildMlp(FIXED.teacherHidden, { dropout: 0.3, inputDropout: 0.2 }));
      models.push(teacher);
      hooks.status(`training the teacher ${architecture(FIXED.teacherHidden)}, ${settings.teacherEpochs} epochs…`);
      teacherSeconds = await fitOnLabels(teacher, xTrain, oneHotTrain, settings.teacherEpochs, FIXED.teacherLearningRate, settings.seed, async (epoch) =>
        point('teacher', epoch, await accuracyOf(teacher)),
      );
    }
    // The teacher's test logits, computed once: classes for agreement, soft targets for the view.
    teacherLogits = tf.tidy(() => teacher.predict(xTest, { batchSize: 500 }) as tf.Tensor);
    const teacherClasses = await classesOf(teacherLogits);
    if (settings.teacher === 'pretrained') {
      const accuracy = score(teacherClasses, data.test.labels);
      for (let epoch = 0; epoch <= settings.epochs; epoch++) point('teacher', epoch, accuracy);
    }

    // 2. Two students with the same initial weights; only what they learn from differs.
    const studentSeed = `${settings.seed}/student`;
    const scratch = withSeed(studentSeed, () => buildMlp(FIXED.studentHidden));
    const distilled = withSeed(studentSeed, () => buildMlp(FIXED.studentHidden));
    distilledModel = distilled;
    models.push(scratch);
    const initial = await accuracyOf(scratch);
    point('scratch', 0, initial);
    point('distilled', 0, initial);

    hooks.status(`training the student ${architecture(FIXED.studentHidden)} on the labels, ${settings.epochs} epochs…`);
    const scratchSeconds = await fitOnLabels(scratch, xTrain, oneHotTrain, settings.epochs, FIXED.studentLearningRate, settings.seed, async (epoch) =>
      point('scratch', epoch, await accuracyOf(scratch)),
    );

    hooks.status(`distilling into the student, T=${settings.temperature}, alpha=${settings.alpha}, ${settings.epochs} epochs…`);
    const distiller = new Distiller({ teacher, student: distilled });
    const optimizer = tf.train.adam(FIXED.studentLearningRate);
    optimizers.push(optimizer); // Adam's moments: not disposed with the student
    distiller.compile({ optimizer, temperature: settings.temperature, alpha: settings.alpha });
    const distilledTimer = new EpochTimer();
    // A resumed run: the chart's points of the epochs done before the reload (the checkpoint holds the student, not the chart).
    checkpoints?.earlier.forEach((accuracy, epoch) => epoch > 0 && point('distilled', epoch, accuracy));
    // Checkpoints at every epoch end; with resume, fit continues from the newest one in the store (or starts fresh).
    const fitArgs = {
      epochs: settings.epochs,
      batchSize: FIXED.batchSize,
      seed: settings.seed,
      callbacks: distilledTimer.callbacks(async (epoch) => point('distilled', epoch, await accuracyOf(distilled))),
      ...(checkpoints === undefined ? {} : { checkpoint: { store: checkpoints.store }, resume: true }),
    };
    await distiller.fit(xTrain, yTrain, fitArgs);
    const distilledSeconds = distilledTimer.seconds;

    // 3. Scores, timings and soft predictions.
    hooks.status('scoring…');
    const row = async (model: string, series: Series, network: tfl.LayersModel, trainSeconds: number): Promise<ModelRow> => {
      const classes = await predictClasses(network, xTest);
      return {
        model,
        series,
        parameters: network.countParams(),
        accuracy: score(classes, data.test.labels),
        agreement: series === 'teacher' ? null : score(classes, teacherClasses),
        inferenceMs: await timeInference(network, xTest),
        trainSeconds,
      };
    };
    const student = architecture(FIXED.studentHidden);
    const rows = [
      await row(`teacher ${architecture(FIXED.teacherHidden)}${settings.teacher === 'pretrained' ? ' (pretrained)' : ''}`, 'teacher', teacher, teacherSeconds),
      await row(`student ${student}, labels only`, 'scratch', scratch, scratchSeconds),
      await row(`student ${student}, distilled`, 'distilled', distilled, distilledSeconds),
    ];
    const soft = await softExamples(teacherLogits, distilled, xTest, data.test.labels, settings.temperature);
    succeeded = true;
    return { result: { settings, rows, curves, soft, seconds: (performance.now() - started) / 1000 }, student: distilled };
  } finally {
    tf.dispose([xTrain, yTrain, oneHotTrain, xTest, yTest]);
    teacherLogits?.dispose();
    for (const optimizer of optimizers) optimizer.dispose();
    for (const model of models) model.dispose();
    if (!succeeded) distilledModel?.dispose();
  }
}

/**
 * Trains a logits model on one-hot labels with plain tfjs-layers, the
 * baseline way (tfjs's 'categoricalCrossentropy' expects probabilities).
 *
 * @returns Training time in seconds, scoring after each epoch excluded.
 */
async function fitOnLabels(
  model: tfl.LayersModel,
  x: tf.Tensor,
  oneHot: tf.Tensor,
  epochs: number,
  learningRate: number,
  seed: number,
  onEpoch: (epoch: number) => Promise<void>,
): Promise<number> {
  // An optimizer passed as an object is not disposed with the model: dispose it here.
  const optimizer = tf.train.adam(learningRate);
  model.compile({ optimizer, loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits) });
  const timer = new EpochTimer();
  try {
    // tfjs-layers shuffles and draws dropout masks from Math.random: seed it.
    await withSeed(seed, () => model.fit(x, oneHot, { epochs, batchSize: FIXED.batchSize, verbose: 0, callbacks: timer.callbacks(onEpoch) }));
  } finally {
    optimizer.dispose();
  }
  return timer.seconds;
}

/**
 * Epoch callbacks (tfjs-layers' and the Distiller's take the same shape)
 * that add up training time only: what `onEpoch` does after each epoch
 * (scoring the test set, repainting the chart) is not counted.
 */
class EpochTimer {
  /** Training seconds so far. */
  seconds = 0;
  private since = 0;

  callbacks(onEpoch: (epoch: number) => Promise<void>): tfl.CustomCallbackArgs {
    return {
      onEpochBegin: async () => {
        this.since = performance.now();
      },
      onEpochEnd: async (epoch: number) => {
        this.seconds += (performance.now() - this.since) / 1000;
        await onEpoch(epoch + 1);
        await tf.nextFrame(); // let the page repaint
      },
    };
  }
}

/** Class ids a logits model predicts (inference mode: dropout off). */
async function predictClasses(model: tfl.LayersModel, x: tf.Tensor): Promise<Int32Array> {
  const logits = model.predict(x, { batchSize: 500 }) as tf.Tensor;
  const classes = await classesOf(logits);
  logits.dispose();
  return classes;
}

/** The argmax of each row of logits, read back. */
async function classesOf(logits: tf.Tensor): Promise<Int32Array> {
  const classes = tf.argMax(logits, -1);
  const values = (await classes.data()) as Int32Array;
  classes.dispose();
  return values;
}

function score(predicted: Int32Array, truth: Int32Array): number {
  let same = 0;
  for (let i = 0; i < truth.length; i++) if (predicted[i] === truth[i]) same++;
  return same / truth.length;
}

/**
 * Median wall time of classifying `x` (reading the classes back included),
 * after one warm-up: up to {@link FIXED.inferenceRuns} runs, fewer when one
 * takes long (the teacher on the cpu backend takes seconds).
 */
async function timeInference(model: tfl.LayersModel, x: tf.Tensor): Promise<number> {
  await predictClasses(model, x); // shader compilation, wasm buffers
  const times: number[] = [];
  const budgetMs = 2000;
  for (let run = 0, spent = 0; run < FIXED.inferenceRuns && (run < 1 || spent < budgetMs); run++) {
    const start = performance.now();
    await predictClasses(model, x);
    times.push(performance.now() - start);
    spent += times[times.length - 1]!;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/**
 * The test digits where the teacher's softened distribution is flattest
 * (highest entropy at T): there its "dark knowledge", which wrong classes it
 * finds plausible, is easiest to see.
 */
async function softExamples(
  teacherLogits: tf.Tensor,
  student: tfl.LayersModel,
  x: tf.Tensor,
  labels: Int32Array,
  temperature: number,
): Promise<SoftExample[]> {
  const [teacherProbs, studentProbs, entropy] = tf.tidy(() => {
    const t = softmaxWithTemperature(teacherLogits, temperature);
    const s = softmaxWithTemperature(student.predict(x) as tf.Tensor, temperature);
    const h = tf.neg(tf.sum(tf.mul(t, tf.log(tf.add(t, 1e-12))), -1));
    return [t, s, h];
  });
  const [t, s, h] = await Promise.all([teacherProbs.array() as Promise<number[][]>, studentProbs.array() as Promise<number[][]>, entropy.data()]);
  tf.dispose([teacherProbs, studentProbs, entropy]);
  const order = Array.from(h.keys()).sort((a, b) => h[b]! - h[a]!);
  return order.slice(0, FIXED.softExamples).map((index) => ({ index, label: labels[index]!, teacher: t[index]!, student: s[index]! }));
}
