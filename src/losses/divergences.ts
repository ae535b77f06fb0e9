import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError } from '../errors.js';

/**
 * Which distillation term to use. With p = softmax(teacher / T) and
 * q = softmax(student / T):
 * - `'kl'`: Σ p·log(p/q), forward KL (Hinton et al. 2015);
 * - `'reverse-kl'`: Σ q·log(q/p), mode-seeking (Gu et al. 2024, MiniLLM);
 * - `'jsd'`: the generalized Jensen–Shannon divergence with weight `beta`
 *   (Agarwal et al. 2024, GKD): m = beta·p + (1 − beta)·q,
 *   beta·KL(p‖m) + (1 − beta)·KL(q‖m);
 * - `'tvd'`: total variation distance, ½·Σ |p − q|;
 * - `'mse'`: Σ (teacher − student)² on raw logits (Tang et al. 2019).
 */
export type DistillationKind = 'kl' | 'reverse-kl' | 'jsd' | 'tvd' | 'mse';

/** Every {@link DistillationKind}, in the order the docs list them. */
export const DISTILLATION_KINDS: readonly DistillationKind[] = ['kl', 'reverse-kl', 'jsd', 'tvd', 'mse'];

/** The default `beta` of `kind: 'jsd'`: the symmetric Jensen–Shannon divergence. */
export const DEFAULT_JSD_BETA = 0.5;

/** What {@link perRowDivergence} needs to know. */
export interface DivergenceConfig {
  kind: DistillationKind;
  temperature: number;
  /** The jsd mixture weight, in (0, 1); read by `'jsd'` only. */
  beta: number;
  scaleByTemperatureSquared: boolean;
}

/**
 * The distillation term of every row, `[rows]`, for `[rows, classes]` logits.
 * Must run inside `tf.tidy` or a gradient closure; shapes must be checked.
 * Differentiable w.r.t. the student logits only (the teacher is a constant).
 * @internal
 */
export function perRowDivergence(
  studentLogits: tf.Tensor2D,
  teacherLogits: tf.Tensor2D,
  config: DivergenceConfig,
): tf.Tensor1D {
  if (config.kind === 'mse') {
    return tf.sum(tf.squaredDifference(teacherLogits, studentLogits), -1) as tf.Tensor1D;
  }
  const { kind, temperature, beta } = config;
  // One op with a hand-written gradient: the forward pass is not taped, and
  // the gradient avoids the cancellations autodiff would make (see softmaxVjp).
  const op = tf.customGrad(((student: tf.Tensor2D, teacher: tf.Tensor2D, save: tf.GradSaveFunc) => {
    // Only the inputs are saved (a saved intermediate would outlive the op,
    // and tfjs's leak check flags it); the backward pass redoes the few
    // elementwise ops from them.
    save([student, teacher]);
    return {
      value: divergenceValue(kind, logRatioParts(student, teacher, temperature), beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [s, t] = saved as [tf.Tensor2D, tf.Tensor2D];
        const perClass = divergenceGradient(kind, logRatioParts(s, t, temperature), beta);
        // d z / d student = 1/T (the max shift has gradient 0: softmax is
        // shift-invariant). The teacher is a constant: its gradient is 0.
        return [tf.mul(perClass, tf.div(tf.reshape(dy, [-1, 1]), temperature)), tf.zerosLike(t)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const perRow = op(studentLogits, teacherLogits) as tf.Tensor1D;
  // Hinton et al. 2015, §2: soft-target gradients scale as 1/T², hence × T².
  return config.scaleByTemperatureSquared && temperature !== 1 ? tf.mul(perRow, temperature * temperature) : perRow;
}

/** One side at temperature T, `[rows, classes]` (`lse` `[rows, 1]`). */
interface Tempered {
  /** (logits − row max) / T: at most 0, exactly 0 at the max. */
  z: tf.Tensor2D;
  /** softmax(logits / T). */
  probs: tf.Tensor2D;
  /** log Σ exp(z), in [0, log classes]. */
  lse: tf.Tensor2D;
}

function tempered(logits: tf.Tensor2D, temperature: number): Tempered {
  const shifted = tf.sub(logits, tf.max(logits, -1, true));
  const z = (temperature === 1 ? shifted : tf.div(shifted, temperature)) as tf.Tensor2D;
  const expZ = tf.exp(z);
  const total = tf.sum(expZ, -1, true);
  return { z, probs: tf.div(expZ, total) as tf.Tensor2D, lse: tf.log(total) as tf.Tensor2D };
}

/** What every divergence is computed from, `[rows, classes]` each. */
interface LogRatioParts {
  /** Teacher probabilities softmax(t/T). */
  p: tf.Tensor2D;
  /** Student probabilities softmax(s/T). */
  q: tf.Tensor2D;
  /** log p − log q, accurate to float32 rounding of its own size (see {@link logRatioParts}). */
  logRatio: tf.Tensor2D;
}

/**
 * p, q and r = log p − log q. Taking r as `logSoftmax(t/T) − logSoftmax(s/T)`
 * loses about ε·log(classes) to the rounding of each row's log-sum-exp, which
 * is the whole divergence at high T (1,000 classes at T = 100: KL ≈ 1e-3,
 * error ≈ 4e-7). So r is built from the logit differences, and the row
 * constant is corrected with the identity Σ p·e^(−r) = Σ q = 1:
 * r = r₀ + log(Σ p·e^(−r₀) / Σ p) for any r₀ = r − constant, the sum taken as
 * Σ p·expm1(−r₀) (small terms, no 1 + tiny) where q ≤ e·p, and as q − p
 * (no overflow) where q > e·p.
 */
function logRatioParts(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature: number): LogRatioParts {
  const student = tempered(studentLogits, temperature);
  const teacher = tempered(teacherLogits, temperature);
  const p = teacher.probs;
  const q = student.probs;
  const r0 = tf.sub(tf.sub(teacher.z, student.z), tf.sub(teacher.lse, student.lse));
  const negR0 = tf.neg(r0);
  const terms = tf.where(tf.lessEqual(negR0, 1), tf.mul(p, tf.expm1(tf.minimum(negR0, 1))), tf.sub(q, p));
  const correction = tf.log1p(tf.div(tf.sum(terms, -1, true), tf.sum(p, -1, true)));
  return { p, q, logRatio: tf.add(r0, correction) as tf.Tensor2D };
}

/** p − q as −p·expm1(−r) where q ≤ e·p (no cancellation of nearly equal probabilities), plain p − q elsewhere. */
function probabilityGap({ p, q, logRatio }: LogRatioParts): tf.Tensor2D {
  const negR = tf.neg(logRatio);
  return tf.where(tf.lessEqual(negR, 1), tf.neg(tf.mul(p, tf.expm1(tf.minimum(negR, 1)))), tf.sub(p, q)) as tf.Tensor2D;
}

function divergenceValue(kind: Exclude<DistillationKind, 'mse'>, parts: LogRatioParts, beta: number): tf.Tensor1D {
  const { p, q, logRatio } = parts;
  switch (kind) {
    case 'kl':
      return tf.sum(tf.mul(p, logRatio), -1) as tf.Tensor1D;
    case 'reverse-kl':
      return tf.neg(tf.sum(tf.mul(q, logRatio), -1)) as tf.Tensor1D;
    case 'jsd': {
      const { teacherTerm, studentTerm } = jsdLogRatios(logRatio, beta);
      return tf.add(tf.mul(tf.sum(tf.mul(p, teacherTerm), -1), beta), tf.mul(tf.sum(tf.mul(q, studentTerm), -1), 1 - beta)) as tf.Tensor1D;
    }
    case 'tvd':
      return tf.mul(tf.sum(tf.abs(probabilityGap(parts)), -1), 0.5) as tf.Tensor1D;
  }
}

/**
 * log(p/m) and log(q/m) for m = beta·p + (1 − beta)·q, from r = log(p/q).
 * Each is computed on its own (not one from the other, which would subtract
 * two numbers of size |r|), so m never leaves log space.
 */
function jsdLogRatios(logRatio: tf.Tensor, beta: number): { teacherTerm: tf.Tensor; studentTerm: tf.Tensor } {
  return { teacherTerm: logOverMixture(logRatio, beta), studentTerm: logOverMixture(tf.neg(logRatio), 1 - beta) };
}

/**
 * log(a/m) for m = w·a + (1 − w)·b, from x = log(a/b):
 * −log(w + (1 − w)·e^(−x)), as −log1p((1 − w)·expm1(−x)) where that is
 * accurate (−x ≤ 1) and as a log-sum-exp elsewhere (no overflow).
 */
function logOverMixture(x: tf.Tensor, w: number): tf.Tensor {
  const negX = tf.neg(x);
  const nearOne = tf.neg(tf.log1p(tf.mul(tf.expm1(tf.minimum(negX, 1)), 1 - w)));
  const a = Math.log(w);
  const b = tf.add(negX, Math.log1p(-w));
  const viaLse = tf.neg(tf.add(tf.maximum(b, a), tf.log1p(tf.exp(tf.neg(tf.abs(tf.sub(b, a)))))));
  return tf.where(tf.lessEqual(negX, 1), nearOne, viaLse);
}

/**
 * d(per-row divergence)/dz for z = s/T, `[rows, classes]`. For every kind but
 * KL it is the softmax's vector-Jacobian product with the derivative w.r.t. q.
 */
function divergenceGradient(kind: Exclude<DistillationKind, 'mse'>, parts: LogRatioParts, beta: number): tf.Tensor2D {
  const { q, logRatio } = parts;
  switch (kind) {
    case 'kl':
      // Σ p·(log p − log q): d/dz = q − p.
      return tf.neg(probabilityGap(parts)) as tf.Tensor2D;
    case 'reverse-kl':
      // Σ q·(log q − log p): d/dq = −r + 1 (the constant drops out).
      return softmaxVjp(q, tf.neg(logRatio));
    case 'jsd':
      // d/dq of beta·KL(p‖m) + (1 − beta)·KL(q‖m) = (1 − beta)·log(q/m).
      return softmaxVjp(q, tf.mul(jsdLogRatios(logRatio, beta).studentTerm, 1 - beta));
    case 'tvd':
      // ½·Σ |p − q|: d/dq = −½·sign(p − q) (0 where p = q, as PyTorch).
      return softmaxVjp(q, tf.mul(signOf(probabilityGap(parts)), -0.5));
  }
}

/**
 * sign(x) from comparisons: tfjs-backend-wasm 4.22's Sign returns 0 for
 * |x| below about 1e-7, which would drop most classes from the tvd gradient
 * at high T, where p − q is that small.
 */
function signOf(x: tf.Tensor): tf.Tensor {
  return tf.sub(tf.cast(tf.greater(x, 0), 'float32'), tf.cast(tf.less(x, 0), 'float32'));
}

/**
 * q ⊙ (g − Σ q·g): the gradient w.r.t. z of a function of q = softmax(z)
 * whose derivative w.r.t. q is g. Computed as q_k·((g_k − c)·Σq − Σ q·(g − c))
 * with c = g at the row's most probable class: exact for any c, and free of
 * the cancellation between q_k·g_k and q_k·Σ q·g that loses everything when
 * g is large (reverse KL against a teacher whose log p is −1e4) or the
 * gradient tiny (a saturated row at T = 0.05).
 */
function softmaxVjp(q: tf.Tensor2D, g: tf.Tensor): tf.Tensor2D {
  const top = tf.oneHot(tf.argMax(q, -1), q.shape[1]);
  const centered = tf.sub(g, tf.sum(tf.mul(top, g), -1, true));
  const total = tf.sum(q, -1, true);
  return tf.mul(q, tf.sub(tf.mul(centered, total), tf.sum(tf.mul(q, centered), -1, true))) as tf.Tensor2D;
}

/**
 * Checks `beta` for `kind` and returns the value to use (the default 0.5 for
 * `'jsd'` when undefined).
 * @internal
 */
export function resolveBeta(beta: unknown, kind: DistillationKind): number {
  if (kind !== 'jsd') {
    if (beta !== undefined) {
      throw new KdConfigError(
        'INVALID_BETA',
        `beta (${String(beta)}) applies to kind 'jsd' only, but kind is '${kind}': ` +
          "use kind: 'jsd', or remove beta",
      );
    }
    return DEFAULT_JSD_BETA;
  }
  if (beta === undefined) return DEFAULT_JSD_BETA;
  if (beta === 0 || beta === 1) {
    // TRL's generalized_jsd_loss special-cases its ends as the two KLs; here
    // they are kinds of their own (the mixture formula itself is 0 there).
    throw new KdConfigError(
      'INVALID_BETA',
      `beta = ${beta} makes the generalized JSD vanish (m equals ${beta === 0 ? 'q' : 'p'}); ` +
        `TRL reads it as ${beta === 0 ? 'forward' : 'reverse'} KL: use kind: '${beta === 0 ? 'kl' : 'reverse-kl'}'`,
    );
  }
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0 || beta >= 1) {
    throw new KdConfigError(
      'INVALID_BETA',
      `beta must be a finite number strictly between 0 and 1 (the teacher's weight in the jsd mixture), ` +
        `got ${String(beta)}: use 0.5 for the symmetric Jensen–Shannon divergence`,
    );
  }
  return beta;
}
