/**
 * The same PyTorch float64 fixtures as divergences.fixtures.test.ts, on the
 * wasm backend (its own expm1, log1p, TopK and ScatterNd kernels): the loss to
 * 2e-5 relative and the gradient to 2e-4 of its largest entry.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { distillationLoss } from '../../src/index.js';
import { build, fixture, flat } from './divergenceFixture.js';

beforeAll(async () => {
  const require = createRequire(import.meta.url);
  setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  // IS_TEST's per-kernel data-id check trips on stock wasm's logSoftmax under a
  // gradient tape (as on its fused matMul, see test/backend/wasm.test.ts); the
  // numTensors check below stands.
  tf.env().set('IS_TEST', false);
  expect(await tf.setBackend('wasm')).toBe(true);
});
afterAll(async () => {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
});

describe.each(fixture.cases.map((c) => [c.name, c] as const))('wasm: %s', (_name, c) => {
  test('loss to 2e-5 relative, gradient to 2e-4 of its largest entry, no tensor left behind', () => {
    expect(tf.getBackend()).toBe('wasm');
    const { student, teacher, options, tensors } = build(c);
    const before = tf.memory().numTensors;
    try {
      const loss = distillationLoss(student, teacher, options);
      const actual = loss.dataSync()[0]!;
      loss.dispose();
      expect(Math.abs(actual - c.loss), `loss ${actual} vs ${c.loss}`).toBeLessThanOrEqual(2e-5 * Math.abs(c.loss));
      const grad = tf.grad((s: tf.Tensor) => distillationLoss(s, teacher, options))(student);
      const g = grad.dataSync();
      grad.dispose();
      const expected = flat(c.grad);
      const maxRef = Math.max(...expected.map(Math.abs));
      const rows = student.size / student.shape[student.rank - 1]!;
      const tol = Math.max(2e-4 * maxRef, (1e-7 * (c.kind === 'mse' ? 1 : c.temperature)) / rows);
      const worst = expected.reduce((w, e, i) => Math.max(w, Number.isNaN(g[i]!) ? Infinity : Math.abs(g[i]! - e)), 0);
      expect(worst).toBeLessThanOrEqual(tol);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose(tensors);
    }
  });
});
