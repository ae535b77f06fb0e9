/**
 * The examples' MNIST networks: plain tfjs-layers MLPs that output logits
 * (the Distiller compares the teacher's and the student's logits, so no
 * softmax layer). Imports tfjs-layers only, so the browser page can use it too.
 */
import * as tfl from '@tensorflow/tfjs-layers';

/** 28 × 28 grey levels. */
export const MLP_INPUTS = 784;
/** Digits 0 to 9. */
export const MLP_CLASSES = 10;

/** Dropout of {@link buildMlp}; both 0 by default (students). */
export interface MlpDropout {
  /** Dropout after each hidden layer. */
  dropout?: number;
  /** Dropout on the pixels. */
  inputDropout?: number;
}

/**
 * A 784-…-10 ReLU MLP ending in logits. Build it inside `withSeed` for
 * repeatable initial weights.
 *
 * @param hidden - Widths of the hidden layers, e.g. `[1200, 1200]` or `[32]`.
 * @param options - Dropout rates (teachers use some).
 * @returns A built, uncompiled `tf.Sequential`.
 */
export function buildMlp(hidden: readonly number[], options: MlpDropout = {}): tfl.Sequential {
  const dropout = options.dropout ?? 0;
  const inputDropout = options.inputDropout ?? 0;
  const model = tfl.sequential();
  if (inputDropout > 0) model.add(tfl.layers.dropout({ rate: inputDropout, inputShape: [MLP_INPUTS] }));
  hidden.forEach((units, i) => {
    const first = i === 0 && inputDropout === 0;
    model.add(tfl.layers.dense({ units, activation: 'relu', ...(first ? { inputShape: [MLP_INPUTS] } : {}) }));
    if (dropout > 0) model.add(tfl.layers.dropout({ rate: dropout }));
  });
  model.add(tfl.layers.dense({ units: MLP_CLASSES }));
  return model;
}
