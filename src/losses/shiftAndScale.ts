import * as tf from '@tensorflow/tfjs-core';

/**
 * `(z − max z) / T`: subtracting the row maximum before dividing keeps the
 * small gaps between huge logits (±1e4) that dividing first would round away.
 * Softmax is shift-invariant, so the shift's exact gradient is 0: a custom
 * gradient (`dy / T`) drops it instead of routing float noise to the argmax.
 * @internal
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
