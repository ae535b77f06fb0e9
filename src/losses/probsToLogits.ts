import * as tf from '@tensorflow/tfjs-core';

/**
 * Floor for probabilities turned into logits: log(1e-30) ≈ −69 stays finite
 * in float32, so a class a model gives probability 0 keeps a finite logit.
 */
export const PROB_FLOOR = 1e-30;

/**
 * `log p`, floored at {@link PROB_FLOOR}: the logits of a model that returns
 * probabilities, up to a per-row constant (no softmax at any temperature can
 * tell them apart from its true logits). Must run inside `tf.tidy` or a
 * gradient closure; keeps the dtype given.
 *
 * @internal
 */
export function probsToLogits(probs: tf.Tensor): tf.Tensor {
  return tf.log(tf.maximum(probs, PROB_FLOOR));
}
