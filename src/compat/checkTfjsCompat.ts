/**
 * Every patch of tfjs internals or global state kd-ts makes, in one list,
 * and one call that checks them all.
 *
 * @packageDocumentation
 */
import { kernelLeakCheckPatch } from './kernelLeakCheck.js';
import { layersModelTestFunctionPatch } from './layersModelTestFunction.js';
import { mathRandomPatch } from './mathRandom.js';
import { optimizerStatePatch } from './optimizerState.js';
import type { TfjsPatch } from './patch.js';
import { tapeRecordingPatch } from './tapeRecording.js';

/** kd-ts's patches of (and reliances on) tfjs internals, one file each in src/compat/. */
export const TFJS_PATCHES: readonly TfjsPatch[] = [
  kernelLeakCheckPatch,
  tapeRecordingPatch,
  layersModelTestFunctionPatch,
  mathRandomPatch,
  optimizerStatePatch,
];

/**
 * Checks that every tfjs member kd-ts patches or relies on is still there,
 * e.g. at an app's start or in CI after a tfjs upgrade. Each patch also runs
 * its own check on first use.
 *
 * @returns The patches checked, each with the versions it was checked against.
 * @throws {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) for the first patch
 *   whose member is gone, naming the member and the installed version.
 */
export function checkTfjsCompat(): readonly TfjsPatch[] {
  for (const patch of TFJS_PATCHES) patch.check();
  return TFJS_PATCHES;
}
