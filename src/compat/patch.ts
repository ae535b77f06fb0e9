/**
 * The shape of a kd-ts patch of tfjs internals or global state: what it
 * touches, which tfjs versions it was checked against, and a check that the
 * touched member is still there. One file per patch in this folder; add a
 * new one to {@link TFJS_PATCHES} in `checkTfjsCompat.ts`.
 *
 * @packageDocumentation
 */
import { KdBackendError } from '../errors.js';

/** One reliance of kd-ts on a tfjs internal (or a global tfjs reads), described and checkable. */
export interface TfjsPatch {
  /** Stable short id, e.g. `'layers.makeTestFunction'`. */
  readonly id: string;
  /** The member patched or relied on, as named in tfjs's sources, e.g. `LayersModel.prototype.makeTestFunction`. */
  readonly member: string;
  /** The package that owns the member (`'@tensorflow/tfjs-core'`, `'@tensorflow/tfjs-layers'`, or `'globalThis'`). */
  readonly packageName: string;
  /** The installed version of that package, read at run time. */
  installedVersion(): string;
  /** The versions the patch was checked against, and how. */
  readonly checkedAgainst: string;
  /** Why kd-ts needs it. */
  readonly reason: string;
  /**
   * Throws a {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) naming the
   * member and the installed version when the member is gone or changed kind.
   */
  check(): void;
}

/**
 * The error a {@link TfjsPatch.check} throws.
 *
 * @param patch - The patch whose member changed.
 * @param found - What was found instead, e.g. `'undefined'`.
 * @returns The error, for the caller to throw.
 */
export function internalsChanged(patch: TfjsPatch, found: string): KdBackendError {
  return new KdBackendError(
    'TFJS_INTERNALS_CHANGED',
    `${patch.packageName} ${patch.installedVersion()}: ${patch.member} is ${found}, but kd-ts relies on it ` +
      `(${patch.reason}; checked against ${patch.checkedAgainst}): ` +
      `install a checked version of ${patch.packageName}, or report this to kd-ts`,
  );
}

const passed = new Set<string>();

/**
 * Runs `patch.check()` the first time a patch is used in this process; later
 * calls are free. A failed check is not remembered: it throws every time.
 *
 * @param patch - The patch about to be used.
 */
export function ensureChecked(patch: TfjsPatch): void {
  if (passed.has(patch.id)) return;
  patch.check();
  passed.add(patch.id);
}
