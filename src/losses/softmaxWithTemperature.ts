import * as tf from '@tensorflow/tfjs-core';
import { shiftAndScale } from './shiftAndScale.js';
import { assertTemperature } from './validate.js';

/**
 * Softmax of `logits / temperature` over the last axis: the "soft targets"
 * of Hinton, Vinyals and Dean (2015, §2), `q_i = exp(z_i/T) / Σ_j exp(z_j/T)`.
 *
 * Higher temperatures give softer distributions that expose the teacher's
 * relative confidences ("dark knowledge"); `temperature = 1` is the plain
 * softmax. Numerically stable: the maximum is subtracted before `exp`, so
 * logits of ±1e4 at temperatures from 0.05 to 100 give finite probabilities.
 *
 * @param logits - Unnormalized scores, any rank ≥ 1; the last axis holds the classes.
 * @param temperature - A finite number > 0.
 * @returns Probabilities of the same shape as `logits`, summing to 1 over the last axis.
 * @throws {@link KdConfigError} `INVALID_TEMPERATURE` when `temperature` is not a finite number > 0.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmaxWithTemperature } from 'kd-ts';
 *
 * const soft = softmaxWithTemperature(tf.tensor2d([[5, 2, -1]]), 4);
 * soft.print(); // ≈ [[0.52, 0.25, 0.12]] — softer than softmax at T = 1
 * ```
 */
export function softmaxWithTemperature(logits: tf.Tensor, temperature: number): tf.Tensor {
  assertTemperature(temperature);
  return tf.tidy(() => tf.softmax(shiftAndScale(logits, temperature)));
}

/**
 * Log of {@link softmaxWithTemperature}, computed stably.
 *
 * @param logits - Unnormalized scores; the last axis holds the classes.
 * @param temperature - A finite number > 0.
 * @returns `log softmax(logits / temperature)` over the last axis.
 * @throws {@link KdConfigError} `INVALID_TEMPERATURE` when `temperature` is not a finite number > 0.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { logSoftmaxWithTemperature } from 'kd-ts';
 *
 * logSoftmaxWithTemperature(tf.tensor2d([[5, 2, -1]]), 2).print();
 * ```
 */
export function logSoftmaxWithTemperature(logits: tf.Tensor, temperature: number): tf.Tensor {
  assertTemperature(temperature);
  return tf.tidy(() => tf.logSoftmax(shiftAndScale(logits, temperature)));
}
