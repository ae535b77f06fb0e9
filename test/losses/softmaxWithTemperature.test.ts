/**
 * softmaxWithTemperature: numerical stability, the effect of T, ranks, typed
 * errors and tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import {
  KdConfigError,
  KdError,
  logSoftmaxWithTemperature,
  softmaxWithTemperature,
} from '../../src/index.js';

/** Deterministic pseudo-random normals (mulberry32 + Box–Muller), independent of tf's RNG. */
function randomNormals(n: number, seed: number, scale = 1): number[] {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out: number[] = [];
  while (out.length < n) {
    const u = uniform();
    const v = uniform();
    out.push(scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
  return out;
}

function rowsOf(values: ArrayLike<number>, numClasses: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < values.length; i += numClasses) rows.push(Array.from(values).slice(i, i + numClasses));
  return rows;
}

function argmax(row: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Float64 reference softmax of `row / T`. */
function refSoftmax(row: readonly number[], temperature: number): number[] {
  const scaled = row.map((v) => v / temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((v) => Math.exp(v - max));
  const sum = exps.reduce((s, v) => s + v, 0);
  return exps.map((v) => v / sum);
}

function entropy(row: readonly number[]): number {
  return -row.reduce((s, p) => (p > 0 ? s + p * Math.log(p) : s), 0);
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], atol: number, rtol = 0): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const tol = atol + rtol * Math.abs(e);
    if (!(Math.abs(a - e) <= tol)) {
      expect.fail(`element ${i}: got ${a}, expected ${e} (|Δ| = ${Math.abs(a - e)} > ${tol})`);
    }
  }
}

describe('softmaxWithTemperature: numerical stability with logits of ±1e4', () => {
  // Every row has a unique maximum, at different positions, with gaps from 1 to 2e4.
  const huge = [
    [1e4, -1e4, 0, 5e3],
    [-1e4, 1e4, 1e4 - 1, -1e4],
    [-1e4, -1e4, -1e4 + 1, -1e4],
    [0, 5e3, -5e3, 1e4],
    [1e4 - 2, 1e4 - 1, 1e4, -1e4],
  ];

  test.each([0.05, 0.5, 1, 10, 100])('T = %s: finite, rows sum to 1, argmax preserved', (temperature) => {
    const logits = tf.tensor2d(huge);
    const probs = softmaxWithTemperature(logits, temperature);
    try {
      expect(probs.shape).toEqual([5, 4]);
      expect(probs.dtype).toBe('float32');
      const rows = rowsOf(probs.dataSync(), 4);
      rows.forEach((row, i) => {
        for (const p of row) {
          expect(Number.isFinite(p)).toBe(true);
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1 + 1e-6);
        }
        expect(Math.abs(row.reduce((s, p) => s + p, 0) - 1)).toBeLessThanOrEqual(1e-5);
        expect(argmax(row)).toBe(argmax(huge[i]!));
        // And the values themselves, against the float64 reference. In float32, z/T for |z| = 1e4
        // is rounded to within η = 2^-24·max|z/T| (e.g. 9999/10 → 999.9000244), and softmax turns an
        // input error η into an output error of at most 2·p·η; the tolerance allows exactly that.
        const eta = 2 ** -24 * Math.max(...huge[i]!.map((z) => Math.abs(z / temperature)));
        const expected = refSoftmax(huge[i]!, temperature);
        row.forEach((p, j) => {
          const e = expected[j]!;
          expect(Math.abs(p - e), `row ${i} col ${j}: ${p} vs ${e}`).toBeLessThanOrEqual(
            1e-6 + 1e-5 * e + 2 * e * eta,
          );
        });
      });
    } finally {
      tf.dispose([logits, probs]);
    }
  });

  test.each([0.05, 1, 100])('T = %s: constant rows of ±1e4 give the uniform distribution', (temperature) => {
    const logits = tf.tensor2d([
      [1e4, 1e4, 1e4, 1e4],
      [-1e4, -1e4, -1e4, -1e4],
    ]);
    const probs = softmaxWithTemperature(logits, temperature);
    try {
      expectClose(probs.dataSync(), new Array<number>(8).fill(0.25), 1e-6);
    } finally {
      tf.dispose([logits, probs]);
    }
  });

  test('logSoftmaxWithTemperature stays finite at ±1e4 and T = 0.05', () => {
    const logits = tf.tensor2d([[1e4, -1e4, 0, 5e3]]);
    const logProbs = logSoftmaxWithTemperature(logits, 0.05);
    try {
      const values = Array.from(logProbs.dataSync());
      for (const v of values) expect(Number.isFinite(v)).toBe(true);
      // log softmax(z/T) = z/T − max(z/T) − log Σ exp(...): here [0, −4e5, −2e5, −1e5] exactly (within float32).
      expectClose(values, [0, -4e5, -2e5, -1e5], 1e-6, 1e-6);
    } finally {
      tf.dispose([logits, logProbs]);
    }
  });
});

describe('softmaxWithTemperature: the effect of the temperature', () => {
  const numClasses = 10;
  const data = randomNormals(4 * numClasses, 7, 3);

  test('higher T gives strictly higher entropy (monotone over T = 0.5, 1, 2, 5, 20)', () => {
    const logits = tf.tensor2d(data, [4, numClasses]);
    const temperatures = [0.5, 1, 2, 5, 20];
    const entropies = temperatures.map((temperature) => {
      const probs = softmaxWithTemperature(logits, temperature);
      const rows = rowsOf(probs.dataSync(), numClasses);
      tf.dispose(probs);
      return rows.map(entropy);
    });
    tf.dispose(logits);
    for (let k = 1; k < temperatures.length; k++) {
      for (let row = 0; row < 4; row++) {
        expect(entropies[k]![row]!).toBeGreaterThan(entropies[k - 1]![row]!);
      }
    }
    // Bounded by log C, and close to it at T = 20 for logits of scale 3.
    for (const h of entropies[temperatures.length - 1]!) {
      expect(h).toBeLessThanOrEqual(Math.log(numClasses) + 1e-6);
      expect(h).toBeGreaterThan(0.95 * Math.log(numClasses));
    }
  });

  test('T = 1 equals tf.softmax', () => {
    const logits = tf.tensor2d(data, [4, numClasses]);
    const ours = softmaxWithTemperature(logits, 1);
    const reference = tf.softmax(logits);
    try {
      expectClose(ours.dataSync(), Array.from(reference.dataSync()), 1e-7);
    } finally {
      tf.dispose([logits, ours, reference]);
    }
  });

  test('T = 4 equals tf.softmax(logits / 4) and the float64 reference', () => {
    const logits = tf.tensor2d(data, [4, numClasses]);
    const scaled = tf.div(logits, 4);
    const ours = softmaxWithTemperature(logits, 4);
    const reference = tf.softmax(scaled);
    try {
      expectClose(ours.dataSync(), Array.from(reference.dataSync()), 1e-7);
      const f32 = Array.from(logits.dataSync());
      expectClose(ours.dataSync(), rowsOf(f32, numClasses).flatMap((row) => refSoftmax(row, 4)), 1e-6, 1e-5);
    } finally {
      tf.dispose([logits, scaled, ours, reference]);
    }
  });

  test('does not modify or dispose its input', () => {
    const logits = tf.tensor2d([[1, 2, 3]]);
    const probs = softmaxWithTemperature(logits, 2);
    try {
      expect(logits.isDisposed).toBe(false);
      expect(Array.from(logits.dataSync())).toEqual([1, 2, 3]);
    } finally {
      tf.dispose([logits, probs]);
    }
  });
});

describe('softmaxWithTemperature: ranks', () => {
  test('rank 1: a single distribution', () => {
    const row = [2, -1, 0.5, 3];
    const logits = tf.tensor1d(row);
    const probs = softmaxWithTemperature(logits, 2);
    try {
      expect(probs.shape).toEqual([4]);
      expectClose(probs.dataSync(), refSoftmax(Array.from(logits.dataSync()), 2), 1e-6, 1e-5);
    } finally {
      tf.dispose([logits, probs]);
    }
  });

  test('rank 3: softmax over the last axis only', () => {
    const values = randomNormals(2 * 3 * 5, 11, 4);
    const logits = tf.tensor3d(values, [2, 3, 5]);
    const probs = softmaxWithTemperature(logits, 3);
    try {
      expect(probs.shape).toEqual([2, 3, 5]);
      const f32 = Array.from(logits.dataSync());
      const expected = rowsOf(f32, 5).flatMap((row) => refSoftmax(row, 3));
      expectClose(probs.dataSync(), expected, 1e-6, 1e-5);
      // Each of the 6 last-axis slices sums to 1 (and not, say, each first-axis slice).
      for (const row of rowsOf(probs.dataSync(), 5)) {
        expect(Math.abs(row.reduce((s, p) => s + p, 0) - 1)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      tf.dispose([logits, probs]);
    }
  });
});

describe('softmaxWithTemperature: invalid temperatures', () => {
  const bad: Array<[string, unknown]> = [
    ['0', 0],
    ['-0', -0],
    ['-1', -1],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['undefined', undefined],
    ['a string "2"', '2'],
  ];

  test.each(bad)('T = %s throws KdConfigError INVALID_TEMPERATURE and leaks nothing', (_label, temperature) => {
    const logits = tf.tensor2d([[1, 2, 3]]);
    const before = tf.memory().numTensors;
    let caught: unknown;
    try {
      softmaxWithTemperature(logits, temperature as number);
    } catch (e) {
      caught = e;
    }
    try {
      expect(caught).toBeInstanceOf(KdConfigError);
      expect(caught).toBeInstanceOf(KdError);
      const err = caught as KdConfigError;
      expect(err.code).toBe('INVALID_TEMPERATURE');
      expect(err.name).toBe('KdConfigError');
      // Names the problem and the fix.
      expect(err.message).toMatch(/temperature/i);
      expect(err.message).toMatch(/> ?0/);
      expect(err.message).toMatch(/use 1 for plain softmax/);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose(logits);
    }
  });

  test.each(bad)('logSoftmaxWithTemperature with T = %s throws INVALID_TEMPERATURE too', (_label, temperature) => {
    const logits = tf.tensor2d([[1, 2, 3]]);
    const before = tf.memory().numTensors;
    try {
      expect(() => logSoftmaxWithTemperature(logits, temperature as number)).toThrow(KdConfigError);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose(logits);
    }
  });
});

describe('softmaxWithTemperature: tensor hygiene', () => {
  test('only the result is allocated; disposing it returns to the baseline', () => {
    const logits = tf.tensor2d(randomNormals(3 * 6, 3, 2), [3, 6]);
    const before = tf.memory().numTensors;
    for (const temperature of [0.5, 1, 4]) {
      const probs = softmaxWithTemperature(logits, temperature);
      expect(tf.memory().numTensors).toBe(before + 1);
      tf.dispose(probs);
      expect(tf.memory().numTensors).toBe(before);
    }
    for (const temperature of [0.5, 1, 4]) {
      const logProbs = logSoftmaxWithTemperature(logits, temperature);
      expect(tf.memory().numTensors).toBe(before + 1);
      tf.dispose(logProbs);
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose(logits);
  });

  test('100 calls in a loop leave no tensors behind', () => {
    const logits = tf.tensor2d(randomNormals(4 * 8, 5, 2), [4, 8]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) tf.dispose(softmaxWithTemperature(logits, 1 + (i % 7)));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(logits);
  });

  test('gradient through it is finite and leaves no tensors behind', () => {
    const logits = tf.tensor2d([[1e4, -1e4, 0, 5e3]]);
    const weights = tf.tensor2d([[1, 2, 3, 4]]);
    const before = tf.memory().numTensors;
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(softmaxWithTemperature(x, 100), weights)))(logits);
    expect(tf.memory().numTensors).toBe(before + 1);
    for (const v of g.dataSync()) expect(Number.isFinite(v)).toBe(true);
    tf.dispose(g);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([logits, weights]);
  });
});
