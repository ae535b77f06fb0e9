import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import {
  assertLabelsShape,
  distillationLossTerms,
  isIdLabels,
  resolveLossConfig,
  type DistillationKind,
  type ResolvedLossConfig,
} from '../losses/distillationLoss.js';
import { probsToLogits } from '../losses/probsToLogits.js';
import { assertTeacherOutputsFit } from '../losses/teacherCompatibility.js';
import { assertLogits, assertSameLogitsShape } from '../losses/validate.js';
import { firstTensor, orderInputs, type ModelInputs } from '../inputs/modelInputs.js';
import {
  invalidTeacherOutputs,
  outputSpecOf,
  teacherOutputsAsLogits,
  teacherOutputsValid,
  type TeacherOutputs,
  type TeacherOutputSpec,
} from '../teachers/outputSpec.js';
import { assertStudentOutputs } from './student.js';
import { constantFeatureWeights, type FeatureDistillation, type TeacherFeatures } from './features.js';

/** Options of {@link createTrainStep}. */
export interface TrainStepOptions {
  /** The model being trained. Must be built (have weights). */
  student: tfl.LayersModel;
  /** Its optimizer; keep one per student for the whole run (Adam's moments are positional). */
  optimizer: tf.Optimizer;
  /** Softening temperature (required for `kind: 'kl'`). */
  temperature?: number;
  /** Weight of the hard-label term in [0, 1] (default 0). */
  alpha?: number;
  /** `'kl'` (default) or `'mse'`; `'none'`: no logit term (feature terms only, FitNets' first stage; needs `features`). */
  kind?: DistillationKind | 'none';
  /** Multiply the KL term by T² (default true). */
  scaleByTemperatureSquared?: boolean;
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
  /** Teacher outputs for the same examples, `[batch, classes]`. */
  teacherLogits: tf.Tensor;
  /** Class ids or one-hot labels, when training with a hard-label term or measuring accuracy. */
  labels?: tf.Tensor;
  /** The teacher's features of the batch, when the step has feature terms. @internal */
  teacherFeatures?: TeacherFeatures;
  /** The feature terms' weights at this step (schedules evaluated); the constant weights when absent. @internal */
  featureWeights?: readonly number[];
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
  const config = resolveLossConfig({ ...options, kind: noLogitTerm ? 'mse' : (options.kind as DistillationKind | undefined) }, true);
  if (!noLogitTerm) assertTeacherOutputsFit(config.kind, teacherOutputs);
  const lossTerms = (studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, labels?: tf.Tensor) => {
    const terms = distillationLossTerms(studentLogits, teacherLogits, config, labels);
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
  const forward = (batch: StepBatch, training: boolean): { logits: tf.Tensor2D; featureLoss?: tf.Scalar } => {
    let raw: tf.Tensor;
    let featureLoss: tf.Scalar | undefined;
    if (features !== undefined) {
      const out = features.runStudent(batch.inputs, training);
      raw = out.logits;
      featureLoss = features.loss(out, batch.teacherFeatures!, batch.featureWeights ?? featureWeights);
    } else {
      raw = student.apply(orderInputs(student, batch.inputs), { training }) as tf.Tensor;
    }
    return { logits: (studentOutputs === 'probs' ? probsToLogits(raw) : raw) as tf.Tensor2D, featureLoss };
  };
  // The teacher's outputs as logits: constants of the step, made outside the gradient tape.
  const teacherLogitsOf = (batch: StepBatch) =>
    tf.tidy(() => teacherOutputsAsLogits(batch.teacherLogits, teacherOutputs)) as tf.Tensor2D;

  const outputShape = student.outputs[0]!.shape;
  const studentClasses = outputShape[outputShape.length - 1];

  // Checked before the gradient closure: a throw inside tf.variableGrads leaks its tensors.
  const checkShapes = (batch: StepBatch) => {
    assertLogits(batch.teacherLogits, 'teacher outputs');
    if (features !== undefined && batch.teacherFeatures?.features.length !== features.features.length) {
      throw new KdConfigError(
        'INVALID_OPTION',
        `the step has ${features.features.length} feature terms but the batch carries ${batch.teacherFeatures?.features.length ?? 0} teacher features: ` +
          "pass the teacher's features of the batch (teacherFeatures), as the Distiller does",
      );
    }
    const [teacherRows, teacherClasses] = batch.teacherLogits.shape;
    if (typeof studentClasses === 'number' && teacherClasses !== studentClasses) {
      throw new KdShapeError(
        'CLASS_COUNT_MISMATCH',
        `teacher logits have ${teacherClasses} classes but student logits have ${studentClasses}: ` +
          `build the student with ${teacherClasses} output units`,
      );
    }
    const inputRows = firstTensor(batch.inputs).shape[0];
    if (inputRows !== teacherRows) {
      throw new KdShapeError(
        'BATCH_SIZE_MISMATCH',
        `teacher logits have ${teacherRows} rows but the student's batch has ${inputRows}: ` +
          'the teacher must return one row per example of the batch',
      );
    }
    if (batch.labels !== undefined) assertLabelsShape(batch.labels, batch.teacherLogits.shape);
    if (config.alpha > 0 && batch.labels === undefined) {
      throw new KdConfigError(
        'ALPHA_WITHOUT_LABELS',
        `alpha is ${config.alpha} but the batch has no labels: pass labels (y), or set alpha to 0`,
      );
    }
  };

  const step = async (batch: StepBatch): Promise<StepLogs> => {
    checkShapes(batch);
    const teacherLogits = teacherLogitsOf(batch);
    let stats: tf.Tensor1D | undefined;
    let gradients: ReturnType<typeof tf.variableGrads> | undefined;
    try {
      gradients = tf.variableGrads(() => {
        const { logits: studentLogits, featureLoss } = forward(batch, true);
        assertSameLogitsShape(studentLogits, teacherLogits);
        const terms = lossTerms(studentLogits, teacherLogits, batch.labels);
        const regularization = student.calculateLosses();
        const loss = tf.addN([terms.loss, ...regularization, ...(featureLoss ? [featureLoss] : [])]);
        stats = tf.keep(batchStats(loss as tf.Scalar, { ...terms, featureLoss }, studentLogits, batch, teacherOutputs));
        return loss as tf.Scalar;
      }, variables);
    } finally {
      if (teacherLogits !== batch.teacherLogits) teacherLogits.dispose();
    }
    const { value, grads } = gradients;
    try {
      const values = await stats!.data();
      const logs = readStats(values, batch, teacherOutputs);
      // Adam and friends keep their slots by position in the gradient list:
      // a variable without gradient this step gets zeros so positions never shift.
      const complete: tf.NamedTensorMap = {};
      for (const v of variables) complete[v.name] = grads[v.name] ?? tf.zerosLike(v);
      optimizer.applyGradients(complete);
      tf.dispose(Object.values(complete));
      return logs;
    } finally {
      tf.dispose([value, stats!, ...Object.values(grads)]);
    }
  };

  const evaluate = async (batch: StepBatch): Promise<StepLogs> => {
    checkShapes(batch);
    const stats = tf.tidy(() => {
      const { logits: studentLogits, featureLoss } = forward(batch, false);
      const teacherLogits = teacherOutputsAsLogits(batch.teacherLogits, teacherOutputs) as tf.Tensor2D;
      assertSameLogitsShape(studentLogits, teacherLogits);
      const terms = lossTerms(studentLogits, teacherLogits, batch.labels);
      // Like Keras, the reported loss includes the regularization penalties.
      const regularization = student.calculateLosses();
      const loss = tf.addN([terms.loss, ...regularization, ...(featureLoss ? [featureLoss] : [])]);
      return batchStats(loss as tf.Scalar, { ...terms, featureLoss }, studentLogits, batch, teacherOutputs);
    });
    try {
      return readStats(await stats.data(), batch, teacherOutputs);
    } finally {
      stats.dispose();
    }
  };

  return Object.assign(step, { evaluate, variables, config, options, projectionVariables });
}

// Layout of the stats vector read back once per batch.
const LOSS = 0;
const DISTILLATION = 1;
const STUDENT_LOSS = 2;
const CORRECT = 3;
const AGREE = 4;
const TEACHER_OK = 5;
const LABELS_OK = 6;
const FEATURE = 7;

/** Everything read back per batch, stacked so a single `data()` call fetches it. */
function batchStats(
  loss: tf.Scalar,
  terms: { distillation: tf.Scalar; studentLoss?: tf.Scalar; featureLoss?: tf.Scalar },
  studentLogits: tf.Tensor2D,
  batch: StepBatch,
  teacherOutputs: TeacherOutputSpec,
): tf.Tensor1D {
  const predicted = tf.argMax(studentLogits, -1);
  const teacherClass = tf.argMax(batch.teacherLogits, -1);
  const agree = tf.sum(tf.cast(tf.equal(predicted, teacherClass), 'float32'));
  let correct: tf.Tensor = tf.scalar(0);
  let labelsOk: tf.Tensor = tf.scalar(1);
  if (batch.labels !== undefined) {
    const idLabels = isIdLabels(batch.labels);
    const labelIds = idLabels ? tf.cast(tf.reshape(batch.labels, [-1]), 'int32') : tf.argMax(batch.labels, -1);
    correct = tf.sum(tf.cast(tf.equal(predicted, labelIds), 'float32'));
    if (idLabels) {
      // Out-of-range ids would one-hot to an all-zero row and silently drop out of the loss.
      const inRange = tf.logicalAnd(tf.greaterEqual(tf.min(labelIds), 0), tf.less(tf.max(labelIds), studentLogits.shape[1]));
      labelsOk = tf.cast(inRange, 'float32');
    }
  }
  const teacherOk = teacherOutputsValid(batch.teacherLogits, teacherOutputs);
  return tf.stack([
    loss,
    terms.distillation,
    terms.studentLoss ?? tf.scalar(0),
    correct,
    agree,
    tf.cast(teacherOk, 'float32'),
    labelsOk,
    terms.featureLoss ?? tf.scalar(0),
  ]) as tf.Tensor1D;
}

function readStats(values: ArrayLike<number>, batch: StepBatch, teacherOutputs: TeacherOutputSpec): StepLogs {
  const size = batch.teacherLogits.shape[0]!;
  if (values[TEACHER_OK] !== 1) throw invalidTeacherOutputs(teacherOutputs, { updateSkipped: true });
  if (values[LABELS_OK] !== 1) {
    const numClasses = batch.teacherLogits.shape[1]!;
    throw new KdDataError(
      'LABEL_OUT_OF_RANGE',
      `a label in this batch is outside [0, ${numClasses}): labels must be class ids 0..${numClasses - 1}`,
    );
  }
  const loss = values[LOSS]!;
  if (!Number.isFinite(loss)) {
    throw new KdDataError(
      'NON_FINITE_LOSS',
      `the loss is ${loss}: the student diverged or its inputs hold NaN/Inf; ` +
        'the update was skipped, so the student keeps its last good weights: lower the learning rate or check the inputs',
    );
  }
  const logs: StepLogs = { loss, distillation_loss: values[DISTILLATION]!, agreement: values[AGREE]! / size };
  if (batch.teacherFeatures !== undefined) logs.feature_loss = values[FEATURE]!;
  if (batch.labels !== undefined) {
    logs.student_loss = values[STUDENT_LOSS]!;
    logs.acc = values[CORRECT]! / size;
  }
  return logs;
}
