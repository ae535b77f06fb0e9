/**
 * The demo's networks: plain tfjs-layers MLPs that output logits (the
 * Distiller needs the teacher's and the student's logits, not softmax
 * probabilities). Shared by the build step (which trains the teacher in
 * Node) and the page, so both build the same architecture.
 */
import * as tfl from '@tensorflow/tfjs-layers';

/** 28 × 28 grey levels. */
export const PIXELS = 784;
/** Digits 0 to 9. */
export const CLASSES = 10;

/** Dropout of {@link buildMlp}; both 0 by default (students). */
export interface MlpDropout {
  /** Dropout after each hidden layer. */
  dropout?: number;
  /** Dropout on the pixels. */
  inputDropout?: number;
}

/**
 * A 784-…-10 ReLU MLP ending in logits.
 *
 * @param hidden - Widths of the hidden layers, e.g. `[256, 256]` or `[32]`.
 * @param options - Dropout rates (the teacher uses some, to generalize from few digits).
 * @returns A built, uncompiled `tf.Sequential`.
 */
export function buildMlp(hidden: number[], options: MlpDropout = {}): tfl.Sequential {
  const dropout = options.dropout ?? 0;
  const inputDropout = options.inputDropout ?? 0;
  const model = tfl.sequential();
  if (inputDropout > 0) model.add(tfl.layers.dropout({ rate: inputDropout, inputShape: [PIXELS] }));
  hidden.forEach((units, i) => {
    const first = i === 0 && inputDropout === 0;
    model.add(tfl.layers.dense({ units, activation: 'relu', ...(first ? { inputShape: [PIXELS] } : {}) }));
    if (dropout > 0) model.add(tfl.layers.dropout({ rate: dropout }));
  });
  model.add(tfl.layers.dense({ units: CLASSES }));
  return model;
}

/** `784-256-256-10`, the way the page names a network. */
export function architecture(hidden: number[]): string {
  return [PIXELS, ...hidden, CLASSES].join('-');
}
