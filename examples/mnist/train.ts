/**
 * Building and training the demo's MLPs, with a learning curve (test errors
 * after every epoch) for each.
 *
 * Two ways to train, on the same batches ({@link EpochBatches}):
 * - {@link trainOnLabels}: plain tfjs-layers `model.fitDataset` with softmax
 *   cross-entropy, the way a tfjs user trains a model today;
 * - {@link distill}: kd-ts's `Distiller.fitDataset`, on the teacher's
 *   softened outputs plus the labels.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Distiller, withSeed, type DatasetLike, type DistillationBatch, type Seed, type TeacherLike } from '../../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS } from '../shared/mnist.js';
import { buildMlp as buildSharedMlp } from '../shared/mlp.js';
import type { StudentCheckpoint } from './checkpoint.js';
import type { DemoBatch, EpochBatches } from './data.js';

/** An MLP's shape: hidden widths, and dropout on the pixels and after each hidden layer. */
export interface MlpSpec {
  hidden: number[];
  inputDropout?: number;
  dropout?: number;
}

/** Test scores after one epoch. */
export interface EpochPoint {
  /** 1-based. */
  epoch: number;
  /** Misclassified test digits. */
  testErrors: number;
  /** Mean training loss over the epoch (the Distiller's is the mixed KD loss). */
  trainLoss: number;
}

/** What a training run returns. */
export interface TrainingRun {
  curve: EpochPoint[];
  /** Wall time of training, without the per-epoch test scoring. */
  seconds: number;
}

/** Options shared by both trainers. */
export interface TrainOptions {
  epochs: number;
  /** Adam's rate in the first epoch, decayed along a half cosine toward 0 by the last (see {@link cosineRate}). */
  learningRate: number;
  /** Seeds dropout masks (and, in the Distiller, every tfjs random draw). */
  seed: Seed;
  /** Scored after every epoch. */
  test: { x: tf.Tensor2D; labels: Int32Array };
  /** Called after every epoch, e.g. to print progress. */
  onEpoch?: (point: EpochPoint) => void;
}

/**
 * A 784-…-10 MLP with ReLU hidden layers that outputs logits: the Distiller
 * compares the teacher's and the student's logits, so no softmax layer.
 *
 * @param spec - Widths and dropout.
 * @param seed - Seeds the initial weights.
 */
export function buildMlp(spec: MlpSpec, seed: Seed): tfl.Sequential {
  return withSeed(seed, () => buildSharedMlp(spec.hidden, spec));
}

/** `784-1200-1200-10`. */
export function architecture(spec: MlpSpec): string {
  return [MNIST_PIXELS, ...spec.hidden, MNIST_CLASSES].join('-');
}

/**
 * Trains a model on one-hot labels with tfjs-layers' own `fitDataset` and
 * Adam. tfjs's 'categoricalCrossentropy' expects probabilities, so the loss
 * is softmax cross-entropy on the logits.
 *
 * @param model - A logits model, e.g. from {@link buildMlp}.
 * @param batches - Training batches built with `oneHot: true`.
 * @param options - Budget, learning rate, seed, test data.
 * @returns The learning curve and the training time.
 */
export async function trainOnLabels(model: tfl.LayersModel, batches: EpochBatches, options: TrainOptions): Promise<TrainingRun> {
  const optimizer = tf.train.adam(options.learningRate);
  model.compile({ optimizer, loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits) });
  const scorer = new EpochScorer(model, options);
  const started = performance.now();
  // tfjs-layers draws dropout masks from Math.random: seed it for the whole run.
  await withSeed(options.seed, () =>
    model.fitDataset(batches as unknown as Parameters<tfl.LayersModel['fitDataset']>[0], {
      epochs: options.epochs,
      verbose: 0,
      callbacks: {
        onEpochBegin: async (epoch) => setLearningRate(optimizer, cosineRate(options.learningRate, epoch, options.epochs)),
        onEpochEnd: (epoch, logs) => scorer.score(epoch, logs?.loss ?? NaN),
      },
    }),
  );
  // Adam's moments: the run is over, nothing steps this optimizer again.
  optimizer.dispose();
  return { curve: scorer.curve, seconds: (performance.now() - started) / 1000 - scorer.seconds };
}

/** Options of {@link distill}, on top of {@link TrainOptions}. */
export interface DistillOptions extends TrainOptions {
  temperature: number;
  /** Weight of the hard-label loss. */
  alpha: number;
  /** `--full --checkpoint`: checkpoints at every epoch end, and resume from them (see checkpoint.ts). */
  checkpoint?: StudentCheckpoint;
}

/**
 * Distils `teacher` into `student` with kd-ts's Distiller on the given
 * batches (class-id labels; with `id`s when the teacher is a cache).
 *
 * @param teacher - A trained model, or a `cachedTeacher` around one.
 * @param student - A fresh logits model.
 * @param batches - Training batches with class ids.
 * @param options - Budget, learning rate, T, alpha, seed, test data.
 * @returns The learning curve and the training time (the teacher's forward passes included).
 */
export async function distill(
  teacher: TeacherLike,
  student: tfl.LayersModel,
  batches: EpochBatches,
  options: DistillOptions,
): Promise<TrainingRun> {
  const distiller = new Distiller({ teacher, student });
  const optimizer = tf.train.adam(options.learningRate);
  distiller.compile({ optimizer, temperature: options.temperature, alpha: options.alpha });
  const scorer = new EpochScorer(student, options);
  const checkpoint = options.checkpoint;
  scorer.curve.push(...(checkpoint?.curve ?? [])); // the epochs a killed run had done
  const started = performance.now();
  await distiller.fitDataset(batches as DatasetLike<DemoBatch> as DatasetLike<DistillationBatch>, {
    epochs: options.epochs,
    seed: options.seed,
    // Resume exactly: every pass of `batches` is fixed by its epoch (atEpoch below), so skipping the batches done is exact.
    ...(checkpoint === undefined ? {} : { checkpoint: { store: checkpoint.store }, resume: true, deterministic: true }),
    callbacks: {
      onEpochBegin: async (epoch: number) => {
        batches.atEpoch(epoch);
        setLearningRate(optimizer, cosineRate(options.learningRate, epoch, options.epochs));
      },
      onEpochEnd: async (epoch: number, logs?: tfl.Logs) => {
        await scorer.score(epoch, logs?.loss ?? NaN);
        await checkpoint?.saveCurve(scorer.curve);
      },
    },
  });
  optimizer.dispose();
  return { curve: scorer.curve, seconds: (performance.now() - started) / 1000 - scorer.seconds };
}

/**
 * The predicted class of every row, in inference mode (dropout off).
 *
 * @param model - A logits (or probabilities) model.
 * @param x - Inputs `[n, 784]`.
 */
export async function predictClasses(model: tfl.LayersModel, x: tf.Tensor): Promise<Int32Array> {
  const classes = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: 500 }) as tf.Tensor, -1));
  const values = (await classes.data()) as Int32Array;
  classes.dispose();
  return values;
}

/**
 * The learning rate of epoch `epoch` (0-based) of `epochs`: a half cosine
 * from `base` toward 0 (Loshchilov and Hutter 2017, without restarts). With a
 * constant rate, a teacher with 50 % dropout ended 10 to 20 test errors
 * apart from one epoch to the next; the decay lets the last epochs settle.
 *
 * @param base - Rate of the first epoch.
 * @param epoch - 0-based epoch.
 * @param epochs - Epochs in the run.
 */
export function cosineRate(base: number, epoch: number, epochs: number): number {
  return base * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs));
}

/** tfjs's optimizers read their `learningRate` field at every step but expose no setter. */
function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
}

/** How many of `predicted` differ from `expected`. */
export function countMismatches(predicted: Int32Array, expected: Int32Array): number {
  let count = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] !== expected[i]) count++;
  return count;
}

/** Scores a model on the test set at the end of every epoch and keeps its own time apart. */
class EpochScorer {
  readonly curve: EpochPoint[] = [];
  seconds = 0;

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly options: TrainOptions,
  ) {}

  async score(epoch: number, trainLoss: number): Promise<void> {
    const started = performance.now();
    const testErrors = countMismatches(await predictClasses(this.model, this.options.test.x), this.options.test.labels);
    const point = { epoch: epoch + 1, testErrors, trainLoss };
    // A resumed run may score again an epoch the killed run had scored: keep the newer.
    while (this.curve.length > 0 && this.curve[this.curve.length - 1]!.epoch >= point.epoch) this.curve.pop();
    this.curve.push(point);
    this.seconds += (performance.now() - started) / 1000;
    this.options.onEpoch?.(point);
  }
}
