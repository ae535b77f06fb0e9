/**
 * Feature losses (mse, cosine, attention transfer) against float64 PyTorch
 * references (fixtures/features.json, made by fixtures/make_feature_fixtures.py):
 * values to 2e-5 relative, gradients to 2e-4 of their largest entry; and their
 * typed errors.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; tfjs-layers registers them.
import '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { attentionTransferLoss, featureLoss, type FeatureLossKind } from '../../src/losses/index.js';
import type { KdError } from '../../src/errors.js';

type Nested = number | Nested[];
interface Case {
  name: string;
  kind: FeatureLossKind;
  student: string;
  teacher: string;
  mask: string | null;
  value: number;
  grad: Nested;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/features.json', import.meta.url), 'utf8')) as {
  inputs: Record<string, Nested>;
  cases: Case[];
};
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);
const tensor = (name: string) => tf.tensor(fixture.inputs[name] as number[]);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as KdError).code;
  }
  return undefined;
}

describe('fixture file', () => {
  test('covers every kind, rank 2 to 4, masks, zero vectors and maps, different channel counts', () => {
    const names = fixture.cases.map((c) => c.name);
    for (const n of ['mse-rank2', 'mse-rank3-masked', 'mse-rank4', 'cosine-rank3-masked', 'cosine-zero-vectors', 'attention', 'attention-zero-map']) {
      expect(names).toContain(n);
    }
  });
});

describe.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test('value to 2e-5 relative, gradient to 2e-4 of its largest entry', () => {
    const student = tensor(c.student);
    const teacher = tensor(c.teacher);
    const mask = c.mask === null ? undefined : tensor(c.mask);
    const before = tf.memory().numTensors;
    const { value, grad } = tf.valueAndGrad((s: tf.Tensor) => featureLoss(s, teacher, { kind: c.kind, mask }))(student);
    const actual = value.dataSync()[0]!;
    const g = Array.from(grad.dataSync());
    tf.dispose([value, grad]);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(actual - c.value), `${actual} vs ${c.value}`).toBeLessThanOrEqual(2e-5 * Math.abs(c.value));
    const expected = flat(c.grad);
    expect(g.length).toBe(expected.length);
    const largest = Math.max(...expected.map(Math.abs));
    expect(largest).toBeGreaterThan(0);
    const worst = Math.max(...g.map((v, i) => Math.abs(v - expected[i]!)));
    expect(worst, `worst gradient error ${worst} of ${largest}`).toBeLessThanOrEqual(2e-4 * largest);
    tf.dispose([student, teacher, ...(mask ? [mask] : [])]);
  });
});

describe('semantics', () => {
  test('equal features give 0 for every kind; a zero vector gives a finite cosine and gradient', () => {
    const x = tf.randomNormal([2, 3, 3, 4]);
    for (const kind of ['mse', 'cosine', 'attention'] as const) {
      expect(featureLoss(x, x, { kind }).dataSync()[0]).toBeCloseTo(0, 5);
    }
    const zero = tf.zeros([2, 4]);
    const { value, grad } = tf.valueAndGrad((s: tf.Tensor) => featureLoss(s, tf.ones([2, 4]), { kind: 'cosine' }))(zero);
    expect(value.dataSync()[0]).toBeCloseTo(1, 6);
    expect(Array.from(grad.dataSync()).every(Number.isFinite)).toBe(true);
  });

  test('masked positions do not count, whatever they hold', () => {
    const mask = tf.tensor2d([[1, 1, 0], [1, 0, 0]]);
    const s = tf.randomNormal([2, 3, 4]);
    const t = tf.randomNormal([2, 3, 4]);
    const garbage = tf.where(tf.tile(tf.cast(tf.expandDims(mask, -1), 'bool'), [1, 1, 4]), s, tf.fill([2, 3, 4], 1e3));
    for (const kind of ['mse', 'cosine'] as const) {
      const a = featureLoss(s, t, { kind, mask }).dataSync()[0]!;
      const b = featureLoss(garbage, t, { kind, mask }).dataSync()[0]!;
      expect(b).toBeCloseTo(a, 5);
    }
  });
});

describe('typed errors', () => {
  test('shapes that do not fit, masks, unknown kinds', () => {
    const a = tf.zeros([2, 4]);
    expect(codeOf(() => featureLoss(a, tf.zeros([2, 5])))).toBe('FEATURE_SHAPE_MISMATCH');
    expect(codeOf(() => featureLoss(a, tf.zeros([2, 4, 1]), { kind: 'cosine' }))).toBe('FEATURE_SHAPE_MISMATCH');
    expect(codeOf(() => featureLoss(tf.zeros([4]), tf.zeros([4])))).toBe('FEATURE_SHAPE_MISMATCH');
    expect(codeOf(() => attentionTransferLoss(tf.zeros([1, 4, 4, 2]), tf.zeros([1, 2, 2, 2])))).toBe('FEATURE_SHAPE_MISMATCH');
    expect(codeOf(() => featureLoss(a, a, { kind: 'attention' }))).toBe('FEATURE_SHAPE_MISMATCH');
    expect(codeOf(() => featureLoss(a, a, { kind: 'hint' as FeatureLossKind }))).toBe('INVALID_OPTION');
    const seq = tf.zeros([2, 3, 4]);
    expect(codeOf(() => featureLoss(seq, seq, { mask: tf.ones([2, 4]) }))).toBe('INVALID_MASK');
    expect(codeOf(() => featureLoss(a, a, { mask: tf.ones([2, 4]) }))).toBe('INVALID_MASK');
    const maps = tf.zeros([1, 2, 2, 2]);
    expect(codeOf(() => featureLoss(maps, maps, { kind: 'attention', mask: tf.ones([1, 2]) }))).toBe('INVALID_OPTION');
  });
});
