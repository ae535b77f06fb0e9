/**
 * Patch: the global `Math.random`, swapped for a given generator during a
 * call (sync or async), so that tfjs's unseeded randomness repeats.
 *
 * tfjs-core seeds its generators from `Math.random()` when no seed is given
 * (`ops/rand_util.js`: `seed ? seed : Math.random()`, behind `randomUniform`,
 * `randomNormal`, `truncatedNormal`, hence every tfjs-layers initializer and
 * dropout mask without an explicit seed; `multinomial` too). Replacing
 * `Math.random` is the only way to seed them all at once. It is global:
 * anything else that calls `Math.random` meanwhile (concurrent work during an
 * async call included) draws from the same stream.
 *
 * Checked against tfjs-core and tfjs-layers 4.22.0 (installed): source read
 * (`dist/ops/rand_util.js`), behaviour tested in test/compat/mathRandom.test.ts.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { ensureChecked, internalsChanged, type TfjsPatch } from './patch.js';

/** The patch, for {@link checkTfjsCompat}. */
export const mathRandomPatch: TfjsPatch = {
  id: 'global.Math.random',
  member: 'Math.random (read by tfjs-core to seed unseeded random ops)',
  packageName: 'globalThis',
  installedVersion: () => `(tfjs-core ${tf.version_core})`,
  checkedAgainst: 'tfjs-core/tfjs-layers 4.22.0 (source read, behaviour tested)',
  reason: 'withSeed and the Distiller\'s `seed` make weight initializers and dropout repeat by seeding Math.random',
  check() {
    const descriptor = Object.getOwnPropertyDescriptor(Math, 'random');
    if (descriptor === undefined || typeof descriptor.value !== 'function' || descriptor.writable !== true) {
      throw internalsChanged(mathRandomPatch, 'not a writable function (frozen by a hardened environment?)');
    }
  },
};

/**
 * Runs `fn` with `Math.random` replaced by `random`, and puts the original
 * back when `fn` returns, throws, or (for a promise) settles. If something
 * else replaced `Math.random` meanwhile, that replacement is left in place.
 *
 * @param random - A generator with `Math.random`'s contract.
 * @param fn - The work; a returned promise keeps `random` in place until it settles.
 * @returns What `fn` returns.
 * @throws {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) when `Math.random` cannot be replaced.
 */
export function withMathRandom<T>(random: () => number, fn: () => T): T {
  ensureChecked(mathRandomPatch);
  const original = Math.random;
  Math.random = random;
  const restore = () => {
    if (Math.random === random) Math.random = original;
  };
  let result: T;
  try {
    result = fn();
  } catch (error) {
    restore();
    throw error;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
