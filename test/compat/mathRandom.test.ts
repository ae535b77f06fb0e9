import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { mathRandomPatch, withMathRandom } from '../../src/compat/mathRandom.js';
import { KdBackendError } from '../../src/errors.js';

/** A deterministic generator: 0.1, 0.2, ... 0.9, 0.1, ... */
function counter(): () => number {
  let i = 0;
  return () => ((i++ % 9) + 1) / 10;
}

describe('compat: Math.random (read by tfjs-core to seed unseeded random ops)', () => {
  it('makes tfjs\'s unseeded random ops and initializers repeat', () => {
    const draw = () =>
      tf.tidy(() => [
        Array.from(tf.randomUniform([4]).dataSync()),
        Array.from(tf.randomNormal([4]).dataSync()),
        Array.from(tfl.initializers.glorotUniform({}).apply([3, 3]).dataSync()),
      ]);
    const first = withMathRandom(counter(), draw);
    expect(withMathRandom(counter(), draw)).toEqual(first);
    // Unpatched, tfjs draws fresh seeds.
    expect(draw()).not.toEqual(first);
  });

  it('puts Math.random back after a return, a throw and a settled promise', async () => {
    const original = Math.random;
    const random = counter();
    expect(withMathRandom(random, () => Math.random())).toBe(0.1);
    expect(Math.random).toBe(original);
    expect(() => withMathRandom(random, () => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(Math.random).toBe(original);
    const pending = withMathRandom(random, async () => {
      await Promise.resolve();
      return Math.random();
    });
    expect(Math.random).toBe(random);
    expect(await pending).toBe(0.2);
    expect(Math.random).toBe(original);
  });

  it('leaves a replacement made by someone else in place', () => {
    const original = Math.random;
    const other = () => 0.5;
    try {
      withMathRandom(counter(), () => {
        Math.random = other;
      });
      expect(Math.random).toBe(other);
    } finally {
      Math.random = original;
    }
  });

  it('checks that Math.random can be replaced', () => {
    expect(() => mathRandomPatch.check()).not.toThrow();
    const descriptor = Object.getOwnPropertyDescriptor(Math, 'random')!;
    Object.defineProperty(Math, 'random', { ...descriptor, writable: false });
    try {
      expect(() => mathRandomPatch.check()).toThrow(KdBackendError);
      expect(() => mathRandomPatch.check()).toThrow(/Math\.random .* is not a writable function/);
    } finally {
      Object.defineProperty(Math, 'random', descriptor);
    }
    expect(() => mathRandomPatch.check()).not.toThrow();
  });
});
