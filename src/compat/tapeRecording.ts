/**
 * Reliance: tfjs-core's `Engine.isTapeOn()`, read to know whether a custom op
 * runs under a gradient tape (inside `tf.grad`, `optimizer.minimize`...), so
 * that FastLSTM saves its activations for the backward pass only when one
 * will come. Nothing is patched; the method is public on the `Engine` class
 * that `tf.engine()` returns, but undocumented.
 *
 * Checked against tfjs-core 4.22.0 (installed): source read
 * (`dist/engine.js`: `gradientDepth > 0 && kernelDepth === 0`), behaviour
 * tested in test/compat/tapeRecording.test.ts.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { ensureChecked, internalsChanged, type TfjsPatch } from './patch.js';

/** The reliance, for {@link checkTfjsCompat}. */
export const tapeRecordingPatch: TfjsPatch = {
  id: 'core.Engine.isTapeOn',
  member: 'Engine.isTapeOn (tf.engine().isTapeOn())',
  packageName: '@tensorflow/tfjs-core',
  installedVersion: () => tf.version_core,
  checkedAgainst: 'tfjs-core 4.22.0 (source read, behaviour tested)',
  reason: 'FastLSTM saves its activations for back-propagation only when a gradient tape records',
  check() {
    const isTapeOn = (tf.engine() as unknown as Record<string, unknown>)['isTapeOn'];
    if (typeof isTapeOn !== 'function') throw internalsChanged(tapeRecordingPatch, typeof isTapeOn);
  },
};

/**
 * Whether tfjs records the ops run now on a gradient tape.
 *
 * @returns `true` inside `tf.grad`/`tf.variableGrads`/`optimizer.minimize` (outside kernels), else `false`.
 * @throws {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) when `Engine.isTapeOn` is gone.
 */
export function isTapeRecording(): boolean {
  ensureChecked(tapeRecordingPatch);
  return tf.engine().isTapeOn();
}
