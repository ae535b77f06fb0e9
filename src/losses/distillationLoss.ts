import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import {
  assertAlpha,
  assertFinite,
  assertLogits,
  assertSameLogitsShape,
  assertTemperature,
} from './validate.js';

/** Which distillation term to use. */
export type DistillationKind = 'kl' | 'mse';

/** Options of {@link distillationLoss}. */
export interface DistillationLossOptions {
  /**
   * Softening temperature T (> 0). Required for `kind: 'kl'`; ignored by
   * `kind: 'mse'`, which compares raw logits.
   */
  temperature?: number;
  /**
   * Weight of the hard-label term, in [0, 1]: the loss is
   * `alpha · CE(student, labels) + (1 − alpha) · distillation`.
   * Must be 0 (the default) when no labels are given.
   */
  alpha?: number;
  /**
   * Ground-truth labels: class ids (`[batch]` or `[batch, 1]`, int or
   * integral float) or one-hot / soft labels (`[batch, classes]`).
   */
  labels?: tf.Tensor;
  /** `'kl'` (Hinton, default) or `'mse'` (Tang et al.). */
  kind?: DistillationKind;
  /** Per-example weights `[batch]`: the batch reduction becomes `Σ wᵢ·lᵢ / Σ wᵢ`. */
  sampleWeights?: tf.Tensor;
  /**
   * Multiply the KL term by T² (default true) so its gradients keep the
   * same scale as the hard-label term's when T changes (Hinton et al. 2015, §2).
   */
  scaleByTemperatureSquared?: boolean;
  /**
   * Check values (NaN/Inf logits, label range, weights) with a synchronous
   * read before computing (default true). Turn off in hot loops that check
   * their data up front.
   */
  validate?: boolean;
}

/** The validated, defaulted form of {@link DistillationLossOptions} (without tensors). */
export interface ResolvedLossConfig {
  kind: DistillationKind;
  temperature: number;
  alpha: number;
  scaleByTemperatureSquared: boolean;
}

/** The loss and its two parts, as scalars (`studentLoss` only with labels). */
export interface DistillationLossTerms {
  loss: tf.Scalar;
  distillation: tf.Scalar;
  studentLoss?: tf.Scalar;
}

/**
 * The knowledge-distillation loss between student and teacher logits, with
 * an optional hard-label term.
 *
 * - `kind: 'kl'` (default): `KL(softmax(t/T) ‖ softmax(s/T))` per example,
 *   averaged over the batch and multiplied by T² (Hinton et al. 2015, §2:
 *   the soft-target gradients scale as 1/T², hence × T²).
 * - `kind: 'mse'`: `Σ_classes (t − s)²` per example, averaged over the batch
 *   (Tang et al. 2019, eq. 2); the temperature is ignored. PyTorch's
 *   `F.mse_loss` also averages over classes, so it is smaller by a factor C.
 * - With `labels`: `alpha · CE(softmax(s), labels) + (1 − alpha) · distillation`;
 *   the cross-entropy uses the student at T = 1. `alpha` weights the
 *   hard-label term, as in Keras and Tang et al.
 * - Without labels: the distillation term alone, weight 1 (alpha must be 0).
 * - `sampleWeights` turn every batch mean into `Σ wᵢ·lᵢ / Σ wᵢ`.
 *
 * @param studentLogits - `[batch, classes]` student logits (not probabilities).
 * @param teacherLogits - `[batch, classes]` teacher logits. Compute them outside any gradient
 *   closure (the Distiller does): the loss is meant to be differentiated w.r.t. the student only.
 * @param options - See {@link DistillationLossOptions}.
 * @returns A scalar loss, differentiable w.r.t. `studentLogits`.
 * @throws {@link KdConfigError} for T ≤ 0, alpha outside [0, 1], alpha > 0 without labels.
 * @throws {@link KdShapeError} for class-count or batch-size mismatches.
 * @throws {@link KdDataError} for NaN/Inf logits or labels out of range.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { distillationLoss } from 'kd-ts';
 *
 * const student = tf.tensor2d([[1, 2, 0.5]]);
 * const teacher = tf.tensor2d([[2, 4, 1]]);
 * const labels = tf.tensor1d([1], 'int32');
 * const loss = distillationLoss(student, teacher, { temperature: 4, alpha: 0.1, labels });
 * loss.print();
 * ```
 */
export function distillationLoss(
  studentLogits: tf.Tensor,
  teacherLogits: tf.Tensor,
  options: DistillationLossOptions = {},
): tf.Scalar {
  const config = resolveLossConfig(options, options.labels !== undefined);
  assertLogits(studentLogits, 'student logits');
  assertLogits(teacherLogits, 'teacher logits');
  assertSameLogitsShape(studentLogits, teacherLogits);
  if (options.validate !== false) {
    assertFinite(studentLogits, 'NON_FINITE_LOGITS', 'student logits', 'lower the learning rate or check the inputs');
    assertFinite(teacherLogits, 'NON_FINITE_TEACHER_OUTPUT', 'teacher logits', 'check the teacher and its inputs');
    if (options.labels !== undefined) validateLabels(options.labels, studentLogits.shape[1], studentLogits.shape[0]);
    if (options.sampleWeights !== undefined) validateSampleWeights(options.sampleWeights, studentLogits.shape[0]);
  } else {
    if (options.labels !== undefined) assertLabelsShape(options.labels, studentLogits.shape);
    if (options.sampleWeights !== undefined) assertSampleWeightsShape(options.sampleWeights, studentLogits.shape[0]);
  }
  return tf.tidy(() => {
    const terms = distillationLossTerms(studentLogits, teacherLogits, config, options.labels, options.sampleWeights);
    return terms.loss;
  });
}

/**
 * Validates and defaults the numeric options of the loss.
 * @internal
 */
export function resolveLossConfig(
  options: Pick<DistillationLossOptions, 'temperature' | 'alpha' | 'kind' | 'scaleByTemperatureSquared'>,
  hasLabels: boolean,
): ResolvedLossConfig {
  const kind = options.kind ?? 'kl';
  if (kind !== 'kl' && kind !== 'mse') {
    throw new KdConfigError('INVALID_OPTION', `kind must be 'kl' or 'mse', got ${String(kind)}`);
  }
  // 'mse' compares raw logits: its temperature is ignored, hence not validated.
  if (kind === 'kl') assertTemperature(options.temperature);
  const alpha = options.alpha ?? 0;
  assertAlpha(alpha);
  if (alpha > 0 && !hasLabels) {
    throw new KdConfigError(
      'ALPHA_WITHOUT_LABELS',
      `alpha is ${alpha} but no labels were given: pass labels, or set alpha to 0 to train on the teacher alone`,
    );
  }
  return {
    kind,
    temperature: options.temperature ?? 1,
    alpha,
    scaleByTemperatureSquared: options.scaleByTemperatureSquared ?? true,
  };
}

/**
 * The loss and its parts, without validation. Must run inside `tf.tidy`
 * (or a gradient closure); shapes must already be checked.
 * @internal
 */
export function distillationLossTerms(
  studentLogits: tf.Tensor2D,
  teacherLogits: tf.Tensor2D,
  config: ResolvedLossConfig,
  labels?: tf.Tensor,
  sampleWeights?: tf.Tensor,
): DistillationLossTerms {
  const reduce = (perExample: tf.Tensor1D): tf.Scalar =>
    sampleWeights === undefined
      ? tf.mean(perExample)
      : tf.div(tf.sum(tf.mul(perExample, tf.reshape(sampleWeights, [-1]))), tf.sum(sampleWeights));

  const distillation = reduce(perExampleDistillation(studentLogits, teacherLogits, config));
  if (labels === undefined) return { loss: distillation, distillation };

  const numClasses = studentLogits.shape[1];
  const target = labelsAsDistribution(labels, numClasses);
  const perExampleCe = tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(studentLogits)), -1)) as tf.Tensor1D;
  const studentLoss = reduce(perExampleCe);
  const loss = tf.add(tf.mul(studentLoss, config.alpha), tf.mul(distillation, 1 - config.alpha)) as tf.Scalar;
  return { loss, distillation, studentLoss };
}

/** Per-example distillation term, `[batch]`. */
function perExampleDistillation(
  studentLogits: tf.Tensor2D,
  teacherLogits: tf.Tensor2D,
  config: ResolvedLossConfig,
): tf.Tensor1D {
  if (config.kind === 'mse') {
    return tf.sum(tf.squaredDifference(teacherLogits, studentLogits), -1) as tf.Tensor1D;
  }
  const temperature = config.temperature;
  const logTeacher = tf.logSoftmax(shiftAndScale(teacherLogits, temperature));
  const logStudent = tf.logSoftmax(shiftAndScale(studentLogits, temperature));
  // KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s). Where p_t underflows to 0,
  // log p_t stays finite (logSoftmax), so the product is 0, never NaN.
  const kl = tf.sum(tf.mul(tf.exp(logTeacher), tf.sub(logTeacher, logStudent)), -1) as tf.Tensor1D;
  return config.scaleByTemperatureSquared && temperature !== 1 ? tf.mul(kl, temperature * temperature) : kl;
}

/**
 * `(z − max z) / T`: subtracting the row maximum before dividing keeps the
 * small gaps between huge logits (±1e4) that dividing first would round away.
 * Softmax is shift-invariant, so the shift's exact gradient is 0: a custom
 * gradient (`dy / T`) drops it instead of routing float noise to the argmax.
 */
export function shiftAndScale(logits: tf.Tensor, temperature: number): tf.Tensor {
  const op = tf.customGrad(((x: tf.Tensor) => {
    const shifted = tf.sub(x, tf.max(x, -1, true));
    return {
      value: temperature === 1 ? shifted : tf.div(shifted, temperature),
      gradFunc: (dy: tf.Tensor) => (temperature === 1 ? dy : tf.div(dy, temperature)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(logits);
}

/** Class ids or one-hot labels as a `[batch, classes]` float distribution. */
function labelsAsDistribution(labels: tf.Tensor, numClasses: number): tf.Tensor2D {
  if (isIdLabels(labels)) {
    return tf.cast(tf.oneHot(tf.cast(tf.reshape(labels, [-1]), 'int32'), numClasses), 'float32') as tf.Tensor2D;
  }
  return tf.cast(labels, 'float32') as tf.Tensor2D;
}

/** `[batch]` and `[batch, 1]` tensors hold class ids; `[batch, C>1]` hold distributions. */
export function isIdLabels(labels: tf.Tensor): boolean {
  return labels.rank === 1 || (labels.rank === 2 && labels.shape[1] === 1);
}

/** Shape checks for labels (no data read). @internal */
export function assertLabelsShape(labels: tf.Tensor, logitsShape: readonly number[]): void {
  const [batch, numClasses] = logitsShape as [number, number];
  if (!(labels instanceof tf.Tensor)) {
    throw new KdShapeError('RANK_MISMATCH', 'labels must be a tf.Tensor of class ids [batch] or one-hot [batch, classes]');
  }
  if (labels.rank < 1 || labels.rank > 2) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `labels must be class ids [batch] or one-hot [batch, classes], got shape [${labels.shape.join(', ')}]`,
    );
  }
  if (labels.shape[0] !== batch) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `labels have ${labels.shape[0]} rows but the logits have ${batch}: pass one label per example`,
    );
  }
  if (!isIdLabels(labels) && labels.shape[1] !== numClasses) {
    throw new KdShapeError(
      'CLASS_COUNT_MISMATCH',
      `one-hot labels have ${labels.shape[1]} classes but the logits have ${numClasses}: ` +
        `one-hot encode with ${numClasses} classes, or pass class ids`,
    );
  }
}

/** Shape and value checks for labels (one synchronous read). @internal */
export function validateLabels(labels: tf.Tensor, numClasses: number, batch = labels.shape[0]!): void {
  assertLabelsShape(labels, [batch, numClasses]);
  if (isIdLabels(labels)) {
    const values = labels.dataSync();
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
        throw new KdDataError(
          'LABEL_OUT_OF_RANGE',
          `label ${v} at row ${i} is not a class id in [0, ${numClasses}): ` +
            `labels must be integers 0..${numClasses - 1}, or one-hot rows`,
        );
      }
    }
  } else {
    const [min, finite] = tf.tidy(() => [tf.min(labels).dataSync()[0]!, tf.all(tf.isFinite(labels)).dataSync()[0]!]);
    if (!finite || min < 0) {
      throw new KdDataError(
        'LABEL_OUT_OF_RANGE',
        'one-hot labels must be finite and non-negative: pass one-hot rows or probability distributions',
      );
    }
  }
}

function assertSampleWeightsShape(sampleWeights: tf.Tensor, batch: number): void {
  if (!(sampleWeights instanceof tf.Tensor) || sampleWeights.size !== batch || sampleWeights.rank > 2) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `sampleWeights must hold one weight per example (${batch}), got shape ` +
        `[${sampleWeights instanceof tf.Tensor ? sampleWeights.shape.join(', ') : typeof sampleWeights}]`,
    );
  }
}

function validateSampleWeights(sampleWeights: tf.Tensor, batch: number): void {
  assertSampleWeightsShape(sampleWeights, batch);
  const values = sampleWeights.dataSync();
  let sum = 0;
  for (const v of values) {
    if (!Number.isFinite(v) || v < 0) {
      throw new KdDataError('INVALID_SAMPLE_WEIGHTS', `sample weights must be finite and ≥ 0, got ${v}`);
    }
    sum += v;
  }
  if (sum <= 0) {
    throw new KdDataError('INVALID_SAMPLE_WEIGHTS', 'sample weights sum to 0: give at least one example a positive weight');
  }
}
