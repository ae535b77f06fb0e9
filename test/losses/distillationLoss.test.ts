/**
 * distillationLoss: mathematical properties (against float64 references
 * computed here and against tf's own cross-entropy), typed errors, and
 * tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  distillationLoss,
  KdConfigError,
  KdDataError,
  KdError,
  KdShapeError,
  type DistillationLossOptions,
  type KdErrorCode,
} from '../../src/index.js';

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

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

/** `[rows, cols]` of float32-rounded normals, as nested arrays (exactly what the tensor will hold). */
function randomMatrix(rows: number, cols: number, seed: number, scale = 3): number[][] {
  const flat = randomNormals(rows * cols, seed, scale).map(Math.fround);
  return Array.from({ length: rows }, (_, i) => flat.slice(i * cols, (i + 1) * cols));
}

function logSoftmaxRow(row: readonly number[], temperature = 1): number[] {
  const scaled = row.map((v) => v / temperature);
  const max = Math.max(...scaled);
  const lse = max + Math.log(scaled.reduce((s, v) => s + Math.exp(v - max), 0));
  return scaled.map((v) => v - lse);
}

function softmaxRow(row: readonly number[], temperature = 1): number[] {
  return logSoftmaxRow(row, temperature).map(Math.exp);
}

/** Float64 reference: per-example KL(softmax(t/T) ‖ softmax(s/T)), without the T² factor. */
function refKlPerExample(student: number[][], teacher: number[][], temperature: number): number[] {
  return student.map((s, i) => {
    const logPs = logSoftmaxRow(s, temperature);
    const logPt = logSoftmaxRow(teacher[i]!, temperature);
    return logPt.reduce((acc, lpt, c) => acc + Math.exp(lpt) * (lpt - logPs[c]!), 0);
  });
}

function refMsePerExample(student: number[][], teacher: number[][]): number[] {
  return student.map((s, i) => s.reduce((acc, v, c) => acc + (teacher[i]![c]! - v) ** 2, 0));
}

function refCePerExample(student: number[][], ids: readonly number[]): number[] {
  return student.map((s, i) => -logSoftmaxRow(s)[ids[i]!]!);
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function scalarOf(t: tf.Tensor): number {
  expect(t.rank).toBe(0);
  return t.dataSync()[0]!;
}

/** Runs the loss and returns its value, disposing the result. */
function lossValue(student: tf.Tensor, teacher: tf.Tensor, options?: DistillationLossOptions): number {
  const loss = distillationLoss(student, teacher, options);
  try {
    return scalarOf(loss);
  } finally {
    tf.dispose(loss);
  }
}

function expectRelClose(actual: number, expected: number, rtol = 1e-5, atol = 1e-6): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(atol + rtol * Math.abs(expected));
}

function oneHotRows(ids: readonly number[], numClasses: number): number[][] {
  return ids.map((id) => Array.from({ length: numClasses }, (_, c) => (c === id ? 1 : 0)));
}

/** Keeps track of tensors made by a test and disposes them after it. */
let owned: tf.Tensor[] = [];
function own<T extends tf.Tensor>(t: T): T {
  owned.push(t);
  return t;
}
beforeEach(() => {
  owned = [];
});
afterEach(() => {
  tf.dispose(owned);
  owned = [];
});

// ---------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------

describe('distillationLoss: KL term', () => {
  test.each([2, 5, 20])(
    'T = %s: gradient w.r.t. the student is (softmax(s/T) − softmax(t/T))·T/batch',
    (temperature) => {
      const batch = 6;
      const numClasses = 12;
      const s = randomMatrix(batch, numClasses, 100 + temperature, 4);
      const t = randomMatrix(batch, numClasses, 200 + temperature, 4);
      const student = own(tf.tensor2d(s));
      const teacher = own(tf.tensor2d(t));
      const grad = own(tf.grad((x: tf.Tensor) => distillationLoss(x, teacher, { temperature }))(student));
      expect(grad.shape).toEqual([batch, numClasses]);
      const expected = s.flatMap((row, i) => {
        const ps = softmaxRow(row, temperature);
        const pt = softmaxRow(t[i]!, temperature);
        return ps.map((p, c) => ((p - pt[c]!) * temperature) / batch);
      });
      const maxRef = Math.max(...expected.map(Math.abs));
      expect(maxRef).toBeGreaterThan(1e-4);
      const tol = 1e-5 * maxRef + 1e-7;
      const actual = grad.dataSync();
      expected.forEach((e, k) => {
        expect(Math.abs(actual[k]! - e), `element ${k}: ${actual[k]} vs ${e}`).toBeLessThanOrEqual(tol);
      });
    },
  );

  test.each([1, 2, 5, 20])('T = %s: loss equals T²·mean KL of the float64 reference', (temperature) => {
    const s = randomMatrix(5, 7, 300 + temperature);
    const t = randomMatrix(5, 7, 400 + temperature);
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const expected = temperature ** 2 * mean(refKlPerExample(s, t, temperature));
    expectRelClose(lossValue(student, teacher, { temperature }), expected);
    // Without the T² factor it is the plain mean KL.
    expectRelClose(
      lossValue(student, teacher, { temperature, scaleByTemperatureSquared: false }),
      mean(refKlPerExample(s, t, temperature)),
    );
  });

  test.each([0.5, 1, 4, 20])('T = %s: KL is 0 when student equals teacher', (temperature) => {
    const s = randomMatrix(4, 10, 500, 5);
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(s)); // a different tensor with the same values
    const loss = lossValue(student, teacher, { temperature });
    expect(Math.abs(loss)).toBeLessThanOrEqual(1e-6);
    // Also at the extreme logits.
    const big = own(tf.tensor2d([[1e4, -1e4, 0, 5e3]]));
    const big2 = own(tf.tensor2d([[1e4, -1e4, 0, 5e3]]));
    expect(Math.abs(lossValue(big, big2, { temperature }))).toBeLessThanOrEqual(1e-6);
  });

  test('KL is > 0 for different student and teacher (20 random pairs, several T)', () => {
    for (let k = 0; k < 20; k++) {
      const temperature = [0.5, 1, 2, 5, 20][k % 5]!;
      const student = own(tf.tensor2d(randomMatrix(3, 6, 600 + k, 2)));
      const teacher = own(tf.tensor2d(randomMatrix(3, 6, 700 + k, 2)));
      const loss = lossValue(student, teacher, { temperature });
      expect(Number.isFinite(loss)).toBe(true);
      expect(loss).toBeGreaterThan(0);
    }
  });

  test('kind defaults to kl', () => {
    const student = own(tf.tensor2d(randomMatrix(3, 4, 1)));
    const teacher = own(tf.tensor2d(randomMatrix(3, 4, 2)));
    expect(lossValue(student, teacher, { temperature: 3 })).toBe(
      lossValue(student, teacher, { temperature: 3, kind: 'kl' }),
    );
  });

  test('a confident teacher (logit gap 1e4) gives a finite loss and gradient', () => {
    const student = own(tf.tensor2d([[0.5, -0.2, 1.0, 0]]));
    const teacher = own(tf.tensor2d([[1e4, 0, 0, -1e4]]));
    const loss = lossValue(student, teacher, { temperature: 1 });
    // p_t = [1, 0, 0, 0] (to float64 precision): KL = −log softmax(s)[0].
    expectRelClose(loss, -logSoftmaxRow([0.5, -0.2, 1.0, 0])[0]!);
    const grad = own(tf.grad((x: tf.Tensor) => distillationLoss(x, teacher, { temperature: 1 }))(student));
    for (const v of grad.dataSync()) expect(Number.isFinite(v)).toBe(true);
  });
});

describe('distillationLoss: MSE term', () => {
  test('ignores the temperature (T = 1, T = 7 and no T give the same value)', () => {
    const student = own(tf.tensor2d(randomMatrix(4, 5, 800)));
    const teacher = own(tf.tensor2d(randomMatrix(4, 5, 801)));
    const a = lossValue(student, teacher, { kind: 'mse', temperature: 1 });
    const b = lossValue(student, teacher, { kind: 'mse', temperature: 7 });
    const c = lossValue(student, teacher, { kind: 'mse' });
    expect(b).toBe(a);
    expect(c).toBe(a);
    // And the T² switch does not apply either.
    expect(lossValue(student, teacher, { kind: 'mse', temperature: 7, scaleByTemperatureSquared: false })).toBe(a);
  });

  test('equals the sum over classes of squared differences, averaged over the batch', () => {
    const s = randomMatrix(4, 5, 802);
    const t = randomMatrix(4, 5, 803);
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    expectRelClose(lossValue(student, teacher, { kind: 'mse' }), mean(refMsePerExample(s, t)));
  });

  test('gradient is 2·(s − t)/batch', () => {
    const s = randomMatrix(3, 4, 804);
    const t = randomMatrix(3, 4, 805);
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const grad = own(tf.grad((x: tf.Tensor) => distillationLoss(x, teacher, { kind: 'mse' }))(student));
    const expected = s.flatMap((row, i) => row.map((v, c) => (2 * (v - t[i]![c]!)) / 3));
    const actual = grad.dataSync();
    expected.forEach((e, k) => expect(Math.abs(actual[k]! - e)).toBeLessThanOrEqual(1e-5 * Math.abs(e) + 1e-6));
  });
});

describe('distillationLoss: alpha and labels', () => {
  const batch = 6;
  const numClasses = 5;
  const s = randomMatrix(batch, numClasses, 900);
  const t = randomMatrix(batch, numClasses, 901);
  const ids = [0, 3, 4, 1, 1, 2];
  const temperature = 3;
  const distillRef = temperature ** 2 * mean(refKlPerExample(s, t, temperature));
  const ceRef = mean(refCePerExample(s, ids));

  test('without labels, alpha defaults to 0 and the loss is the distillation term', () => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const implicit = lossValue(student, teacher, { temperature });
    expectRelClose(implicit, distillRef);
    expect(lossValue(student, teacher, { temperature, alpha: 0 })).toBe(implicit);
  });

  test('with labels, alpha = 0 is pure distillation', () => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const labels = own(tf.tensor1d(ids, 'int32'));
    const withLabels = lossValue(student, teacher, { temperature, alpha: 0, labels });
    expectRelClose(withLabels, lossValue(student, teacher, { temperature }), 1e-6, 1e-7);
    expectRelClose(withLabels, distillRef);
  });

  test('with labels, alpha = 1 is pure cross-entropy (vs tf.losses.softmaxCrossEntropy and float64)', () => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const labels = own(tf.tensor1d(ids, 'int32'));
    const pureCe = lossValue(student, teacher, { temperature, alpha: 1, labels });
    const oneHot = own(tf.tensor2d(oneHotRows(ids, numClasses)));
    const tfCe = own(tf.losses.softmaxCrossEntropy(oneHot, student)); // mean over the batch
    expectRelClose(pureCe, scalarOf(tfCe));
    expectRelClose(pureCe, ceRef);
    // The teacher plays no part: a different teacher gives the same value.
    const otherTeacher = own(tf.tensor2d(randomMatrix(batch, numClasses, 902)));
    expectRelClose(lossValue(student, otherTeacher, { temperature, alpha: 1, labels }), pureCe, 1e-6, 1e-7);
  });

  test.each([0.1, 0.25, 0.5, 0.9])('alpha = %s mixes the two terms linearly', (alpha) => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const labels = own(tf.tensor1d(ids, 'int32'));
    const a = Math.fround(alpha);
    expectRelClose(lossValue(student, teacher, { temperature, alpha, labels }), a * ceRef + (1 - a) * distillRef);
  });

  test('class ids [B] (int32 or integral float) and [B, 1] give the same loss as one-hot', () => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const variants: Array<[string, tf.Tensor]> = [
      ['int32 [B]', own(tf.tensor1d(ids, 'int32'))],
      ['float32 [B]', own(tf.tensor1d(ids, 'float32'))],
      ['int32 [B, 1]', own(tf.tensor2d(ids.map((i) => [i]), [batch, 1], 'int32'))],
      ['float32 [B, 1]', own(tf.tensor2d(ids.map((i) => [i]), [batch, 1], 'float32'))],
    ];
    const oneHot = own(tf.tensor2d(oneHotRows(ids, numClasses)));
    const reference = lossValue(student, teacher, { temperature, alpha: 0.4, labels: oneHot });
    expectRelClose(reference, 0.4 * ceRef + 0.6 * distillRef);
    for (const [what, labels] of variants) {
      const v = lossValue(student, teacher, { temperature, alpha: 0.4, labels });
      expect(Math.abs(v - reference), what).toBeLessThanOrEqual(1e-6 * Math.abs(reference));
    }
  });

  test('soft labels (rows summing to 1) give −Σ y·log p', () => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const soft = s.map((_, i) => softmaxRow(randomMatrix(1, numClasses, 950 + i, 1)[0]!).map(Math.fround));
    const labels = own(tf.tensor2d(soft));
    const ce = mean(s.map((row, i) => -logSoftmaxRow(row).reduce((acc, lp, c) => acc + soft[i]![c]! * lp, 0)));
    expectRelClose(lossValue(student, teacher, { temperature, alpha: 1, labels }), ce);
  });
});

describe('distillationLoss: sample weights', () => {
  const batch = 5;
  const numClasses = 4;
  const s = randomMatrix(batch, numClasses, 1000);
  const t = randomMatrix(batch, numClasses, 1001);
  const ids = [3, 0, 2, 2, 1];

  test.each<[string, DistillationLossOptions]>([
    ['kl', { temperature: 2 }],
    ['kl with labels', { temperature: 2, alpha: 0.3 }],
    ['mse', { kind: 'mse' }],
    ['mse with labels', { kind: 'mse', alpha: 0.5 }],
  ])('%s: all-ones weights equal the unweighted loss', (_what, base) => {
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const labels = base.alpha !== undefined ? own(tf.tensor1d(ids, 'int32')) : undefined;
    const ones = own(tf.ones([batch]));
    const unweighted = lossValue(student, teacher, { ...base, labels });
    const weighted = lossValue(student, teacher, { ...base, labels, sampleWeights: ones });
    expectRelClose(weighted, unweighted, 1e-6, 1e-7);
  });

  test.each<[string, DistillationLossOptions]>([
    ['kl', { temperature: 2 }],
    ['kl with labels', { temperature: 2, alpha: 0.3 }],
    ['mse', { kind: 'mse' }],
    ['mse with labels', { kind: 'mse', alpha: 0.5 }],
  ])('%s: a zero weight drops that example', (_what, base) => {
    const keep = [0, 1, 3, 4]; // row 2 gets weight 0
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const labels = base.alpha !== undefined ? own(tf.tensor1d(ids, 'int32')) : undefined;
    const weights = own(tf.tensor1d([1, 1, 0, 1, 1]));
    const weighted = lossValue(student, teacher, { ...base, labels, sampleWeights: weights });

    const subStudent = own(tf.tensor2d(keep.map((i) => s[i]!)));
    const subTeacher = own(tf.tensor2d(keep.map((i) => t[i]!)));
    const subLabels = base.alpha !== undefined ? own(tf.tensor1d(keep.map((i) => ids[i]!), 'int32')) : undefined;
    const onRemaining = lossValue(subStudent, subTeacher, { ...base, labels: subLabels });
    expectRelClose(weighted, onRemaining, 1e-5, 1e-6);

    // Changing the dropped row changes nothing (not even through a NaN-free 0·x).
    const s2 = s.map((row, i) => (i === 2 ? row.map((v) => v + 10) : row));
    const student2 = own(tf.tensor2d(s2));
    expectRelClose(lossValue(student2, teacher, { ...base, labels, sampleWeights: weights }), weighted, 1e-6, 1e-7);
    // And its gradient is zero.
    const grad = own(
      tf.grad((x: tf.Tensor) => distillationLoss(x, teacher, { ...base, labels, sampleWeights: weights }))(student),
    );
    const g = grad.dataSync();
    for (let c = 0; c < numClasses; c++) expect(Math.abs(g[2 * numClasses + c]!)).toBe(0);
  });

  test('non-uniform weights give Σ wᵢ·lᵢ / Σ wᵢ', () => {
    const w = [0.5, 2, 1, 0.25, 3];
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(t));
    const weights = own(tf.tensor1d(w));
    const per = refKlPerExample(s, t, 2).map((v) => 4 * v);
    const expected = per.reduce((acc, l, i) => acc + w[i]! * l, 0) / w.reduce((a, b) => a + b, 0);
    expectRelClose(lossValue(student, teacher, { temperature: 2, sampleWeights: weights }), expected);
    // [B, 1] weights are accepted too.
    const weightsCol = own(tf.tensor2d(w.map((v) => [v])));
    expectRelClose(lossValue(student, teacher, { temperature: 2, sampleWeights: weightsCol }), expected);
  });
});

describe('distillationLoss: validate: false', () => {
  test('gives the same value on valid inputs', () => {
    const student = own(tf.tensor2d(randomMatrix(3, 4, 1100)));
    const teacher = own(tf.tensor2d(randomMatrix(3, 4, 1101)));
    const labels = own(tf.tensor1d([0, 1, 3], 'int32'));
    const weights = own(tf.tensor1d([1, 2, 0.5]));
    const options: DistillationLossOptions = { temperature: 4, alpha: 0.2, labels, sampleWeights: weights };
    expect(lossValue(student, teacher, { ...options, validate: false })).toBe(lossValue(student, teacher, options));
  });

  test('still checks shapes', () => {
    const student = own(tf.tensor2d(randomMatrix(3, 4, 1102)));
    const teacher = own(tf.tensor2d(randomMatrix(3, 5, 1103)));
    expect(() => distillationLoss(student, teacher, { temperature: 2, validate: false })).toThrow(KdShapeError);
  });
});

// ---------------------------------------------------------------------------
// typed errors
// ---------------------------------------------------------------------------

type ErrorClass = typeof KdConfigError | typeof KdShapeError | typeof KdDataError;

/**
 * Calls `fn` (which must only use tensors created beforehand), expects a
 * typed error of `cls` with `code`, and checks that no tensor leaked.
 */
function expectKdError(fn: () => unknown, cls: ErrorClass, code: KdErrorCode, message?: RegExp | string): KdError {
  const before = tf.memory().numTensors;
  let caught: unknown;
  try {
    const result = fn();
    if (result instanceof tf.Tensor) tf.dispose(result);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${cls.name} ${code}, nothing was thrown`).toBeDefined();
  expect(caught).toBeInstanceOf(cls);
  expect(caught).toBeInstanceOf(KdError);
  const err = caught as KdError;
  expect(err.code).toBe(code);
  expect(err.name).toBe(cls.name);
  expect(err.message.length).toBeGreaterThan(20);
  if (message !== undefined) expect(err.message).toMatch(message);
  expect(tf.memory().numTensors, 'tensors leaked on the error path').toBe(before);
  return err;
}

describe('distillationLoss: typed errors', () => {
  let student: tf.Tensor2D;
  let teacher: tf.Tensor2D;
  let ids: tf.Tensor1D;
  beforeEach(() => {
    student = own(tf.tensor2d(randomMatrix(4, 10, 1200)));
    teacher = own(tf.tensor2d(randomMatrix(4, 10, 1201)));
    ids = own(tf.tensor1d([0, 9, 3, 5], 'int32'));
  });

  test.each<[string, number | undefined]>([
    ['0', 0],
    ['-2', -2],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('INVALID_TEMPERATURE: T = %s', (_label, temperature) => {
    expectKdError(
      () => distillationLoss(student, teacher, { temperature }),
      KdConfigError,
      'INVALID_TEMPERATURE',
      /temperature/,
    );
  });

  test('INVALID_TEMPERATURE: missing for kind kl (explicit and default)', () => {
    expectKdError(() => distillationLoss(student, teacher, { kind: 'kl' }), KdConfigError, 'INVALID_TEMPERATURE');
    expectKdError(() => distillationLoss(student, teacher, {}), KdConfigError, 'INVALID_TEMPERATURE');
    expectKdError(() => distillationLoss(student, teacher), KdConfigError, 'INVALID_TEMPERATURE');
  });

  test('mse needs no temperature', () => {
    const before = tf.memory().numTensors;
    const loss = distillationLoss(student, teacher, { kind: 'mse' });
    expect(Number.isFinite(scalarOf(loss))).toBe(true);
    tf.dispose(loss);
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each([-0.1, 1.5, Number.NaN])('INVALID_ALPHA: alpha = %s', (alpha) => {
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha, labels: ids }),
      KdConfigError,
      'INVALID_ALPHA',
      /alpha/,
    );
  });

  test('ALPHA_WITHOUT_LABELS', () => {
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5 }),
      KdConfigError,
      'ALPHA_WITHOUT_LABELS',
      /labels/,
    );
  });

  test('CLASS_COUNT_MISMATCH: student 9 classes, teacher 10', () => {
    const student9 = own(tf.tensor2d(randomMatrix(4, 9, 1202)));
    const err = expectKdError(
      () => distillationLoss(student9, teacher, { temperature: 2 }),
      KdShapeError,
      'CLASS_COUNT_MISMATCH',
    );
    expect(err.message).toContain('build the student with 10 output units');
  });

  test('CLASS_COUNT_MISMATCH: one-hot labels with the wrong class count', () => {
    const oneHot9 = own(tf.oneHot(own(tf.tensor1d([0, 1, 2, 3], 'int32')), 9));
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5, labels: oneHot9 }),
      KdShapeError,
      'CLASS_COUNT_MISMATCH',
    );
  });

  test('BATCH_SIZE_MISMATCH: logits', () => {
    const teacher3 = own(tf.tensor2d(randomMatrix(3, 10, 1203)));
    expectKdError(
      () => distillationLoss(student, teacher3, { temperature: 2 }),
      KdShapeError,
      'BATCH_SIZE_MISMATCH',
    );
  });

  test('BATCH_SIZE_MISMATCH: labels rows (ids and one-hot)', () => {
    const ids3 = own(tf.tensor1d([0, 1, 2], 'int32'));
    const oneHot5 = own(tf.oneHot(own(tf.tensor1d([0, 1, 2, 3, 4], 'int32')), 10));
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5, labels: ids3 }),
      KdShapeError,
      'BATCH_SIZE_MISMATCH',
    );
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5, labels: oneHot5 }),
      KdShapeError,
      'BATCH_SIZE_MISMATCH',
    );
  });

  test('BATCH_SIZE_MISMATCH: a single label row is not silently broadcast over the batch', () => {
    const ids1 = own(tf.tensor1d([2], 'int32'));
    const oneHot1 = own(tf.oneHot(ids1, 10));
    for (const labels of [ids1, oneHot1]) {
      expectKdError(
        () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5, labels }),
        KdShapeError,
        'BATCH_SIZE_MISMATCH',
      );
    }
  });

  test('BATCH_SIZE_MISMATCH: sample weights of the wrong length', () => {
    const weights3 = own(tf.ones([3]));
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, sampleWeights: weights3 }),
      KdShapeError,
      'BATCH_SIZE_MISMATCH',
    );
  });

  test('RANK_MISMATCH: rank-1 logits (student or teacher)', () => {
    const row = own(tf.tensor1d(randomMatrix(1, 10, 1204)[0]!));
    const teacherRow = own(tf.tensor1d(randomMatrix(1, 10, 1205)[0]!));
    expectKdError(() => distillationLoss(row, teacher, { temperature: 2 }), KdShapeError, 'RANK_MISMATCH');
    expectKdError(() => distillationLoss(student, teacherRow, { temperature: 2 }), KdShapeError, 'RANK_MISMATCH');
    expectKdError(() => distillationLoss(row, teacherRow, { temperature: 2 }), KdShapeError, 'RANK_MISMATCH');
  });

  test('NON_FINITE_LOGITS: NaN in the student', () => {
    const values = randomMatrix(4, 10, 1206);
    values[2]![7] = Number.NaN;
    const bad = own(tf.tensor2d(values));
    expectKdError(() => distillationLoss(bad, teacher, { temperature: 2 }), KdDataError, 'NON_FINITE_LOGITS');
  });

  test('NON_FINITE_TEACHER_OUTPUT: Infinity in the teacher', () => {
    const values = randomMatrix(4, 10, 1207);
    values[1]![0] = Number.POSITIVE_INFINITY;
    const bad = own(tf.tensor2d(values));
    expectKdError(
      () => distillationLoss(student, bad, { temperature: 2 }),
      KdDataError,
      'NON_FINITE_TEACHER_OUTPUT',
    );
  });

  test.each<[string, number[], 'int32' | 'float32']>([
    ['id 10 with 10 classes', [0, 10, 3, 5], 'int32'],
    ['id -1', [0, 1, -1, 5], 'int32'],
    ['id 1.5', [0, 1, 1.5, 5], 'float32'],
  ])('LABEL_OUT_OF_RANGE: %s', (_label, values, dtype) => {
    const labels = own(tf.tensor1d(values, dtype));
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5, labels }),
      KdDataError,
      'LABEL_OUT_OF_RANGE',
    );
  });

  test('LABEL_OUT_OF_RANGE: negative one-hot entries', () => {
    const rows = oneHotRows([0, 1, 2, 3], 10);
    rows[3]![3] = -1;
    const labels = own(tf.tensor2d(rows));
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, alpha: 0.5, labels }),
      KdDataError,
      'LABEL_OUT_OF_RANGE',
    );
  });

  test.each<[string, number[]]>([
    ['a negative weight', [1, -0.5, 1, 1]],
    ['all zero', [0, 0, 0, 0]],
    ['NaN', [1, Number.NaN, 1, 1]],
  ])('INVALID_SAMPLE_WEIGHTS: %s', (_label, values) => {
    const weights = own(tf.tensor1d(values));
    expectKdError(
      () => distillationLoss(student, teacher, { temperature: 2, sampleWeights: weights }),
      KdDataError,
      'INVALID_SAMPLE_WEIGHTS',
    );
  });

  test("INVALID_OPTION: kind 'foo'", () => {
    expectKdError(
      () =>
        distillationLoss(student, teacher, {
          temperature: 2,
          kind: 'foo' as unknown as DistillationLossOptions['kind'],
        }),
      KdConfigError,
      'INVALID_OPTION',
      /kind/,
    );
  });
});

// ---------------------------------------------------------------------------
// tensor hygiene
// ---------------------------------------------------------------------------

describe('distillationLoss: no tensor leaks', () => {
  test('50 calls (kl, mse, labels, weights) leave numTensors at the baseline', () => {
    const student = own(tf.tensor2d(randomMatrix(8, 10, 1300)));
    const teacher = own(tf.tensor2d(randomMatrix(8, 10, 1301)));
    const labels = own(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'));
    const oneHot = own(tf.oneHot(labels, 10));
    const weights = own(tf.tensor1d([1, 2, 0, 1, 1, 0.5, 1, 3]));
    const variants: DistillationLossOptions[] = [
      { temperature: 4 },
      { temperature: 1 },
      { temperature: 2, alpha: 0.3, labels },
      { temperature: 2, alpha: 0.3, labels: oneHot, sampleWeights: weights },
      { kind: 'mse', alpha: 0.5, labels, sampleWeights: weights },
    ];
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      const loss = distillationLoss(student, teacher, variants[i % variants.length]);
      expect(tf.memory().numTensors).toBe(before + 1);
      tf.dispose(loss);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('50 tf.grad calls through it leave numTensors at the baseline', () => {
    const student = own(tf.tensor2d(randomMatrix(8, 10, 1302)));
    const teacher = own(tf.tensor2d(randomMatrix(8, 10, 1303)));
    const labels = own(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'));
    const weights = own(tf.tensor1d([1, 2, 0, 1, 1, 0.5, 1, 3]));
    const variants: DistillationLossOptions[] = [
      { temperature: 4 },
      { temperature: 2, alpha: 0.3, labels, sampleWeights: weights },
      { kind: 'mse', alpha: 0.5, labels },
    ];
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      const options = variants[i % variants.length]!;
      const grad = tf.grad((x: tf.Tensor) => distillationLoss(x, teacher, options))(student);
      expect(tf.memory().numTensors).toBe(before + 1);
      tf.dispose(grad);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('does not dispose or modify its inputs', () => {
    const s = randomMatrix(2, 3, 1304);
    const student = own(tf.tensor2d(s));
    const teacher = own(tf.tensor2d(randomMatrix(2, 3, 1305)));
    const labels = own(tf.tensor1d([2, 0], 'int32'));
    tf.dispose(distillationLoss(student, teacher, { temperature: 3, alpha: 0.5, labels }));
    for (const t of [student, teacher, labels]) expect(t.isDisposed).toBe(false);
    expect(Array.from(student.dataSync())).toEqual(s.flat());
  });
});
