import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';
import { registerCpuTrainingKernels } from './cpuTrainingKernels.js';
import { enableWasmTraining } from './wasm.js';

/** Backends kd-ts knows how to rank for training. */
export type TrainingBackendName = 'tensorflow' | 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** The outcome of {@link pickTrainingBackend}: what is active now, and why. */
export interface BackendChoice {
  /** The backend now active (`tf.getBackend()`). */
  backend: string;
  /** One line per candidate considered, in order: why it was taken or skipped. */
  reasons: string[];
  /** Kernels kd-ts added to the chosen backend (wasm: training kernels and fast products; cpu: a one-pass Embedding gradient). */
  additions: string[];
}

/** Options of {@link pickTrainingBackend}. */
export interface PickBackendOptions {
  /**
   * Candidates in order of preference. Default: tfjs-node's `tensorflow`,
   * then `webgpu`, `webgl`, `wasm`, `cpu`; only registered backends are tried
   * (a backend is registered by importing its package).
   */
  prefer?: TrainingBackendName[];
  /** Add kd-ts's wasm training kernels and fast products when wasm is chosen (default true). */
  wasmAdditions?: boolean;
  /** Replace the cpu backend's Embedding gradient (`UnsortedSegmentSum`) with kd-ts's one-pass kernel when cpu is chosen (default true). */
  cpuAdditions?: boolean;
}

const DEFAULT_ORDER: TrainingBackendName[] = ['tensorflow', 'webgpu', 'webgl', 'wasm', 'cpu'];

/**
 * Activates the fastest registered tfjs backend that can train, and says why.
 *
 * Works in browsers and in Node alike: it only considers backends your app
 * registered by importing their packages. In Node, `pickNodeBackend` from
 * `kd-ts/node` also imports tfjs-node or the wasm backend when installed.
 * When wasm is chosen, {@link enableWasmTraining} adds the kernels stock
 * wasm lacks for training and the fast matrix products; when cpu is chosen,
 * {@link registerCpuTrainingKernels} replaces its Embedding gradient, which
 * takes minutes per step with a real vocabulary.
 *
 * @param options - See {@link PickBackendOptions}.
 * @returns The chosen backend, the reasons, and what was added.
 * @throws {@link KdBackendError} `BACKEND_UNAVAILABLE` when no candidate initializes.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-webgl';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { pickTrainingBackend } from 'kd-ts';
 *
 * const choice = await pickTrainingBackend();
 * console.log(choice.backend, choice.reasons.join('\n'));
 * ```
 */
export async function pickTrainingBackend(options: PickBackendOptions = {}): Promise<BackendChoice> {
  const reasons: string[] = [];
  for (const name of options.prefer ?? DEFAULT_ORDER) {
    if (tf.findBackendFactory(name) == null) {
      reasons.push(`${name}: skipped, not registered (import its package to make it available)`);
      continue;
    }
    let ok = false;
    try {
      ok = await tf.setBackend(name);
    } catch (error) {
      reasons.push(`${name}: failed to initialize (${(error as Error).message})`);
      continue;
    }
    if (!ok) {
      reasons.push(`${name}: failed to initialize`);
      continue;
    }
    const additions = backendAdditions(name, options);
    reasons.push(`${name}: chosen${additions.length > 0 ? ` (kd-ts added ${additions.join(', ')})` : ''}`);
    return { backend: tf.getBackend(), reasons, additions };
  }
  throw new KdBackendError(
    'BACKEND_UNAVAILABLE',
    `no tfjs backend could be started (${reasons.join('; ')}): import one, e.g. @tensorflow/tfjs-backend-wasm or -cpu`,
  );
}

function backendAdditions(name: TrainingBackendName, options: PickBackendOptions): string[] {
  if (name === 'wasm' && options.wasmAdditions !== false) return enableWasmTraining();
  if (name === 'cpu' && options.cpuAdditions !== false) return registerCpuTrainingKernels().map((kernel) => `${kernel} (fast)`);
  return [];
}
