import * as tf from '@tensorflow/tfjs-core';

/**
 * The hard-label term, per example: `−Σ y · log softmax(z)`, the student's
 * cross-entropy at T = 1 against target distributions (one-hot rows, or any
 * distributions). Must run inside `tf.tidy` or a gradient closure.
 *
 * @param logits - `[rows, classes]` student logits.
 * @param targets - `[rows, classes]` float targets.
 * @returns `[rows]`.
 * @internal
 */
export function hardLabelCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1)) as tf.Tensor1D;
}
