/**
 * The orthogonal initializer, FastLSTM's default for its recurrent kernel,
 * computed by kd-ts. tfjs's own calls chained tensor methods, which exist only
 * when the app imports `@tensorflow/tfjs`, warns above 2,000 elements, and its
 * `tf.linalg.qr` takes about 40 s for a 150×600 recurrent kernel on the cpu
 * backend. Same distribution.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Initializer } from './initializers.js';

/**
 * `initializer`, or kd-ts's equivalent when it is tfjs's `Orthogonal` (same
 * `gain` and `seed`).
 *
 * @param initializer - A resolved tfjs-layers initializer.
 * @returns An initializer whose `apply` draws the same distribution.
 */
export function withOwnOrthogonal(initializer: Initializer): Initializer {
  if (initializer.getClassName() !== 'Orthogonal') return initializer;
  const { gain, seed } = initializer.getConfig() as { gain?: number; seed?: number | null };
  return {
    apply: (shape: tfl.Shape) => orthogonal(shape as number[], gain ?? 1, seed ?? undefined),
  } as unknown as Initializer;
}

/**
 * A random matrix with orthonormal rows or columns (whichever are fewer),
 * times `gain`: the Q of a normal matrix's QR with a positive diagonal in R,
 * which is uniformly distributed (Mezzadri 2007; what tfjs and Keras compute
 * by signing Q's columns with diag(R)). Gram-Schmidt, each column
 * orthogonalized twice for stability, in float64 on the CPU: about 4·m·n²
 * flops, tens of milliseconds for 600×150.
 */
function orthogonal(shape: number[], gain: number, seed: number | undefined): tf.Tensor {
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const cols = shape[shape.length - 1]!;
  const long = Math.max(rows, cols);
  const short = Math.min(rows, cols);
  const normal = tf.tidy(() => tf.transpose(tf.randomNormal([long, short], 0, 1, 'float32', seed)));
  const drawn = normal.dataSync();
  normal.dispose();
  // q holds the `short` columns, each `long` numbers, one after another.
  const q = Float64Array.from(drawn);
  for (let j = 0; j < short; j++) {
    const column = q.subarray(j * long, (j + 1) * long);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        const previous = q.subarray(k * long, (k + 1) * long);
        let dot = 0;
        for (let i = 0; i < long; i++) dot += previous[i]! * column[i]!;
        for (let i = 0; i < long; i++) column[i]! -= dot * previous[i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < long; i++) norm += column[i]! * column[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < long; i++) column[i]! /= norm;
  }
  // Rows < cols: the result is Qᵀ (orthonormal rows), already q's layout. Else Q: transpose.
  const values = new Float32Array(rows * cols);
  if (rows < cols) {
    for (let i = 0; i < values.length; i++) values[i] = gain * q[i]!;
  } else {
    for (let r = 0; r < long; r++) for (let c = 0; c < short; c++) values[r * short + c] = gain * q[c * long + r]!;
  }
  return tf.tensor(values, shape, 'float32');
}

