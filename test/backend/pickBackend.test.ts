import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KdBackendError, pickTrainingBackend } from '../../src/index.js';
import { pickNodeBackend } from '../../src/node/index.js';

describe('backend pickers', () => {
  beforeAll(() => {
    // IS_TEST turns on a per-kernel data-id check that stock wasm's fused matMul trips (see wasm.test.ts).
    tf.env().set('IS_TEST', false);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('skips unregistered backends, takes wasm with kd-ts additions, and says why', async () => {
    const choice = await pickTrainingBackend({ prefer: ['webgpu', 'webgl', 'wasm', 'cpu'] });
    expect(choice.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.reasons[0]).toMatch(/^webgpu: skipped, not registered/);
    expect(choice.reasons[1]).toMatch(/^webgl: skipped, not registered/);
    expect(choice.reasons[2]).toMatch(/^wasm: chosen \(kd-ts added .*UnsortedSegmentSum/);
    expect(choice.additions).toContain('Conv2DBackpropFilter');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('honours the order of preference', async () => {
    const choice = await pickTrainingBackend({ prefer: ['cpu', 'wasm'] });
    expect(choice).toMatchObject({ backend: 'cpu', additions: ['UnsortedSegmentSum (fast)'] });
    expect(choice.reasons.at(-1)).toMatch(/cpu: chosen \(kd-ts added UnsortedSegmentSum \(fast\)\)/);
    expect((await pickTrainingBackend({ prefer: ['cpu'], cpuAdditions: false })).additions).toEqual([]);
  });

  it('throws a KdBackendError naming the fix when nothing can start', async () => {
    const error = await pickTrainingBackend({ prefer: ['webgpu', 'tensorflow'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KdBackendError);
    expect((error as KdBackendError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as Error).message).toMatch(/import one/);
  });

  it('in Node, notes that tfjs-node is absent and falls back to wasm', async () => {
    const choice = await pickNodeBackend();
    expect(choice.backend).toBe('wasm');
    expect(choice.reasons[0]).toBe('tensorflow: @tensorflow/tfjs-node is not installed (optional: the fastest backend in Node)');
  });
});
