/**
 * The divergence family, top-k teacher outputs and token-level logits:
 * mathematical properties, every bad input's typed error, and tensor hygiene.
 * (Values against PyTorch are in divergences.fixtures.test.ts.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  distillationLoss,
  KdConfigError,
  KdDataError,
  KdError,
  KdShapeError,
  type DistillationKind,
  type DistillationLossOptions,
  type KdErrorCode,
} from '../../src/index.js';
import { topKLogits, type TopKLogits } from '../../src/losses/index.js';

/** Deterministic float32 normals (mulberry32 + Box–Muller). */
function randomValues(n: number, seed: number, scale = 3): number[] {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return Array.from({ length: n }, () => Math.fround(scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())));
}

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

function logits(shape: number[], seed: number, scale = 3): tf.Tensor {
  return own(tf.tensor(randomValues(shape.reduce((a, b) => a * b, 1), seed, scale), shape));
}

function value(student: tf.Tensor, teacher: tf.Tensor | TopKLogits, options: DistillationLossOptions): number {
  const loss = distillationLoss(student, teacher, options);
  try {
    expect(loss.rank).toBe(0);
    return loss.dataSync()[0]!;
  } finally {
    loss.dispose();
  }
}

function gradient(student: tf.Tensor, teacher: tf.Tensor | TopKLogits, options: DistillationLossOptions): Float32Array {
  const g = tf.grad((s: tf.Tensor) => distillationLoss(s, teacher, options))(student);
  try {
    return g.dataSync() as Float32Array;
  } finally {
    g.dispose();
  }
}

function close(actual: number, expected: number, rtol = 1e-5, atol = 1e-7): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(atol + rtol * Math.abs(expected));
}

const DIVERGENCES: DistillationKind[] = ['kl', 'reverse-kl', 'jsd', 'tvd'];

describe('divergences: properties', () => {
  test.each(DIVERGENCES)('%s is 0 for identical distributions and > 0 otherwise, at T = 0.5, 2, 20', (kind) => {
    for (const temperature of [0.5, 2, 20]) {
      const s = logits([4, 9], 10);
      const same = own(s.clone());
      const other = logits([4, 9], 11);
      expect(Math.abs(value(s, same, { kind, temperature }))).toBeLessThanOrEqual(1e-6);
      expect(value(s, other, { kind, temperature })).toBeGreaterThan(1e-4);
    }
  });

  test('reverse-kl(student, teacher) equals kl with the two swapped', () => {
    const s = logits([5, 7], 20);
    const t = logits([5, 7], 21);
    close(value(s, t, { kind: 'reverse-kl', temperature: 3 }), value(t, s, { kind: 'kl', temperature: 3 }));
  });

  test('jsd with beta swaps to 1 − beta when student and teacher swap; beta 0.5 is symmetric', () => {
    const s = logits([5, 7], 30);
    const t = logits([5, 7], 31);
    close(value(s, t, { kind: 'jsd', temperature: 2, beta: 0.2 }), value(t, s, { kind: 'jsd', temperature: 2, beta: 0.8 }));
    close(value(s, t, { kind: 'jsd', temperature: 2 }), value(t, s, { kind: 'jsd', temperature: 2, beta: 0.5 }));
  });

  test('jsd stays below its bound −log(min(beta, 1 − beta))·T² and tvd below T², even for disjoint one-hot rows', () => {
    const s = own(tf.tensor2d([[1e4, -1e4, 0]]));
    const t = own(tf.tensor2d([[-1e4, 1e4, 0]]));
    for (const beta of [0.1, 0.5, 0.9]) {
      const v = value(s, t, { kind: 'jsd', temperature: 2, beta });
      expect(v).toBeLessThanOrEqual(-Math.log(Math.min(beta, 1 - beta)) * 4 * (1 + 1e-6));
      expect(v).toBeGreaterThan(0);
    }
    close(value(s, t, { kind: 'tvd', temperature: 2 }), 4);
  });

  test.each(DIVERGENCES)('%s: the T² factor is applied exactly when scaleByTemperatureSquared (default true)', (kind) => {
    const s = logits([3, 6], 40);
    const t = logits([3, 6], 41);
    const scaled = value(s, t, { kind, temperature: 5 });
    close(scaled, 25 * value(s, t, { kind, temperature: 5, scaleByTemperatureSquared: false }));
  });

  test.each(DIVERGENCES)('%s: logits of ±1e4 at T = 0.05 and T = 100 give a finite loss and finite gradients', (kind) => {
    const s = own(tf.tensor2d([[1e4, -1e4, 0, 5e3], [-1e4, -1e4, -1e4, -1e4]]));
    const t = own(tf.tensor2d([[-1e4, 1e4, 1, 9999], [1e4, -1e4, 3, -2]]));
    for (const temperature of [0.05, 100]) {
      expect(Number.isFinite(value(s, t, { kind, temperature }))).toBe(true);
      for (const g of gradient(s, t, { kind, temperature })) expect(Number.isFinite(g)).toBe(true);
    }
  });

  test('tvd × T² makes the gradient grow with T; kl × T² keeps it level (docs/losses.md)', () => {
    const s = logits([8, 10], 50, 2);
    const t = logits([8, 10], 51, 2);
    const norm = (kind: DistillationKind, temperature: number) =>
      Math.sqrt(gradient(s, t, { kind, temperature }).reduce((acc, g) => acc + g * g, 0));
    const tvdRatio = norm('tvd', 40) / norm('tvd', 4);
    const klRatio = norm('kl', 40) / norm('kl', 4);
    // At high T, |p − q| ≈ |Δz|/(C·T): tvd ~ 1/T, × T² ~ T, so 10× the temperature gives ~10× the gradient.
    expect(tvdRatio).toBeGreaterThan(7);
    expect(tvdRatio).toBeLessThan(13);
    expect(klRatio).toBeGreaterThan(0.5);
    expect(klRatio).toBeLessThan(2);
  });

  test('a probability teacher (passed as log p) gives the same loss as its logits, for every divergence', () => {
    const s = logits([4, 6], 60);
    const t = logits([4, 6], 61);
    const logP = own(tf.tidy(() => tf.log(tf.maximum(tf.softmax(t), 1e-30))));
    for (const kind of DIVERGENCES) {
      for (const temperature of [1, 4]) {
        close(value(s, logP, { kind, temperature }), value(s, t, { kind, temperature }), 1e-5, 1e-6);
      }
    }
  });
});

describe('top-k', () => {
  test('keeps only the k largest teacher logits: other teacher logits do not matter', () => {
    const s = own(tf.tensor2d([[0.5, 1, -1, 2, 0]]));
    const t = own(tf.tensor2d([[5, 4, -3, 1, -2]]));
    const t2 = own(tf.tensor2d([[5, 4, -9, 0, -7]])); // same top 2 (classes 0 and 1, same logits)
    close(value(s, t, { temperature: 2, topK: 2 }), value(s, t2, { temperature: 2, topK: 2 }), 1e-6, 0);
    expect(Math.abs(value(s, t, { temperature: 2 }) - value(s, t2, { temperature: 2 }))).toBeGreaterThan(1e-3);
  });

  test('equals the formula: Σ over the k classes of p̃ (log p̃ − log q), × T²', () => {
    const s = [0.5, 1, -1, 2, 0];
    const t = [5, 4, -3, 1, -2];
    const temperature = 2;
    const logQ = (i: number) => s[i]! / temperature - Math.log(s.reduce((a, v) => a + Math.exp(v / temperature), 0));
    const top = [0, 1];
    const z = top.map((i) => t[i]! / temperature);
    const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    const expected = temperature ** 2 * top.reduce((acc, i, j) => acc + Math.exp(z[j]! - lse) * (z[j]! - lse - logQ(i)), 0);
    close(value(own(tf.tensor2d([s])), own(tf.tensor2d([t])), { temperature, topK: 2 }), expected);
  });

  test('the student mass outside the k classes is penalized (moving it inside lowers the loss)', () => {
    const t = own(tf.tensor2d([[3, 2, -5, -5, -5]]));
    const spread = own(tf.tensor2d([[3, 2, 2, 2, 2]]));
    const inside = own(tf.tensor2d([[3, 2, -5, -5, -5]]));
    expect(value(inside, t, { temperature: 1, topK: 2 })).toBeLessThan(value(spread, t, { temperature: 1, topK: 2 }));
  });

  test('teacher outputs given as top-k only ({ ids, logits } from topKLogits) give the same loss and gradient as topK', () => {
    const s = logits([3, 4, 50], 70);
    const t = logits([3, 4, 50], 71);
    const top = topKLogits(t, 5);
    own(top.ids);
    own(top.logits);
    expect(top.ids.dtype).toBe('int32');
    expect(top.ids.shape).toEqual([3, 4, 5]);
    const mask = own(tf.tensor2d([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]));
    const options: DistillationLossOptions = { temperature: 3, mask };
    expect(value(s, top, options)).toBe(value(s, t, { ...options, topK: 5 }));
    const a = gradient(s, top, options);
    const b = gradient(s, t, { ...options, topK: 5 });
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 7));
  });

  test('k = classes − 1 with a negligible left-out class equals the full kl', () => {
    const s = logits([3, 6], 80);
    const tValues = randomValues(18, 81);
    for (let r = 0; r < 3; r++) tValues[r * 6 + 5] = -1e4;
    const t = own(tf.tensor2d(tValues, [3, 6]));
    close(value(s, t, { temperature: 2, topK: 5 }), value(s, t, { temperature: 2 }), 1e-5, 1e-6);
  });
});

describe('token-level logits', () => {
  test('without a mask, equal-length examples: the mean over every token (same as the rows as a batch)', () => {
    const s = logits([3, 4, 7], 90);
    const t = logits([3, 4, 7], 91);
    for (const kind of [...DIVERGENCES, 'mse'] as DistillationKind[]) {
      const rows = value(own(tf.reshape(s, [12, 7])), own(tf.reshape(t, [12, 7])), { kind, temperature: 2 });
      close(value(s, t, { kind, temperature: 2 }), rows);
    }
  });

  test('mean of per-example means: each example counts once, whatever its length; masked tokens change nothing', () => {
    const sValues = randomValues(2 * 3 * 5, 100);
    const tValues = randomValues(2 * 3 * 5, 101);
    const s = own(tf.tensor3d(sValues, [2, 3, 5]));
    const t = own(tf.tensor3d(tValues, [2, 3, 5]));
    const mask = own(tf.tensor2d([[1, 1, 1], [1, 0, 0]], undefined, 'int32'));
    const perToken = (i: number) =>
      value(own(tf.tensor2d(sValues.slice(i * 5, i * 5 + 5), [1, 5])), own(tf.tensor2d(tValues.slice(i * 5, i * 5 + 5), [1, 5])), {
        temperature: 2,
      });
    const expected = ((perToken(0) + perToken(1) + perToken(2)) / 3 + perToken(3)) / 2;
    close(value(s, t, { temperature: 2, mask }), expected);
    // Garbage at the masked tokens: same loss, zero gradient there.
    const noisy = sValues.slice();
    for (const i of [4, 5]) for (let c = 0; c < 5; c++) noisy[i * 5 + c] = 1e3 * (c - 2);
    const sNoisy = own(tf.tensor3d(noisy, [2, 3, 5]));
    close(value(sNoisy, t, { temperature: 2, mask }), expected);
    const g = gradient(sNoisy, t, { temperature: 2, mask });
    for (const i of [4, 5]) for (let c = 0; c < 5; c++) expect(Math.abs(g[i * 5 + c]!)).toBe(0);
    // A boolean mask is the same mask.
    const boolMask = own(tf.cast(mask, 'bool'));
    close(value(s, t, { temperature: 2, mask: boolMask }), expected, 1e-7, 0);
  });

  test('an example with no unmasked token drops out of the batch mean', () => {
    const s = logits([3, 2, 4], 110);
    const t = logits([3, 2, 4], 111);
    const mask = own(tf.tensor2d([[1, 1], [0, 0], [1, 0]]));
    const kept = own(tf.tensor2d([[1, 1], [1, 0]]));
    const s2 = own(tf.gather(s, [0, 2]));
    const t2 = own(tf.gather(t, [0, 2]));
    close(value(s, t, { temperature: 1, mask }), value(s2, t2, { temperature: 1, mask: kept }));
  });

  test('labels [batch, time]: the cross-entropy per token, same reduction; labels at masked tokens are ignored', () => {
    const s = logits([2, 3, 4], 120);
    const t = logits([2, 3, 4], 121);
    const mask = own(tf.tensor2d([[1, 1, 0], [1, 1, 1]]));
    const labels = own(tf.tensor2d([[0, 3, -100], [2, 2, 1]], undefined, 'int32'));
    const ce = (row: number[], y: number) => {
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      return lse - row[y]!;
    };
    const sv = Array.from(s.dataSync());
    const rowOf = (i: number) => sv.slice(i * 4, i * 4 + 4);
    const expectedCe = ((ce(rowOf(0), 0) + ce(rowOf(1), 3)) / 2 + (ce(rowOf(3), 2) + ce(rowOf(4), 2) + ce(rowOf(5), 1)) / 3) / 2;
    close(value(s, t, { temperature: 2, alpha: 1, labels, mask }), expectedCe);
    const oneHot = own(tf.oneHot(own(tf.tensor2d([[0, 3, 0], [2, 2, 1]], undefined, 'int32')), 4));
    close(value(s, t, { temperature: 2, alpha: 1, labels: oneHot, mask }), expectedCe);
  });
});

describe('validate: false', () => {
  test('gives the same values for every kind, top-k outputs and token level, and still checks shapes', () => {
    const s = logits([2, 3, 6], 130);
    const t = logits([2, 3, 6], 131);
    const mask = own(tf.tensor2d([[1, 1, 0], [1, 0, 0]]));
    const labels = own(tf.tensor2d([[1, 2, -100], [3, -100, -100]], undefined, 'int32'));
    const top = topKLogits(t, 2);
    own(top.ids);
    own(top.logits);
    const variants: Array<[tf.Tensor | TopKLogits, DistillationLossOptions]> = [
      ...DIVERGENCES.map((kind): [tf.Tensor, DistillationLossOptions] => [t, { kind, temperature: 2, mask, labels, alpha: 0.3 }]),
      [top, { temperature: 2, mask }],
    ];
    for (const [teacher, options] of variants) {
      expect(value(s, teacher, { ...options, validate: false })).toBe(value(s, teacher, options));
    }
    const wrongMask = own(tf.ones([2, 4]));
    expectKdError(() => distillationLoss(s, t, { temperature: 2, mask: wrongMask, validate: false }), KdShapeError, 'BATCH_SIZE_MISMATCH');
  });
});

// ---------------------------------------------------------------------------
// typed errors
// ---------------------------------------------------------------------------

type ErrorClass = typeof KdConfigError | typeof KdShapeError | typeof KdDataError;

function expectKdError(fn: () => unknown, cls: ErrorClass, code: KdErrorCode, message?: RegExp): void {
  const before = tf.memory().numTensors;
  let caught: unknown;
  try {
    const result = fn();
    if (result instanceof tf.Tensor) result.dispose();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${cls.name} ${code}`).toBeInstanceOf(cls);
  expect(caught).toBeInstanceOf(KdError);
  expect((caught as KdError).code).toBe(code);
  if (message !== undefined) expect((caught as KdError).message).toMatch(message);
  expect(tf.memory().numTensors, 'tensors leaked on the error path').toBe(before);
}

describe('typed errors', () => {
  test.each([-0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 'half' as unknown as number])('INVALID_BETA: beta = %s', (beta) => {
    const s = logits([2, 3], 200);
    const t = logits([2, 3], 201);
    expectKdError(() => distillationLoss(s, t, { kind: 'jsd', temperature: 2, beta }), KdConfigError, 'INVALID_BETA', /between 0 and 1/);
  });

  test("INVALID_BETA: beta 0 points to kind 'kl', beta 1 to kind 'reverse-kl'", () => {
    const s = logits([2, 3], 202);
    const t = logits([2, 3], 203);
    expectKdError(() => distillationLoss(s, t, { kind: 'jsd', temperature: 2, beta: 0 }), KdConfigError, 'INVALID_BETA', /kind: 'kl'/);
    expectKdError(() => distillationLoss(s, t, { kind: 'jsd', temperature: 2, beta: 1 }), KdConfigError, 'INVALID_BETA', /kind: 'reverse-kl'/);
  });

  test.each(['kl', 'reverse-kl', 'tvd', 'mse'] as DistillationKind[])("INVALID_BETA: beta with kind '%s'", (kind) => {
    const s = logits([2, 3], 204);
    const t = logits([2, 3], 205);
    expectKdError(() => distillationLoss(s, t, { kind, temperature: 2, beta: 0.5 }), KdConfigError, 'INVALID_BETA', /'jsd' only/);
  });

  test.each(['reverse-kl', 'jsd', 'tvd'] as DistillationKind[])('INVALID_TEMPERATURE: %s needs a temperature', (kind) => {
    const s = logits([2, 3], 206);
    const t = logits([2, 3], 207);
    expectKdError(() => distillationLoss(s, t, { kind }), KdConfigError, 'INVALID_TEMPERATURE');
    expectKdError(() => distillationLoss(s, t, { kind, temperature: 0 }), KdConfigError, 'INVALID_TEMPERATURE');
  });

  test('INVALID_OPTION: an unknown kind lists the five', () => {
    const s = logits([2, 3], 208);
    expectKdError(
      () => distillationLoss(s, s, { kind: 'js' as DistillationKind, temperature: 1 }),
      KdConfigError,
      'INVALID_OPTION',
      /'kl', 'reverse-kl', 'jsd', 'tvd', 'mse'/,
    );
  });

  test.each([0, -1, 2.5, Number.NaN, 10, 11])('INVALID_TOP_K: topK = %s with 10 classes', (topK) => {
    const s = logits([2, 10], 210);
    const t = logits([2, 10], 211);
    expectKdError(() => distillationLoss(s, t, { temperature: 2, topK }), KdConfigError, 'INVALID_TOP_K');
  });

  test.each(['reverse-kl', 'jsd', 'tvd', 'mse'] as DistillationKind[])("INVALID_TOP_K: topK with kind '%s' (kl only for now)", (kind) => {
    const s = logits([2, 10], 212);
    const t = logits([2, 10], 213);
    expectKdError(() => distillationLoss(s, t, { kind, temperature: 2, topK: 3 }), KdConfigError, 'INVALID_TOP_K', /kind 'kl' only/);
    const top = topKLogits(t, 3);
    own(top.ids);
    own(top.logits);
    expectKdError(() => distillationLoss(s, top, { kind, temperature: 2 }), KdConfigError, 'INVALID_TOP_K', /kind 'kl' only/);
  });

  test('INVALID_TOP_K: topKLogits with k ≥ classes or k < 1; topK that disagrees with the given top-k outputs', () => {
    const t = logits([2, 4], 214);
    expectKdError(() => topKLogits(t, 4), KdConfigError, 'INVALID_TOP_K');
    expectKdError(() => topKLogits(t, 0), KdConfigError, 'INVALID_TOP_K');
    const top = topKLogits(t, 2);
    own(top.ids);
    own(top.logits);
    expectKdError(() => distillationLoss(t, top, { temperature: 1, topK: 3 }), KdConfigError, 'INVALID_TOP_K', /set topK to 2/);
    // k ≥ classes given as top-k outputs.
    const s3 = logits([2, 2], 215);
    expectKdError(() => distillationLoss(s3, top, { temperature: 1 }), KdConfigError, 'INVALID_TOP_K');
  });

  test('INVALID_TOP_K_IDS: an id out of range, a repeated id, float ids', () => {
    const s = logits([2, 5], 216);
    const values = own(tf.tensor2d([[2, 1], [0.5, -1]]));
    const outOfRange = { ids: own(tf.tensor2d([[0, 1], [4, 5]], undefined, 'int32')), logits: values };
    const repeated = { ids: own(tf.tensor2d([[0, 1], [3, 3]], undefined, 'int32')), logits: values };
    const floats = { ids: own(tf.tensor2d([[0, 1], [3, 2]], undefined, 'float32')), logits: values };
    expectKdError(() => distillationLoss(s, outOfRange, { temperature: 1 }), KdDataError, 'INVALID_TOP_K_IDS', /\[0, 5\)/);
    expectKdError(() => distillationLoss(s, repeated, { temperature: 1 }), KdDataError, 'INVALID_TOP_K_IDS', /twice/);
    expectKdError(() => distillationLoss(s, floats, { temperature: 1 }), KdDataError, 'INVALID_TOP_K_IDS', /int32/);
  });

  test('top-k shapes: ids and logits that differ, a batch that differs, a rank that differs', () => {
    const s = logits([2, 5], 217);
    const ids = own(tf.tensor2d([[0, 1], [2, 3]], undefined, 'int32'));
    const threeLogits = logits([2, 3], 218);
    const s3 = logits([3, 5], 219);
    const twoLogits = logits([2, 2], 220);
    const ids1 = own(tf.tensor1d([0, 1], 'int32'));
    const logits1 = logits([2], 221);
    expectKdError(() => distillationLoss(s, { ids, logits: threeLogits }, { temperature: 1 }), KdShapeError, 'LENGTH_MISMATCH');
    expectKdError(() => distillationLoss(s3, { ids, logits: twoLogits }, { temperature: 1 }), KdShapeError, 'BATCH_SIZE_MISMATCH');
    expectKdError(() => distillationLoss(s, { ids: ids1, logits: logits1 }, { temperature: 1 }), KdShapeError, 'RANK_MISMATCH');
  });

  test('NON_FINITE_TEACHER_OUTPUT: NaN in top-k logits', () => {
    const s = logits([1, 5], 222);
    const bad = { ids: own(tf.tensor2d([[0, 1]], undefined, 'int32')), logits: own(tf.tensor2d([[1, Number.NaN]])) };
    expectKdError(() => distillationLoss(s, bad, { temperature: 1 }), KdDataError, 'NON_FINITE_TEACHER_OUTPUT');
  });

  test('token level: teacher of another rank or time length, a mask with rank-2 logits or of the wrong shape', () => {
    const s = logits([2, 3, 4], 230);
    const rank2 = logits([6, 4], 231);
    const longer = logits([2, 4, 4], 232);
    const wider = logits([2, 3, 5], 233);
    const flat = logits([2, 4], 234);
    const mask24 = own(tf.ones([2, 4]));
    expectKdError(() => distillationLoss(s, rank2, { temperature: 1 }), KdShapeError, 'RANK_MISMATCH');
    expectKdError(() => distillationLoss(s, longer, { temperature: 1 }), KdShapeError, 'BATCH_SIZE_MISMATCH');
    expectKdError(() => distillationLoss(s, wider, { temperature: 1 }), KdShapeError, 'CLASS_COUNT_MISMATCH');
    expectKdError(() => distillationLoss(flat, flat, { temperature: 1, mask: mask24 }), KdShapeError, 'RANK_MISMATCH', /sampleWeights/);
    expectKdError(() => distillationLoss(s, s, { temperature: 1, mask: mask24 }), KdShapeError, 'BATCH_SIZE_MISMATCH');
  });

  test('INVALID_MASK: entries other than 0/1, or every token masked', () => {
    const s = logits([2, 3, 4], 240);
    const half = own(tf.tensor2d([[1, 0.5, 0], [1, 1, 1]]));
    const none = own(tf.zeros([2, 3]));
    expectKdError(() => distillationLoss(s, s, { temperature: 1, mask: half }), KdDataError, 'INVALID_MASK', /0\.5/);
    expectKdError(() => distillationLoss(s, s, { temperature: 1, mask: none }), KdDataError, 'INVALID_MASK', /every token/);
  });

  test('token labels: wrong shape, wrong class count, out of range at an unmasked token', () => {
    const s = logits([2, 3, 4], 250);
    const mask = own(tf.tensor2d([[1, 1, 0], [1, 1, 1]]));
    const perExample = own(tf.tensor1d([0, 1], 'int32'));
    const fiveClasses = own(tf.zeros([2, 3, 5]));
    const outOfRange = own(tf.tensor2d([[0, 4, 1], [0, 1, 2]], undefined, 'int32'));
    const outOfRangeMasked = own(tf.tensor2d([[0, 1, 4], [0, 1, 2]], undefined, 'int32'));
    expectKdError(() => distillationLoss(s, s, { temperature: 1, alpha: 0.5, labels: perExample }), KdShapeError, 'BATCH_SIZE_MISMATCH');
    expectKdError(() => distillationLoss(s, s, { temperature: 1, alpha: 0.5, labels: fiveClasses }), KdShapeError, 'CLASS_COUNT_MISMATCH');
    expectKdError(() => distillationLoss(s, s, { temperature: 1, alpha: 0.5, mask, labels: outOfRange }), KdDataError, 'LABEL_OUT_OF_RANGE');
    // The same bad id at a masked token is ignored.
    expect(Number.isFinite(value(s, s, { temperature: 1, alpha: 0.5, mask, labels: outOfRangeMasked }))).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// tensor hygiene
// ---------------------------------------------------------------------------

describe('no tensor leaks', () => {
  test('every kind, top-k and token level: 40 losses and 40 gradients leave numTensors at the baseline', () => {
    const s = logits([2, 3, 12], 300);
    const t = logits([2, 3, 12], 301);
    const mask = own(tf.tensor2d([[1, 1, 0], [1, 0, 0]]));
    const labels = own(tf.tensor2d([[1, 2, 0], [3, 0, 0]], undefined, 'int32'));
    const weights = own(tf.tensor1d([1, 2]));
    const top = topKLogits(t, 4);
    own(top.ids);
    own(top.logits);
    const variants: Array<[tf.Tensor | TopKLogits, DistillationLossOptions]> = [
      [t, { kind: 'reverse-kl', temperature: 2 }],
      [t, { kind: 'jsd', temperature: 2, beta: 0.3, mask, labels, alpha: 0.5 }],
      [t, { kind: 'tvd', temperature: 4, sampleWeights: weights, mask }],
      [t, { kind: 'kl', temperature: 3, topK: 5, mask }],
      [top, { temperature: 2, mask, labels, alpha: 0.2 }],
    ];
    const before = tf.memory().numTensors;
    for (let i = 0; i < 40; i++) {
      const [teacher, options] = variants[i % variants.length]!;
      tf.dispose(distillationLoss(s, teacher, options));
      tf.dispose(tf.grad((x: tf.Tensor) => distillationLoss(x, teacher, options))(s));
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
