import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';
import {
  DEFAULT_BATCH_SIZE,
  disposeBatch,
  isDatasetLike,
  positiveInteger,
  type DatasetLike,
  type DistillationBatch,
} from '../inputs/batches.js';
import { countRows, mapInputs, tensorsOf, type ModelInputs } from '../inputs/modelInputs.js';
import { teacherOutputSpec, type TeacherOutputs } from '../teachers/outputSpec.js';
import { asTeacher, type Teacher, type TeacherLike } from '../teachers/teacher.js';
import { shuffledIndices } from './seed.js';
import { startRun } from './checkpointing.js';
import { assertNoSharedVariables, assertStudentInputs, assertStudentModel, ensureBuilt } from './student.js';
import { MeanLogs, runEpochs, type StepContext } from './epochLoop.js';
import { beginParallelRun, endingParallelRun, parallelBatch, pullingWeightsAfter, type ParallelRun, type ParallelSource } from './parallel.js';
import { buildFeatureDistillation, featureWeightsAt, type FeatureDistillation, type TeacherFeatures } from './features.js';
import { createTrainStep, type StepBatch, type StepLogs, type TrainStep } from './trainStep.js';
import { assertTemperatureScheduleFits } from './stepSettings.js';
import { makeOptimizer } from './compileConfig.js';
import { normalizeValidation, teacherOutputsFor, validateRunLabels, type TeacherCallPlace } from './teacherCall.js';
import { teacherOutputTensors, type StepTeacherOutputs } from './stepData.js';

export type { OptimizerName } from './compileConfig.js';

import type {
  BaseFitArgs,
  DistillerCompileArgs,
  DistillerConfig,
  DistillerEvaluateArgs,
  DistillerFitArgs,
  DistillerFitDatasetArgs,
} from './distillerOptions.js';

/**
 * Trains a student model against a frozen teacher, Keras-style.
 *
 * The teacher runs once per batch in inference mode, outside the gradient
 * tape; the optimizer sees the student's trainable variables only. Logs per
 * epoch: `loss`, `distillation_loss`, `agreement` (student argmax = teacher
 * argmax; for top-k teacher outputs, the id of the largest of the k logits)
 * and, with labels, `student_loss` and `acc` (per unmasked token for
 * token-level students, see `mask`); `val_` versions with
 * validation data; and the settings of the epoch's last step, `temperature`,
 * `alpha`, `learningRate` (`beta` with `kind: 'jsd'`), which may be schedules
 * (docs/schedules.md). `fit` returns a tfjs `History`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import '@tensorflow/tfjs-backend-cpu';
 * import { Distiller } from 'kd-ts';
 *
 * const teacher = tfl.sequential({ layers: [
 *   tfl.layers.dense({ units: 64, activation: 'relu', inputShape: [20] }),
 *   tfl.layers.dense({ units: 3 }),
 * ] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [20] })] });
 * const x = tf.randomNormal([256, 20]);
 * const y = tf.randomUniform([256], 0, 3, 'int32');
 *
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 4, alpha: 0.1 });
 * const history = await distiller.fit(x, y, { epochs: 3, batchSize: 32 });
 * console.log(history.history.agreement);
 * ```
 */
export class Distiller {
  /** The model being trained. */
  readonly student: tfl.LayersModel;
  /** The teacher, adapted to the {@link Teacher} interface. */
  readonly teacher: Teacher;
  private readonly teacherSource: TeacherLike;
  private readonly studentOutputs: TeacherOutputs;
  private step?: TrainStep;
  private temperature = 1;
  private features?: FeatureDistillation;
  /** The last training step's place in the run: evaluation uses the feature weights of that step. */
  private lastStep?: StepContext;

  /**
   * @param config - Teacher, student and what each returns.
   * @throws {@link KdConfigError} `SHARED_VARIABLES` when teacher and student share weights.
   */
  constructor(config: DistillerConfig) {
    assertStudentModel(config.student);
    this.student = config.student;
    this.studentOutputs = config.studentOutputs ?? 'logits';
    assertNoSharedVariables(config.teacher, config.student);
    this.teacher = asTeacher(config.teacher, { outputs: config.teacherOutputs });
    this.teacherSource = config.teacher;
  }

  /**
   * Sets the optimizer and the loss. Call once before training; calling it
   * again starts a fresh optimizer.
   *
   * @param args - See {@link DistillerCompileArgs}.
   * @throws {@link KdConfigError} for invalid T or alpha, a softmax student, an unbuilt student,
   *   or `kind: 'mse'` with a probability teacher; `INVALID_TEMPERATURE` for a temperature schedule
   *   with a teacher whose outputs were stored at one temperature; `INVALID_LEARNING_RATE` for a bad
   *   learning rate or an optimizer without one; `INVALID_OPTION` for a `clipNorm` that is not > 0;
   *   `INVALID_BETA` for a `beta` outside (0, 1) or without `kind: 'jsd'`; `INVALID_TOP_K` for a `topK`
   *   not in [1, classes) or without `kind: 'kl'`; for `features`: `UNKNOWN_LAYER` (listing the
   *   model's layers), `INVALID_TEACHER` (a teacher that is not a LayersModel),
   *   `UNSUPPORTED_FEATURE_LAYER` (nested or shared layers), `FEATURE_SHAPE_MISMATCH` and `RANK_MISMATCH`.
   */
  compile(args: DistillerCompileArgs): void {
    ensureBuilt(this.student);
    assertTemperatureScheduleFits(args.temperature, this.teacher);
    // What a parallel run passes its teacher (a scheduled temperature is refused there).
    this.temperature = typeof args.temperature === 'number' ? args.temperature : 1;
    // Built (and checked) before the step; a new compile drops the old projections.
    const features = args.features === undefined ? undefined : buildFeatureDistillation({ teacher: this.teacherSource, student: this.student, features: args.features });
    this.features?.dispose();
    this.features = features;
    this.step = createTrainStep({
      features,
      student: this.student,
      optimizer: makeOptimizer(args.optimizer),
      temperature: args.temperature,
      alpha: args.alpha,
      learningRate: args.learningRate,
      clipNorm: args.clipNorm,
      kind: args.kind,
      beta: args.beta,
      topK: args.topK,
      scaleByTemperatureSquared: args.scaleByTemperatureSquared,
      studentOutputs: this.studentOutputs,
      teacherOutputs: teacherOutputSpec(this.teacher),
    });
  }

  /**
   * Trains the student on in-memory tensors.
   *
   * @param x - Student inputs: a tensor, an array (multi-input students) or a map by input name.
   * @param y - Optional labels (class ids or one-hot): needed for `alpha > 0`, and for `acc`.
   * @param args - See {@link DistillerFitArgs}.
   * @returns The tfjs `History` of epoch logs.
   * @throws {@link KdConfigError} `NOT_COMPILED` before {@link Distiller.compile}; `TEACHER_FAILED` when the
   *   teacher throws (epoch, batch and teacher named, the original as `cause`; the batch is not applied).
   * @throws {@link KdShapeError} `LENGTH_MISMATCH` when x, y, mask and teacher inputs differ in rows.
   * @throws {@link KdDataError} for labels out of range, NaN/Inf teacher outputs or a NaN loss
   *   (the student keeps the weights it had before the failing step).
   * @throws With `checkpoint`/`resume`: {@link KdConfigError} `CHECKPOINT_MISMATCH` (the newest checkpoint is of
   *   another run; the message names what differs), `CHECKPOINT_UNSUPPORTED` (an optimizer whose state cannot be
   *   restored exactly, e.g. Adamax); {@link KdDataError} `CHECKPOINT_CORRUPT` when no checkpoint in the store can be
   *   read (a damaged newest one falls back to the previous, with a warning). See docs/checkpoints.md.
   *
   * @example
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import * as tfl from '@tensorflow/tfjs-layers';
   * import { Distiller } from 'kd-ts';
   * import { fileCheckpointStore } from 'kd-ts/node';
   *
   * const teacher = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [20] })] });
   * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [20] })] });
   * const distiller = new Distiller({ teacher, student });
   * distiller.compile({ optimizer: 'adam', temperature: 4 });
   * const x = tf.randomNormal([256, 20]);
   * // Killed and started again, the same call continues from its newest checkpoint, to the same weights.
   * const history = await distiller.fit(x, undefined, {
   *   epochs: 10,
   *   seed: 0,
   *   checkpoint: { store: fileCheckpointStore('./checkpoints'), everySteps: 100 },
   *   resume: true,
   * });
   * console.log(history.history.loss);
   * ```
   */
  async fit(x: ModelInputs, y?: tf.Tensor, args: DistillerFitArgs = {}): Promise<tfl.History> {
    const step = this.requireStep();
    const rows = countRows([['x', x], ['y', y], ['teacherInputs', args.teacherInputs], ['mask', args.mask]]);
    assertStudentInputs(this.student, x);
    validateRunLabels(this.student, this.numClasses(), rows, y, args.mask);
    const validation = args.validationData === undefined ? undefined : normalizeValidation(args.validationData);
    const batchSize = positiveInteger(args.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
    const stepsPerEpoch = Math.ceil(rows / batchSize);
    const run = await startRun({ student: this.student, step }, args, { samples: rows, stepsPerEpoch, batchSize, shuffle: args.shuffle !== false, seed: args.seed });

    const validate =
      validation === undefined
        ? undefined
        : () => this.evaluate(validation.x, validation.y, { batchSize, teacherInputs: validation.teacherInputs, mask: validation.mask });

    const parallel = await this.beginParallel(step, args);
    return endingParallelRun(parallel, runEpochs(this.student, args, { samples: rows, steps: stepsPerEpoch, batchSize }, validate, pullingWeightsAfter(parallel, async (onBatch) => {
      const { order, firstBatch } = run.epochOrder(() => (args.shuffle === false ? Int32Array.from({ length: rows }, (_, i) => i) : shuffledIndices(rows, run.random)));
      for (let batch = firstBatch, start = batch * batchSize; start < rows; start += batchSize, batch++) {
        const size = Math.min(batchSize, rows - start);
        const indices = tf.tensor1d(order.subarray(start, start + size), 'int32');
        const take = (t: tf.Tensor) => tf.gather(t, indices);
        const element: DistillationBatch = {
          xs: mapInputs(x, take),
          ys: y === undefined ? undefined : take(y),
          teacherXs: args.teacherInputs === undefined ? undefined : mapInputs(args.teacherInputs, take),
          mask: args.mask === undefined ? undefined : take(args.mask),
        };
        indices.dispose();
        if (await onBatch(batch, size, (at) => this.trainBatch(step, element, parallel, at, batch))) return;
      }
    }), run));
  }

  /**
   * Trains the student on a dataset of batches (e.g. `tf.data` zipped and
   * batched), each `{ xs, ys?, teacherXs?, id? }`. The element tensors are
   * disposed after their step.
   *
   * @param dataset - A `tf.data.Dataset` or anything with `iterator()`.
   * @param args - See {@link DistillerFitDatasetArgs}.
   * @returns The tfjs `History` of epoch logs.
   * @throws {@link KdConfigError} `NOT_COMPILED` before {@link Distiller.compile}; `INVALID_OPTION` for
   *   `checkpoint.everySteps` without `deterministic: true`; the checkpoint errors of {@link Distiller.fit}.
   */
  async fitDataset(dataset: DatasetLike<DistillationBatch>, args: DistillerFitDatasetArgs = {}): Promise<tfl.History> {
    const step = this.requireStep();
    const validationData = args.validationData;
    const validate =
      validationData === undefined
        ? undefined
        : isDatasetLike<DistillationBatch>(validationData)
          ? () => this.evaluateDataset(validationData)
          : () => {
              const v = normalizeValidation(validationData);
              return this.evaluate(v.x, v.y, { teacherInputs: v.teacherInputs, mask: v.mask });
            };
    const batchesPerEpoch = args.batchesPerEpoch === undefined ? undefined : positiveInteger(args.batchesPerEpoch, 'batchesPerEpoch');
    let iterator: Awaited<ReturnType<DatasetLike<DistillationBatch>['iterator']>> | undefined;
    const run = await startRun({ student: this.student, step }, args, { samples: null, stepsPerEpoch: batchesPerEpoch ?? null, seed: args.seed, deterministic: args.deterministic });

    const parallel = await this.beginParallel(step, args);
    return endingParallelRun(parallel, runEpochs(this.student, args, { steps: batchesPerEpoch ?? null }, validate, pullingWeightsAfter(parallel, async (onBatch) => {
      // Without batchesPerEpoch an epoch is one full pass: a new iterator each epoch.
      if (iterator === undefined || batchesPerEpoch === undefined) iterator = await run.iterator(dataset);
      for (let batch = run.firstBatch(); batchesPerEpoch === undefined || batch < batchesPerEpoch; batch++) {
        const next = await iterator.next();
        if (next.done) {
          iterator = undefined;
          return;
        }
        const element = next.value;
        const size = tensorsOf(element.xs)[0]?.shape[0] ?? 0;
        if (await onBatch(batch, size, (at) => this.trainBatch(step, element, parallel, at, batch))) return;
      }
    }), run));
  }

  /**
   * Scores the student against the teacher in inference mode.
   *
   * @param x - Student inputs.
   * @param y - Optional labels; adds `student_loss` and `acc`.
   * @param args - See {@link DistillerEvaluateArgs}.
   * @returns `{ loss, distillation_loss, agreement, student_loss?, acc? }`, example-weighted means.
   * @throws {@link KdConfigError} `NOT_COMPILED` before {@link Distiller.compile}.
   */
  async evaluate(x: ModelInputs, y?: tf.Tensor, args: DistillerEvaluateArgs = {}): Promise<Record<string, number>> {
    const step = this.requireStep();
    const rows = countRows([['x', x], ['y', y], ['teacherInputs', args.teacherInputs], ['mask', args.mask]]);
    assertStudentInputs(this.student, x);
    validateRunLabels(this.student, this.numClasses(), rows, y, args.mask);
    const batchSize = positiveInteger(args.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
    const totals = new MeanLogs();
    for (let start = 0; start < rows; start += batchSize) {
      const size = Math.min(batchSize, rows - start);
      const take = (t: tf.Tensor) => tf.slice(t, [start], [size]);
      const element: DistillationBatch = {
        xs: mapInputs(x, take),
        ys: y === undefined ? undefined : take(y),
        teacherXs: args.teacherInputs === undefined ? undefined : mapInputs(args.teacherInputs, take),
        mask: args.mask === undefined ? undefined : take(args.mask),
      };
      totals.add(await this.scoreBatch(step, element, true, { batch: start / batchSize }), size);
    }
    return totals.mean();
  }

  /**
   * Scores the student on a dataset of batches (see {@link Distiller.evaluate}).
   *
   * @param dataset - A `tf.data.Dataset` of `{ xs, ys?, teacherXs?, id? }` batches.
   * @returns Example-weighted mean logs.
   */
  async evaluateDataset(dataset: DatasetLike<DistillationBatch>): Promise<Record<string, number>> {
    const step = this.requireStep();
    const totals = new MeanLogs();
    const iterator = await dataset.iterator();
    for (let next = await iterator.next(), batch = 0; !next.done; next = await iterator.next(), batch++) {
      const size = tensorsOf(next.value.xs)[0]?.shape[0] ?? 0;
      totals.add(await this.scoreBatch(step, next.value, true, { batch }), size);
    }
    return totals.mean();
  }

  /** Starts a data-parallel run when `args.parallel` is given. */
  private beginParallel(step: TrainStep, args: BaseFitArgs): Promise<ParallelRun | undefined> {
    if (args.parallel === undefined) return Promise.resolve(undefined);
    return beginParallelRun(args.parallel, this.parallelSource(step), args);
  }

  private parallelSource(step: TrainStep): ParallelSource {
    return { student: this.student, teacher: this.teacher, teacherSource: this.teacherSource, step, temperature: this.temperature };
  }

  /** One training step, on worker replicas when the run is parallel; disposes the batch. */
  private trainBatch(step: TrainStep, element: DistillationBatch, parallel: ParallelRun | undefined, at: StepContext, batch: number): Promise<StepLogs> {
    return parallel === undefined ? this.scoreBatch(step, element, false, { epoch: at.epoch, batch }, at) : parallelBatch(parallel, this.parallelSource(step), element, { epoch: at.epoch, batch });
  }

  /** Runs the teacher on one batch, then one training step (or scoring); disposes the batch. */
  private async scoreBatch(step: TrainStep, element: DistillationBatch, evaluateOnly: boolean, place: TeacherCallPlace, at?: StepContext): Promise<StepLogs> {
    let teacherLogits: StepTeacherOutputs | undefined;
    let teacherFeatures: TeacherFeatures | undefined;
    try {
      // The step's temperature (schedules evaluated once per step; evaluation: the last step's).
      ({ teacherLogits, teacherFeatures } = await teacherOutputsFor(this.teacher, this.teacherSource, this.features, element, step.settingsAt(at).temperature, place));
      const batch: StepBatch = { inputs: element.xs, teacherLogits, labels: element.ys, mask: element.mask, teacherFeatures, featureWeights: this.featureWeightsAt(at), at };
      return await (evaluateOnly ? step.evaluate(batch) : step(batch));
    } finally {
      disposeBatch(element);
      tf.dispose(teacherOutputTensors(teacherLogits));
      if (teacherFeatures !== undefined) tf.dispose([...teacherFeatures.features, ...teacherFeatures.masks.filter((m): m is tf.Tensor => m !== null)]);
    }
  }

  /** The feature terms' weights at this step (schedules evaluated; outside training, at the last step trained). */
  private featureWeightsAt(at: StepContext | undefined): number[] | undefined {
    if (this.features === undefined) return undefined;
    if (at !== undefined) this.lastStep = at;
    return featureWeightsAt(this.features.features, this.lastStep ?? { epoch: 0, step: 0, epochs: 1, stepsPerEpoch: null });
  }

  private requireStep(): TrainStep {
    if (this.step === undefined) {
      throw new KdConfigError(
        'NOT_COMPILED',
        'the distiller is not compiled: call distiller.compile({ optimizer, temperature, alpha }) before fit or evaluate',
      );
    }
    return this.step;
  }

  private numClasses(): number {
    const shape = this.student.outputs[0]?.shape;
    return shape?.[shape.length - 1] ?? 0;
  }
}
