import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Distiller } from '../../src/index.js';
import { mlp, sameValues, toyData, weightValues } from '../distill/helpers.js';

describe('wasm backend smoke test', () => {
  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    // IS_TEST (set in test/setup.ts) turns on tfjs's per-kernel data-id check, which
    // wasm's fused matMul trips although it frees everything later (our numTensors check below stands).
    tf.env().set('IS_TEST', false);
    expect(await tf.setBackend('wasm')).toBe(true);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('distils an MLP on wasm without leaks', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const { x, y } = toyData(64);
    const student = mlp(6, 8, 3, 2);
    const distiller = new Distiller({ teacher: mlp(6, 16, 3, 1), student });
    distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 3, alpha: 0.3 });
    await distiller.fit(x, y, { epochs: 1, batchSize: 64 });
    const before = weightValues(student);
    const baseline = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    const history = await distiller.fit(x, y, { epochs: 5, batchSize: 16 });
    expect(tf.memory().numTensors).toBe(baseline);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    const loss = history.history.loss as number[];
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss[4]).toBeLessThan(loss[0]!);
    expect(sameValues(weightValues(student), before)).toBe(false);
    tf.dispose([x, y]);
  });
});
