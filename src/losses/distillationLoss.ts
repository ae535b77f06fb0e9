import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { hardLabelCrossEntropy } from './crossEntropy.js';
import { DISTILLATION_KINDS, perRowDivergence, resolveBeta, type DistillationKind } from './divergences.js';
import { assertLogitsPair, assertMaskShape, assertTokenLabelsShape, batchReducer, validateMask, validateTokenLabels } from './tokenLevel.js';
import {
  assertTopK,
  assertTopKBelowClasses,
  assertTopKTeacherShape,
  isTopKLogits,
  perRowTopKKl,
  validateTopKTeacher,
  type TopKLogits,
} from './topK.js';
import { assertAlpha, assertFinite, assertTemperature } from './validate.js';

export type { DistillationKind } from './divergences.js';
export type { TopKLogits } from './topK.js';
export { shiftAndScale } from './shiftAndScale.js';

/** Options of {@link distillationLoss}. */
export interface DistillationLossOptions {
  /**
   * Softening temperature T (> 0). Required by every kind but `'mse'`, which
   * compares raw logits and ignores it.
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
   * integral float) or one-hot / soft labels (`[batch, classes]`). With
   * token-level logits: ids `[batch, time]` or one-hot `[batch, time, classes]`
   * (any value at masked tokens, e.g. −100).
   */
  labels?: tf.Tensor;
  /**
   * The distillation term: `'kl'` (Hinton, default), `'reverse-kl'`, `'jsd'`
   * (with {@link DistillationLossOptions.beta}), `'tvd'`, or `'mse'` (Tang et al.).
   */
  kind?: DistillationKind;
  /**
   * `kind: 'jsd'` only: the teacher's weight in the mixture m = beta·p + (1 − beta)·q,
   * strictly between 0 and 1 (default 0.5, the symmetric Jensen–Shannon divergence).
   */
  beta?: number;
  /**
   * `kind: 'kl'` only: keep the teacher's k largest logits per row, renormalize its
   * softmax over them, and compare with the student's full softmax. An integer in
   * [1, classes). Implied when the teacher outputs are given as {@link TopKLogits}.
   */
  topK?: number;
  /** Per-example weights `[batch]`: the batch reduction becomes `Σ wᵢ·lᵢ / Σ wᵢ`. */
  sampleWeights?: tf.Tensor;
  /**
   * Token-level logits only: `[batch, time]`, 1 (or true) for a token that counts,
   * 0 for padding. Terms are averaged over each example's unmasked tokens, then
   * over the examples.
   */
  mask?: tf.Tensor;
  /**
   * Multiply the divergence by T² (default true; `'mse'` never is) so its
   * gradients keep the same scale as the hard-label term's when T changes
   * (Hinton et al. 2015, §2).
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
  /** The jsd mixture weight (0.5 when unused). */
  beta: number;
  /** Keep the teacher's k largest logits (kind 'kl' only); undefined for all classes. */
  topK?: number;
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
 * With p = softmax(t/T) and q = softmax(s/T), per example:
 * - `kind: 'kl'` (default): Σ p·log(p/q) (Hinton et al. 2015);
 * - `kind: 'reverse-kl'`: Σ q·log(q/p);
 * - `kind: 'jsd'`: m = beta·p + (1 − beta)·q, beta·KL(p‖m) + (1 − beta)·KL(q‖m),
 *   `beta` ∈ (0, 1), default 0.5 (TRL's generalized JSD);
 * - `kind: 'tvd'`: ½·Σ |p − q|;
 * - these four are averaged over the batch and multiplied by T² (Hinton et al.
 *   2015, §2: the soft-target gradients scale as 1/T², hence × T²); for `'tvd'`
 *   that makes the gradients grow with T (see docs/losses.md);
 * - `kind: 'mse'`: `Σ_classes (t − s)²` per example, averaged over the batch
 *   (Tang et al. 2019, eq. 2); the temperature is ignored. PyTorch's
 *   `F.mse_loss` also averages over classes, so it is smaller by a factor C.
 * - `topK: k` (kind `'kl'`): p̃ = the teacher's softmax renormalized over its k
 *   largest logits, Σ over those k classes of p̃·(log p̃ − log q), q the student's
 *   full softmax. The teacher may be given as top-k only ({@link TopKLogits}).
 * - Token-level logits `[batch, time, classes]` (optional `mask` `[batch, time]`):
 *   every term is averaged over each example's unmasked tokens, then over the
 *   examples (the mean of per-example means; an example without unmasked
 *   tokens drops out).
 * - With `labels`: `alpha · CE(softmax(s), labels) + (1 − alpha) · distillation`;
 *   the cross-entropy uses the student at T = 1. `alpha` weights the
 *   hard-label term, as in Keras and Tang et al.
 * - Without labels: the distillation term alone, weight 1 (alpha must be 0).
 * - `sampleWeights` turn every batch mean into `Σ wᵢ·lᵢ / Σ wᵢ`.
 *
 * A teacher that returns probabilities is passed as log-probabilities
 * (`tf.log(tf.maximum(p, 1e-30))`, as the Distiller does): softmax(log p / T)
 * is p sharpened or softened by T, for every kind but `'mse'`.
 *
 * @param studentLogits - `[batch, classes]` or `[batch, time, classes]` student logits (not probabilities).
 * @param teacherLogits - Teacher logits of the same shape, or its top-k outputs ({@link TopKLogits}).
 *   Compute them outside any gradient closure (the Distiller does): the loss is meant to be
 *   differentiated w.r.t. the student only.
 * @param options - See {@link DistillationLossOptions}.
 * @returns A scalar loss, differentiable w.r.t. `studentLogits`.
 * @throws {@link KdConfigError} for T ≤ 0, alpha outside [0, 1], alpha > 0 without labels
 *   (`INVALID_TEMPERATURE`, `INVALID_ALPHA`, `ALPHA_WITHOUT_LABELS`), an unknown kind
 *   (`INVALID_OPTION`), beta outside (0, 1) or with another kind than `'jsd'` (`INVALID_BETA`),
 *   topK not an integer in [1, classes) or with another kind than `'kl'` (`INVALID_TOP_K`).
 * @throws {@link KdShapeError} for rank, class-count or batch-size mismatches (logits, labels,
 *   mask, sample weights, top-k ids and logits).
 * @throws {@link KdDataError} for NaN/Inf logits, labels out of range, a mask that is not 0/1
 *   or masks every token (`INVALID_MASK`), top-k ids out of range or repeated in a row
 *   (`INVALID_TOP_K_IDS`).
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
  teacherLogits: tf.Tensor | TopKLogits,
  options: DistillationLossOptions = {},
): tf.Scalar {
  const config = resolveLossConfig(options, options.labels !== undefined);
  checkLossInputs(studentLogits, teacherLogits, config, options);
  return tf.tidy(() => {
    const { labels, sampleWeights, mask } = options;
    return distillationLossTerms(studentLogits, teacherLogits, config, labels, sampleWeights, mask).loss;
  });
}

/**
 * Shape checks of every input of the loss, and with `validate` (default
 * true) their values, with one synchronous read each.
 * @internal
 */
export function checkLossInputs(
  studentLogits: tf.Tensor,
  teacherLogits: tf.Tensor | TopKLogits,
  config: ResolvedLossConfig,
  options: Pick<DistillationLossOptions, 'labels' | 'sampleWeights' | 'mask' | 'validate'>,
): void {
  const topKTeacher = isTopKLogits(teacherLogits);
  assertLogitsPair(studentLogits, topKTeacher ? undefined : teacherLogits);
  const shape = studentLogits.shape;
  const numClasses = shape[shape.length - 1]!;
  if (topKTeacher) {
    assertTopK(config.topK ?? teacherLogits.ids.shape[teacherLogits.ids.rank - 1], config.kind);
    assertTopKTeacherShape(teacherLogits, shape, config.topK);
  } else if (config.topK !== undefined) {
    assertTopKBelowClasses(config.topK, numClasses);
  }
  const { labels, sampleWeights, mask } = options;
  if (mask !== undefined) assertMaskShape(mask, shape);
  if (labels !== undefined) {
    if (shape.length === 3) assertTokenLabelsShape(labels, shape);
    else assertLabelsShape(labels, shape);
  }
  if (sampleWeights !== undefined) assertSampleWeightsShape(sampleWeights, shape[0]!);
  if (options.validate === false) return;
  assertFinite(studentLogits, 'NON_FINITE_LOGITS', 'student logits', 'lower the learning rate or check the inputs');
  if (topKTeacher) validateTopKTeacher(teacherLogits, numClasses);
  else assertFinite(teacherLogits, 'NON_FINITE_TEACHER_OUTPUT', 'teacher logits', 'check the teacher and its inputs');
  if (mask !== undefined) validateMask(mask);
  if (labels !== undefined) {
    if (shape.length === 3) validateTokenLabels(labels, numClasses, mask);
    else validateLabels(labels, numClasses, shape[0]);
  }
  if (sampleWeights !== undefined) validateSampleWeights(sampleWeights, shape[0]!);
}

/**
 * Validates and defaults the numeric options of the loss.
 * @internal
 */
export function resolveLossConfig(
  options: Pick<DistillationLossOptions, 'temperature' | 'alpha' | 'kind' | 'beta' | 'topK' | 'scaleByTemperatureSquared'>,
  hasLabels: boolean,
): ResolvedLossConfig {
  const kind = options.kind ?? 'kl';
  if (!DISTILLATION_KINDS.includes(kind)) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `kind must be one of ${DISTILLATION_KINDS.map((k) => `'${k}'`).join(', ')}, got ${String(kind)}`,
    );
  }
  // 'mse' compares raw logits: its temperature is ignored, hence not validated.
  if (kind !== 'mse') assertTemperature(options.temperature);
  const beta = resolveBeta(options.beta, kind);
  if (options.topK !== undefined) assertTopK(options.topK, kind);
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
    beta,
    ...(options.topK !== undefined ? { topK: options.topK } : {}),
    scaleByTemperatureSquared: options.scaleByTemperatureSquared ?? true,
  };
}

/**
 * The loss and its parts, without validation. Must run inside `tf.tidy`
 * (or a gradient closure); shapes must already be checked.
 * @internal
 */
export function distillationLossTerms(
  studentLogits: tf.Tensor,
  teacherLogits: tf.Tensor | TopKLogits,
  config: ResolvedLossConfig,
  labels?: tf.Tensor,
  sampleWeights?: tf.Tensor,
  mask?: tf.Tensor,
): DistillationLossTerms {
  // Token-level logits are computed as rows ([batch·time, classes]) and
  // reduced per example, then over the batch (see tokenLevel.ts).
  const reduce = batchReducer(studentLogits.shape.slice(0, -1), sampleWeights, mask);
  const numClasses = studentLogits.shape[studentLogits.rank - 1]!;
  const studentRows = asRows(studentLogits);

  const distillation = reduce(perRowDistillation(studentRows, teacherLogits, config));
  if (labels === undefined) return { loss: distillation, distillation };

  const rowLabels = studentLogits.rank === 3 ? tf.reshape(labels, labels.rank === 2 ? [-1] : [-1, numClasses]) : labels;
  const target = labelsAsDistribution(rowLabels, numClasses);
  const perExampleCe = hardLabelCrossEntropy(studentRows, target);
  const studentLoss = reduce(perExampleCe);
  const loss = tf.add(tf.mul(studentLoss, config.alpha), tf.mul(distillation, 1 - config.alpha)) as tf.Scalar;
  return { loss, distillation, studentLoss };
}

/** Per-row distillation term, `[rows]`: the kind's divergence, or top-k KL. */
function perRowDistillation(
  studentRows: tf.Tensor2D,
  teacherLogits: tf.Tensor | TopKLogits,
  config: ResolvedLossConfig,
): tf.Tensor1D {
  const { temperature, scaleByTemperatureSquared } = config;
  if (isTopKLogits(teacherLogits)) {
    const k = teacherLogits.ids.shape[teacherLogits.ids.rank - 1]!;
    const teacherRows = { ids: asRows(teacherLogits.ids), logits: asRows(teacherLogits.logits) };
    return perRowTopKKl(studentRows, teacherRows, k, temperature, scaleByTemperatureSquared);
  }
  const teacherRows = asRows(teacherLogits);
  if (config.topK !== undefined) {
    return perRowTopKKl(studentRows, teacherRows, config.topK, temperature, scaleByTemperatureSquared);
  }
  return perRowDivergence(studentRows, teacherRows, config);
}

/** `[..., classes]` as `[rows, classes]`. */
function asRows(x: tf.Tensor): tf.Tensor2D {
  return (x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]!])) as tf.Tensor2D;
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
