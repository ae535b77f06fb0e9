import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';
import {
  distillationLossTerms,
  resolveLossConfig,
  type DistillationKind,
  type ResolvedLossConfig,
} from '../losses/distillationLoss.js';
import { probsToLogits } from '../losses/probsToLogits.js';
import { assertTeacherOutputsFit } from '../losses/teacherCompatibility.js';
import { assertTopKBelowClasses } from '../losses/topK.js';
import { orderInputs, type ModelInputs } from '../inputs/modelInputs.js';
import { outputSpecOf, type TeacherOutputs, type TeacherOutputSpec } from '../teachers/outputSpec.js';
import {
  assertStudentMatches,
  batchStats,
  checkStepData,
  disposeConverted,
  readStats,
  stepTeacherAsLogits,
  type StepTeacherOutputs,
} from './stepData.js';
import { assertStudentOutputs } from './student.js';
import { constantFeatureWeights, type FeatureDistillation, type TeacherFeatures } from './features.js';
import type { StepContext } from './epochLoop.js';
import type { Schedule } from './schedules.js';
import { clipByGlobalNorm, scheduleStandIns, settingsLogs, stepSettings, type StepSettings } from './stepSettings.js';

/**
 * The loss and update settings {@link createTrainStep} and `Distiller.compile` share (see docs/losses.md
 * and docs/schedules.md). A {@link Schedule} is a number or a function of the step, evaluated per step.
 */
export interface DistillationSettings {
  /**
   * Softening temperature T (> 0; required for `kind: 'kl'`): a number or a {@link Schedule}. A schedule
   * needs a teacher that recomputes its outputs at every temperature (not a cache of one T's outputs).
   */
  temperature?: Schedule;
  /** Weight of the hard-label term in [0, 1] (default 0; > 0 needs labels): a number or a {@link Schedule}. */
  alpha?: Schedule;
  /**
   * The optimizer's learning rate: a number (set once) or a {@link Schedule}
   * (set before every update). Without it the optimizer keeps its own.
   */
  learningRate?: Schedule;
  /** Clip the global L2 norm of the gradients (student and projections together) to this (> 0), like Keras's `global_clipnorm`. */
  clipNorm?: number;
  /**
   * `'kl'` (default), `'reverse-kl'`, `'jsd'`, `'tvd'` or `'mse'` (see
   * {@link distillationLoss}); `'none'`: no logit term (feature terms only,
   * FitNets' first stage; needs `features`).
   */
  kind?: DistillationKind | 'none';
  /** `kind: 'jsd'` only: the teacher's weight in the mixture, in (0, 1) (default 0.5); a number or a {@link Schedule}. */
  beta?: Schedule;
  /**
   * `kind: 'kl'` only: keep the teacher's k largest logits per row (an integer
   * in [1, classes)), renormalized; the student keeps its full softmax.
   * Teacher outputs given as top-k (`{ ids, logits }`) need no `topK`.
   */
  topK?: number;
  /** Multiply the divergence term (every kind but 'mse') by T² (default true). */
  scaleByTemperatureSquared?: boolean;
}

/** Options of {@link createTrainStep}. */
export interface TrainStepOptions extends DistillationSettings {
  /** The model being trained. Must be built (have weights). */
  student: tfl.LayersModel;
  /** Its optimizer; keep one per student for the whole run (Adam's moments are positional). */
  optimizer: tf.Optimizer;
  /** What the student returns; `'probs'` for a student ending in softmax (default `'logits'`). */
  studentOutputs?: TeacherOutputs;
  /**
   * What the teacher outputs passed to the step are (default `'logits'`): a
   * teacher's `outputs`, e.g. `teacherOutputSpec(teacher)`. Outputs that are
   * not plain logits (probabilities, logits up to a per-row constant or
   * depending on the temperature) are rejected with `kind: 'mse'`.
   */
  teacherOutputs?: TeacherOutputs | TeacherOutputSpec;
  /**
   * Feature terms (built by the Distiller from `compile({ features })`): the
   * student runs through a model with extra outputs, each batch brings the
   * teacher's features, and the projections' variables join the optimizer's list.
   * @internal
   */
  features?: FeatureDistillation;
}

/** One batch for a {@link TrainStep}. Tensors stay owned by the caller. */
export interface StepBatch {
  /** Student inputs. */
  inputs: ModelInputs;
  /**
   * Teacher outputs for the same examples: `[batch, classes]`, token-level
   * `[batch, time, classes]`, or top-k outputs `{ ids, logits }` (`[batch(, time), k]`).
   */
  teacherLogits: StepTeacherOutputs;
  /** Token-level logits only: `[batch, time]`, 1 for a token that counts, 0 for padding. */
  mask?: tf.Tensor;
  /** Class ids or one-hot labels, when training with a hard-label term or measuring accuracy. */
  labels?: tf.Tensor;
  /** The teacher's features of the batch, when the step has feature terms. @internal */
  teacherFeatures?: TeacherFeatures;
  /** The feature terms' weights at this step (schedules evaluated); the constant weights when absent. @internal */
  featureWeights?: readonly number[];
  /**
   * The step's place in the run, at which schedules are evaluated: required
   * for training when a setting is a schedule; evaluation without it uses the
   * last training step's settings.
   */
  at?: StepContext;
}

/**
 * Batch metrics, as plain numbers: the contract's log keys. `student_loss`
 * and `acc` appear only when labels were given.
 */
export interface StepLogs {
  [key: string]: number;
  loss: number;
  distillation_loss: number;
  agreement: number;
}

/**
 * One optimizer step (training) or one scoring pass (evaluation) of a student
 * against given teacher outputs.
 */
export interface TrainStep {
  /** Runs forward, backward and the optimizer update; returns the batch's logs. */
  (batch: StepBatch): Promise<StepLogs>;
  /** Scores a batch in inference mode without updating anything. */
  evaluate(batch: StepBatch): Promise<StepLogs>;
  /** The variables the optimizer updates (fixed at creation). */
  readonly variables: readonly tf.Variable[];
  /** The resolved loss settings. */
  readonly config: ResolvedLossConfig;
  /** The feature projections' variables (also at the end of `variables`); empty without feature terms. */
  readonly projectionVariables: readonly tf.Variable[];
  /** The options the step was created with (data-parallel training replicates the step from them). */
  readonly options: TrainStepOptions;
  /**
   * The settings (temperature, alpha, beta, learning rate) at a place in the
   * run, schedules evaluated and checked; without `at`, those of the last
   * training step. Call it for the temperature to run the teacher at.
   */
  settingsAt(at?: StepContext): StepSettings;
}

/**
 * Builds the training step the {@link Distiller} uses, for custom loops.
 *
 * Each call runs the student with `training: true`, computes
 * {@link distillationLoss} plus the student's regularization losses, and
 * applies the gradients to the student's trainable variables only (the list
 * is fixed when the step is created). The teacher outputs are constants. One
 * value read per batch checks the teacher outputs and the loss *before*
 * the update, so a NaN never reaches the weights: the step throws a
 * {@link KdDataError} and the student keeps its last good weights.
 *
 * @param options - See {@link TrainStepOptions}.
 * @returns A {@link TrainStep}.
 * @throws {@link KdConfigError} for invalid loss options or a softmax student without `studentOutputs: 'probs'`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { createTrainStep } from 'kd-ts';
 *
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] })] });
 * const step = createTrainStep({ student, optimizer: tf.train.adam(1e-3), temperature: 2 });
 * const x = tf.randomNormal([8, 4]);
 * const teacherLogits = tf.randomNormal([8, 3]);
 * const logs = await step({ inputs: x, teacherLogits }); // { loss, distillation_loss, agreement }
 * ```
 */
export function createTrainStep(options: TrainStepOptions): TrainStep {
  const { student, optimizer } = options;
  const studentOutputs = options.studentOutputs ?? 'logits';
  const teacherOutputs = outputSpecOf(options.teacherOutputs);
  assertStudentOutputs(student, studentOutputs);
  // kind 'none': no logit term, so nothing about it is resolved or checked (config.kind reads 'mse'); alpha still weights the labels.
  const noLogitTerm = options.kind === 'none';
  if (noLogitTerm && options.features === undefined) {
    throw new KdConfigError(
      'INVALID_OPTION',
      "kind 'none' drops the logit term, so without features nothing would train: add features, or pick a kind such as 'kl'",
    );
  }
  if (noLogitTerm && options.beta !== undefined) {
    throw new KdConfigError('INVALID_BETA', "beta shapes the 'jsd' logit term, which kind 'none' drops: remove beta, or use kind 'jsd'");
  }
  if (noLogitTerm && options.topK !== undefined) {
    throw new KdConfigError('INVALID_TOP_K', "topK shapes the 'kl' logit term, which kind 'none' drops: remove topK, or use kind 'kl'");
  }
  // Schedules are checked per step (stepSettings); the config holds the constants.
  const config = resolveLossConfig({ ...options, ...scheduleStandIns(options), kind: noLogitTerm ? 'mse' : (options.kind as DistillationKind | undefined) }, true);
  if (!noLogitTerm) assertTeacherOutputsFit(config.kind, teacherOutputs);
  const settings = stepSettings(options, config, optimizer, !noLogitTerm && config.kind !== 'mse');
  const configAt = (at: StepSettings): ResolvedLossConfig => ({ ...config, temperature: at.temperature, alpha: at.alpha, beta: at.beta ?? config.beta });
  const lossTerms = (studentLogits: tf.Tensor, teacherLogits: StepTeacherOutputs, config: ResolvedLossConfig, labels?: tf.Tensor, mask?: tf.Tensor) => {
    const terms = distillationLossTerms(studentLogits, teacherLogits, config, labels, undefined, mask);
    if (!noLogitTerm) return terms;
    const zero = tf.scalar(0);
    const loss = terms.studentLoss === undefined ? zero : (tf.mul(terms.studentLoss, config.alpha) as tf.Scalar);
    return { loss, distillation: zero, studentLoss: terms.studentLoss };
  };
  const features = options.features;
  const studentVariables = student.trainableWeights.map((w) => w.read() as tf.Variable);
  const projectionVariables = features?.projectionVariables ?? [];
  const variables = [...studentVariables, ...projectionVariables];
  if (studentVariables.length === 0) {
    throw new KdConfigError('INVALID_STUDENT', 'the student has no trainable weights: build it, and unfreeze its layers');
  }

  const featureWeights = features === undefined ? [] : constantFeatureWeights(features.features);
  const forward = (batch: StepBatch, training: boolean): { logits: tf.Tensor; featureLoss?: tf.Scalar } => {
    let raw: tf.Tensor;
    let featureLoss: tf.Scalar | undefined;
    if (features !== undefined) {
      const out = features.runStudent(batch.inputs, training);
      raw = out.logits;
      featureLoss = features.loss(out, batch.teacherFeatures!, batch.featureWeights ?? featureWeights);
    } else {
      raw = student.apply(orderInputs(student, batch.inputs), { training }) as tf.Tensor;
    }
    return { logits: studentOutputs === 'probs' ? probsToLogits(raw) : raw, featureLoss };
  };
  // The teacher's outputs as logits: constants of the step, made outside the gradient tape.
  const teacherLogitsOf = (batch: StepBatch): StepTeacherOutputs => {
    const converted = tf.tidy(() => stepTeacherAsLogits(batch.teacherLogits, teacherOutputs) as tf.TensorContainer);
    return converted as StepTeacherOutputs;
  };

  const outputShape = student.outputs[0]!.shape;
  const studentClasses = outputShape[outputShape.length - 1];
  // Known at creation for most students; otherwise the loss checks it at the first batch.
  if (config.topK !== undefined && typeof studentClasses === 'number') assertTopKBelowClasses(config.topK, studentClasses);

  // Checked before the gradient closure: a throw inside tf.variableGrads leaks its tensors.
  const checkShapes = (batch: StepBatch, alpha: number) => {
    if (features !== undefined && batch.teacherFeatures?.features.length !== features.features.length) {
      throw new KdConfigError(
        'INVALID_OPTION',
        `the step has ${features.features.length} feature terms but the batch carries ${batch.teacherFeatures?.features.length ?? 0} teacher features: ` +
          "pass the teacher's features of the batch (teacherFeatures), as the Distiller does",
      );
    }
    checkStepData(batch, config, alpha, outputShape, !noLogitTerm);
  };

  const step = async (batch: StepBatch): Promise<StepLogs> => {
    // Schedules first: a bad value throws before anything runs.
    const now = settings.settingsAt(batch.at, true);
    const stepConfig = configAt(now);
    checkShapes(batch, stepConfig.alpha);
    const teacherLogits = teacherLogitsOf(batch);
    let stats: tf.Tensor1D | undefined;
    let gradients: ReturnType<typeof tf.variableGrads> | undefined;
    try {
      gradients = tf.variableGrads(() => {
        const { logits: studentLogits, featureLoss } = forward(batch, true);
        assertStudentMatches(studentLogits, teacherLogits);
        const terms = lossTerms(studentLogits, teacherLogits, stepConfig, batch.labels, batch.mask);
        const regularization = student.calculateLosses();
        const loss = tf.addN([terms.loss, ...regularization, ...(featureLoss ? [featureLoss] : [])]);
        stats = tf.keep(batchStats(loss as tf.Scalar, { ...terms, featureLoss }, studentLogits, batch, teacherOutputs));
        return loss as tf.Scalar;
      }, variables);
    } finally {
      disposeConverted(teacherLogits, batch.teacherLogits);
    }
    const { value, grads } = gradients;
    try {
      const values = await stats!.data();
      const logs = { ...readStats(values, batch, teacherOutputs, studentClassesOf(batch)), ...settingsLogs(now) };
      // Adam and friends keep their slots by position in the gradient list:
      // a variable without gradient this step gets zeros so positions never shift.
      const complete: tf.NamedTensorMap = {};
      for (const v of variables) complete[v.name] = grads[v.name] ?? tf.zerosLike(v);
      const applied = settings.clipNorm === undefined ? complete : clipByGlobalNorm(complete, settings.clipNorm);
      settings.applyLearningRate(now);
      optimizer.applyGradients(applied);
      tf.dispose([...Object.values(complete), ...Object.values(applied)]);
      return logs;
    } finally {
      tf.dispose([value, stats!, ...Object.values(grads)]);
    }
  };

  const evaluate = async (batch: StepBatch): Promise<StepLogs> => {
    const now = settings.settingsAt(batch.at, false);
    const stepConfig = configAt(now);
    checkShapes(batch, stepConfig.alpha);
    const stats = tf.tidy(() => {
      const { logits: studentLogits, featureLoss } = forward(batch, false);
      const teacherLogits = stepTeacherAsLogits(batch.teacherLogits, teacherOutputs);
      assertStudentMatches(studentLogits, teacherLogits);
      const terms = lossTerms(studentLogits, teacherLogits, stepConfig, batch.labels, batch.mask);
      // Like Keras, the reported loss includes the regularization penalties.
      const regularization = student.calculateLosses();
      const loss = tf.addN([terms.loss, ...regularization, ...(featureLoss ? [featureLoss] : [])]);
      return batchStats(loss as tf.Scalar, { ...terms, featureLoss }, studentLogits, batch, teacherOutputs);
    });
    try {
      return { ...readStats(await stats.data(), batch, teacherOutputs, studentClassesOf(batch)), ...settingsLogs(now) };
    } finally {
      stats.dispose();
    }
  };

  const studentClassesOf = (batch: StepBatch): number => {
    if (typeof studentClasses === 'number') return studentClasses;
    const t = batch.teacherLogits as tf.Tensor;
    return t.shape[t.rank - 1]!;
  };
  const settingsAt = (at?: StepContext) => settings.settingsAt(at, false);
  return Object.assign(step, { evaluate, variables, config, options, projectionVariables, settingsAt });
}
