import { pickTrainingBackend, type BackendChoice, type TrainingBackendName } from '../backend/pickBackend.js';

/** Options of {@link pickNodeBackend}. */
export interface PickNodeBackendOptions {
  /** Candidates in order (default `tensorflow` (tfjs-node), `wasm`, `cpu`). */
  prefer?: TrainingBackendName[];
}

const PACKAGES: Partial<Record<TrainingBackendName, string>> = {
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

/**
 * Picks the fastest backend for training in Node: tfjs-node when the app has
 * it installed, else wasm with kd-ts's training additions, else cpu. Each
 * candidate's package is imported only if it is installed; kd-ts depends on
 * none of them.
 *
 * @param options - See {@link PickNodeBackendOptions}.
 * @returns What was chosen and why, one line per candidate.
 * @throws `KdBackendError` (`BACKEND_UNAVAILABLE`) when none can start.
 *
 * @example
 * ```ts
 * import { pickNodeBackend } from 'kd-ts/node';
 * const { backend, reasons } = await pickNodeBackend();
 * console.log(`training on ${backend}\n${reasons.join('\n')}`);
 * ```
 */
export async function pickNodeBackend(options: PickNodeBackendOptions = {}): Promise<BackendChoice> {
  const prefer = options.prefer ?? ['tensorflow', 'wasm', 'cpu'];
  const notes: string[] = [];
  for (const name of prefer) {
    const pkg = PACKAGES[name];
    if (pkg === undefined) continue;
    try {
      // A variable specifier: bundlers and tsc leave optional packages alone.
      await import(/* @vite-ignore */ pkg);
    } catch {
      notes.push(`${name}: ${pkg} is not installed${name === 'tensorflow' ? ' (optional: the fastest backend in Node)' : ''}`);
    }
  }
  const choice = await pickTrainingBackend({ prefer });
  return { ...choice, reasons: [...notes, ...choice.reasons] };
}
