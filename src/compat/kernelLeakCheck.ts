/**
 * Patch: tfjs-core's test-mode kernel leak check, switched off around one call.
 *
 * With the environment flag `IS_TEST` on (test suites turn it on), tfjs's
 * engine counts the backend's data ids around every kernel and custom op and
 * throws "has an internal memory leak" when an op leaves more than its
 * outputs (`Engine.shouldCheckForMemLeaks`, `Engine.checkKernelForMemLeak`).
 * A `tf.customGrad` op that saves activations for its backward pass, as
 * FastLSTM's sequence op does, leaves them on purpose (the engine frees them
 * with the tape). The flag is global: it is set back to on afterwards, even
 * when the call throws. Training-loop leak tests (numTensors, numDataIds)
 * still see everything.
 *
 * Checked against tfjs-core 4.22.0 (installed): source read
 * (`dist/engine.js`), behaviour tested in test/compat/kernelLeakCheck.test.ts.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { ensureChecked, internalsChanged, type TfjsPatch } from './patch.js';

/** The patch, for {@link checkTfjsCompat}. */
export const kernelLeakCheckPatch: TfjsPatch = {
  id: 'core.IS_TEST',
  member: "the environment flag 'IS_TEST' and Engine.shouldCheckForMemLeaks / Engine.checkKernelForMemLeak",
  packageName: '@tensorflow/tfjs-core',
  installedVersion: () => tf.version_core,
  checkedAgainst: 'tfjs-core 4.22.0 (source read, behaviour tested)',
  reason: "FastLSTM turns IS_TEST off around its sequence op, whose saved activations the test-mode leak check counts as leaks",
  check() {
    try {
      tf.env().getBool('IS_TEST');
    } catch {
      throw internalsChanged(kernelLeakCheckPatch, "not a registered flag");
    }
    const engine = tf.engine() as unknown as Record<string, unknown>;
    for (const method of ['shouldCheckForMemLeaks', 'checkKernelForMemLeak']) {
      if (typeof engine[method] !== 'function') throw internalsChanged(kernelLeakCheckPatch, `missing Engine.${method} (${typeof engine[method]})`);
    }
  },
};

/**
 * Runs `fn` with tfjs's test-mode kernel leak check (`IS_TEST`) off, and
 * turns it back on afterwards when it was on.
 *
 * @param fn - Synchronous work, e.g. one call of a custom op that saves tensors for its gradient.
 * @returns What `fn` returns.
 * @throws {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) when the flag or the engine's check moved.
 */
export function withoutKernelLeakCheck<T>(fn: () => T): T {
  const env = tf.env();
  if (!env.getBool('IS_TEST')) return fn();
  ensureChecked(kernelLeakCheckPatch);
  env.set('IS_TEST', false);
  try {
    return fn();
  } finally {
    env.set('IS_TEST', true);
  }
}
