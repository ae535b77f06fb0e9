import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/index.js';
import { registerCpuTrainingKernels } from '../../src/backend/index.js';

interface Case {
  label: string;
  x: () => tf.Tensor;
  ids: () => tf.Tensor;
  numSegments: number;
}

/** Random floats of every magnitude, so float32 rounding of the sums shows if the order or precision differs. */
function randomValues(size: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: size }, () => (random() - 0.5) * 10 ** Math.floor(random() * 8 - 4));
}

function randomIds(size: number, low: number, high: number, seed: number): Int32Array {
  const random = seededRandom(seed);
  return Int32Array.from({ length: size }, () => low + Math.floor(random() * (high - low)));
}

const CASES: Case[] = [
  {
    label: 'embedding gradient: 300 rows × 16 into 100 segments, many repeats',
    x: () => tf.tensor2d(randomValues(300 * 16, 1), [300, 16]),
    ids: () => tf.tensor1d(randomIds(300, 0, 40, 2), 'int32'),
    numSegments: 100,
  },
  {
    label: 'ids out of range and negative are dropped',
    x: () => tf.tensor2d(randomValues(200 * 7, 3), [200, 7]),
    ids: () => tf.tensor1d(randomIds(200, -5, 25, 4), 'int32'),
    numSegments: 20,
  },
  {
    label: 'rank-1 x',
    x: () => tf.tensor1d(randomValues(64, 5)),
    ids: () => tf.tensor1d(randomIds(64, 0, 9, 6), 'int32'),
    numSegments: 9,
  },
  {
    label: 'rank-3 x with 1-D ids',
    x: () => tf.tensor3d(randomValues(40 * 3 * 4, 7), [40, 3, 4]),
    ids: () => tf.tensor1d(randomIds(40, 0, 6, 8), 'int32'),
    numSegments: 6,
  },
  {
    label: 'no rows',
    x: () => tf.zeros([0, 3]),
    ids: () => tf.tensor1d([], 'int32'),
    numSegments: 4,
  },
  {
    label: 'int32 x (handed to the stock kernel, which returns float32)',
    x: () => tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32'),
    ids: () => tf.tensor1d([0, 2, 0], 'int32'),
    numSegments: 3,
  },
  {
    label: '2-D ids (handed to the stock kernel)',
    x: () => tf.tensor3d([[[1], [2]], [[3], [4]]]),
    ids: () => tf.tensor2d([[1, 0], [1, 1]], [2, 2], 'int32'),
    numSegments: 2,
  },
];

function run(c: Case): { dtype: string; shape: number[]; values: number[] } {
  return tf.tidy(() => {
    const out = tf.unsortedSegmentSum(c.x(), c.ids() as tf.Tensor1D, c.numSegments);
    return { dtype: out.dtype, shape: out.shape, values: Array.from(out.dataSync()) };
  });
}

/** Gradient of an embedding lookup, the kernel's real use. */
function embeddingGradient(): number[] {
  return tf.tidy(() => {
    const table = tf.tensor2d(randomValues(60 * 8, 9), [60, 8]);
    const tokens = tf.tensor2d(randomIds(20 * 12, 0, 60, 10), [20, 12], 'int32');
    const upstream = tf.tensor3d(randomValues(20 * 12 * 8, 11), [20, 12, 8]);
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tokens), upstream)))(table);
    return Array.from(grad.dataSync());
  });
}

describe('registerCpuTrainingKernels', () => {
  it('gives the stock kernel\'s results bit for bit, and is idempotent', () => {
    const stock = CASES.map(run);
    const stockGradient = embeddingGradient();
    const stockKernel = tf.getKernel(tf.UnsortedSegmentSum, 'cpu')!.kernelFunc;

    expect(registerCpuTrainingKernels()).toEqual(['UnsortedSegmentSum']);
    const ours = tf.getKernel(tf.UnsortedSegmentSum, 'cpu')!.kernelFunc;
    expect(ours).not.toBe(stockKernel);
    expect(registerCpuTrainingKernels()).toEqual(['UnsortedSegmentSum']);
    expect(tf.getKernel(tf.UnsortedSegmentSum, 'cpu')!.kernelFunc).toBe(ours);

    for (const [i, c] of CASES.entries()) expect(run(c), c.label).toEqual(stock[i]);
    expect(embeddingGradient()).toEqual(stockGradient);
    // The float data really was summed: not all zeros.
    expect(stock[0]!.values.some((v) => v !== 0)).toBe(true);
  });

  it('keeps a NaN in its own segment (the stock kernel spreads it to all)', () => {
    registerCpuTrainingKernels();
    const out = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor2d([[1, Number.NaN], [3, 4], [5, 6]]), tf.tensor1d([0, 1, 0], 'int32'), 2).arraySync(),
    );
    expect(out).toEqual([[6, Number.NaN], [3, 4]]);
  });

  it('gives an empty tensor for numSegments 0, and rejects a bad numSegments', () => {
    registerCpuTrainingKernels();
    const x = tf.ones([3, 2]);
    const ids = tf.tensor1d([0, 1, 0], 'int32');
    const empty = tf.unsortedSegmentSum(x, ids, 0);
    expect(empty.shape).toEqual([0, 2]);
    const before = tf.memory().numTensors;
    expect(() => tf.unsortedSegmentSum(x, ids, -1)).toThrow();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ids, empty]);
  });
});
