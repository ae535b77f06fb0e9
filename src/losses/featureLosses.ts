import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdShapeError } from '../errors.js';

/**
 * How a student's intermediate features are compared with the teacher's:
 *
 * - `'mse'`: the mean of the squared differences over every feature element
 *   and the batch (Keras 3 `FeatureDistillation`'s mean; Romero et al. 2015,
 *   FitNets' hint loss up to a constant);
 * - `'cosine'`: 1 − the cosine similarity of the two feature vectors along the
 *   last axis, averaged over the batch (and the time steps, or the spatial
 *   positions of a `[batch, h, w, channels]` map);
 * - `'attention'`: Zagoruyko and Komodakis 2017's attention transfer for
 *   `[batch, h, w, channels]` maps (see {@link attentionTransferLoss}).
 */
export type FeatureLossKind = 'mse' | 'cosine' | 'attention';

/**
 * Every {@link FeatureLossKind}, for validation and docs.
 *
 * @example
 * ```ts
 * import { FEATURE_LOSS_KINDS } from 'kd-ts/losses';
 * console.log(FEATURE_LOSS_KINDS.join(', ')); // mse, cosine, attention
 * ```
 */
export const FEATURE_LOSS_KINDS: readonly FeatureLossKind[] = ['mse', 'cosine', 'attention'];

/** Options of {@link featureLoss}. */
export interface FeatureLossOptions {
  /** The comparison (default `'mse'`). */
  kind?: FeatureLossKind;
  /**
   * For `[batch, time, units]` features: `[batch, time]`, 1 where a position
   * counts, 0 where it is padding. Masked positions are left out of the mean
   * (the mean runs over the unmasked positions of the whole batch); a batch
   * with no unmasked position gives 0. Not accepted by `'attention'`.
   */
  mask?: tf.Tensor;
}

// Norms are clamped from below before the division (as PyTorch's
// F.cosine_similarity and F.normalize do), and inside the square root, so a
// zero vector gives a finite value and a zero gradient, never NaN.
const COSINE_EPS = 1e-8;
const NORMALIZE_EPS = 1e-12;

/**
 * Compares a student's intermediate features with the teacher's: the loss of
 * one `features` entry of `Distiller.compile`, for custom loops.
 *
 * Features are `[batch, units]`, `[batch, time, units]` (with an optional
 * mask) or `[batch, h, w, channels]`; `'mse'` and `'cosine'` need equal
 * shapes (project the student's features first when the widths differ),
 * `'attention'` needs rank 4 and equal `h`, `w` (channels may differ).
 *
 * @param studentFeatures - The student's features (differentiable).
 * @param teacherFeatures - The teacher's features (constants).
 * @param options - See {@link FeatureLossOptions}.
 * @returns A scalar.
 * @throws {@link KdConfigError} `INVALID_OPTION` for an unknown kind, or a mask with `'attention'`.
 * @throws {@link KdShapeError} `FEATURE_SHAPE_MISMATCH` for shapes that do not fit the kind,
 *   `INVALID_MASK` for a mask that is not `[batch, time]` of the features.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { featureLoss } from 'kd-ts/losses';
 *
 * const student = tf.randomNormal([8, 16]);
 * const teacher = tf.randomNormal([8, 16]);
 * const hint = featureLoss(student, teacher, { kind: 'cosine' }); // scalar in [0, 2]
 * ```
 */
export function featureLoss(
  studentFeatures: tf.Tensor,
  teacherFeatures: tf.Tensor,
  options: FeatureLossOptions = {},
): tf.Scalar {
  const kind = options.kind ?? 'mse';
  switch (kind) {
    case 'mse':
      assertPairShapes(studentFeatures, teacherFeatures, kind);
      return tf.tidy(() => maskedMean(tf.square(tf.sub(studentFeatures, teacherFeatures)), options.mask, true));
    case 'cosine':
      assertPairShapes(studentFeatures, teacherFeatures, kind);
      return tf.tidy(() => maskedMean(cosineDistance(studentFeatures, teacherFeatures), options.mask, false));
    case 'attention':
      if (options.mask !== undefined) {
        throw new KdConfigError(
          'INVALID_OPTION',
          "feature loss 'attention' takes [batch, h, w, channels] maps and no mask: use 'mse' or 'cosine' for masked sequences",
        );
      }
      return attentionTransferLoss(studentFeatures, teacherFeatures);
    default:
      throw new KdConfigError(
        'INVALID_OPTION',
        `unknown feature loss ${JSON.stringify(kind)}: use one of ${FEATURE_LOSS_KINDS.map((k) => `'${k}'`).join(', ')}`,
      );
  }
}

/**
 * Attention transfer (Zagoruyko and Komodakis 2017, §3.1 with p = 2): each
 * map's attention is the channel-mean of its squared activations, flattened
 * to `[batch, h·w]` and L2-normalized per example; the loss is the mean over
 * the batch and the positions of `(a_student − a_teacher)²`. The channel
 * counts may differ; `h` and `w` must match.
 *
 * @param studentMaps - `[batch, h, w, studentChannels]`.
 * @param teacherMaps - `[batch, h, w, teacherChannels]`.
 * @returns A scalar.
 * @throws {@link KdShapeError} `FEATURE_SHAPE_MISMATCH` unless both are rank 4 with equal batch, h and w.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { attentionTransferLoss } from 'kd-ts/losses';
 *
 * const student = tf.randomNormal([2, 7, 7, 8]);
 * const teacher = tf.randomNormal([2, 7, 7, 32]);
 * const loss = attentionTransferLoss(student, teacher);
 * ```
 */
export function attentionTransferLoss(studentMaps: tf.Tensor, teacherMaps: tf.Tensor): tf.Scalar {
  const [sb, sh, sw] = studentMaps.shape;
  const [tb, th, tw] = teacherMaps.shape;
  if (studentMaps.rank !== 4 || teacherMaps.rank !== 4 || sb !== tb || sh !== th || sw !== tw) {
    throw new KdShapeError(
      'FEATURE_SHAPE_MISMATCH',
      `attention transfer compares [batch, h, w, channels] maps of equal batch, h and w; got student ` +
        `[${studentMaps.shape.join(', ')}] and teacher [${teacherMaps.shape.join(', ')}]: pick layers whose maps ` +
        "have the same spatial size, or use 'mse'/'cosine' with a projection",
    );
  }
  return tf.tidy(() => tf.mean(tf.square(tf.sub(attentionMap(studentMaps), attentionMap(teacherMaps)))) as tf.Scalar);
}

/** `[batch, h, w, c]` → the L2-normalized channel-mean of squares, `[batch, h·w]`. */
function attentionMap(maps: tf.Tensor): tf.Tensor2D {
  const [batch] = maps.shape;
  const energy = tf.reshape(tf.mean(tf.square(maps), -1), [batch!, -1]);
  return tf.div(energy, safeNorm(energy, NORMALIZE_EPS)) as tf.Tensor2D;
}

/** 1 − cos(s, t) along the last axis: one value per row, time step or position. */
function cosineDistance(student: tf.Tensor, teacher: tf.Tensor): tf.Tensor {
  const dot = tf.sum(tf.mul(student, teacher), -1);
  const norms = tf.mul(safeNorm(student, COSINE_EPS, false), safeNorm(teacher, COSINE_EPS, false));
  return tf.sub(1, tf.div(dot, norms));
}

/** max(‖x‖, eps) along the last axis, as sqrt(max(Σx², eps²)) so its gradient at 0 is 0, not NaN. */
function safeNorm(x: tf.Tensor, eps: number, keepDims = true): tf.Tensor {
  return tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, keepDims), eps * eps));
}

/**
 * Mean of `values` (`perElement`: the full feature tensor; else one value per
 * row / time step / position), leaving out masked positions when a
 * `[batch, time]` mask is given.
 */
function maskedMean(values: tf.Tensor, mask: tf.Tensor | undefined, perElement: boolean): tf.Scalar {
  return tf.tidy(() => {
    if (mask === undefined) return tf.mean(values) as tf.Scalar;
    const positionsRank = perElement ? values.rank - 1 : values.rank;
    if (positionsRank !== 2 || mask.rank !== 2 || mask.shape[0] !== values.shape[0] || mask.shape[1] !== values.shape[1]) {
      throw new KdShapeError(
        'INVALID_MASK',
        `a feature mask is [batch, time] for [batch, time, units] features; got mask [${mask.shape.join(', ')}] ` +
          `for values [${values.shape.join(', ')}]: pass the mask of the sequence, or none`,
      );
    }
    const weights = tf.cast(mask, 'float32');
    const units = perElement ? values.shape[2]! : 1;
    const perPosition = perElement ? tf.sum(values, -1) : values;
    const total = tf.sum(tf.mul(perPosition, weights));
    const count = tf.mul(tf.maximum(tf.sum(weights), 1), units);
    return tf.div(total, count) as tf.Scalar;
  });
}

function assertPairShapes(student: tf.Tensor, teacher: tf.Tensor, kind: FeatureLossKind): void {
  const same = student.rank === teacher.rank && student.shape.every((d, i) => d === teacher.shape[i]);
  if (!same || student.rank < 2 || student.rank > 4) {
    throw new KdShapeError(
      'FEATURE_SHAPE_MISMATCH',
      `feature loss '${kind}' compares features of equal shape, rank 2 to 4; got student ` +
        `[${student.shape.join(', ')}] and teacher [${teacher.shape.join(', ')}]: ` +
        "project the student's features to the teacher's width (projection: 'auto'), or pick layers of the same rank",
    );
  }
}
