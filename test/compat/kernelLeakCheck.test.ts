import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients of tfjs-core's ops
import { describe, expect, it } from 'vitest';
import { kernelLeakCheckPatch, withoutKernelLeakCheck } from '../../src/compat/kernelLeakCheck.js';
import { KdBackendError } from '../../src/errors.js';

/** A custom op that keeps an intermediate tensor for its gradient, as FastLSTM's sequence op does. */
const expTimesTwo = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const hidden = tf.exp(x);
  save([hidden]);
  return { value: tf.mul(hidden, 2), gradFunc: (dy: tf.Tensor, [kept]: tf.Tensor[]) => tf.mul(dy, tf.mul(kept!, 2)) };
});

describe('compat: IS_TEST kernel leak check (tfjs-core)', () => {
  it('lets a custom op keep tensors for its gradient in test mode, and turns test mode back on', () => {
    expect(tf.env().getBool('IS_TEST')).toBe(true); // test/setup.ts
    const x = tf.tensor1d([0, 1]);
    // The leak check is real: without the patch the same gradient throws.
    expect(() => tf.tidy(() => tf.grad((v: tf.Tensor) => expTimesTwo(v))(x))).toThrow(/internal memory leak/);
    const gradient = tf.tidy(() => tf.grad((v: tf.Tensor) => withoutKernelLeakCheck(() => expTimesTwo(v)))(x));
    expect(Array.from(gradient.dataSync())).toEqual([2, Math.fround(2 * Math.E)]);
    expect(tf.env().getBool('IS_TEST')).toBe(true);
    tf.dispose([x, gradient]);
  });

  it('turns test mode back on when the call throws, and leaves it off when it was off', () => {
    expect(() =>
      withoutKernelLeakCheck(() => {
        expect(tf.env().getBool('IS_TEST')).toBe(false);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(tf.env().getBool('IS_TEST')).toBe(true);
    tf.env().set('IS_TEST', false);
    try {
      expect(withoutKernelLeakCheck(() => tf.env().getBool('IS_TEST'))).toBe(false);
      expect(tf.env().getBool('IS_TEST')).toBe(false);
    } finally {
      tf.env().set('IS_TEST', true);
    }
  });

  it('checks that the engine still has its leak check, naming the member and the version', () => {
    expect(() => kernelLeakCheckPatch.check()).not.toThrow();
    const engine = tf.engine();
    Object.defineProperty(engine, 'checkKernelForMemLeak', { value: undefined, configurable: true });
    try {
      const error = (() => {
        try {
          kernelLeakCheckPatch.check();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(KdBackendError);
      expect((error as KdBackendError).code).toBe('TFJS_INTERNALS_CHANGED');
      expect((error as Error).message).toContain('Engine.checkKernelForMemLeak');
      expect((error as Error).message).toContain(`@tensorflow/tfjs-core ${tf.version_core}`);
    } finally {
      delete (engine as unknown as Record<string, unknown>)['checkKernelForMemLeak'];
    }
    expect(() => kernelLeakCheckPatch.check()).not.toThrow();
  });
});
