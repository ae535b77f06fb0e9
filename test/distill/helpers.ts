import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { withSeed } from '../../src/index.js';

/** A small dense classifier with logits output. */
export function mlp(inputDim: number, hidden: number, classes: number, seed: number, extra: tfl.layers.Layer[] = []) {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: hidden, activation: 'relu', inputShape: [inputDim] }),
        ...extra,
        tfl.layers.dense({ units: classes }),
      ],
    }),
  );
}

/** Synthetic 3-class data whose labels a teacher can learn. */
export function toyData(n: number, inputDim = 6, seed = 0) {
  return withSeed(seed, () =>
    tf.tidy(() => {
      const x = tf.randomNormal([n, inputDim]);
      const score = tf.matMul(x, tf.randomNormal([inputDim, 3]));
      const y = tf.cast(tf.argMax(score, -1), 'int32');
      return { x, y };
    }),
  );
}

/** Copies of all weight values, for bit-exact comparisons. */
export function weightValues(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

export function sameValues(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((w, i) => w.length === b[i]!.length && w.every((v, j) => v === b[i]![j]));
}
