import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';
import { WASM } from './kernels/wasm/heap.js';
import { registerWasmFastMatMul } from './wasmFastMatMul.js';
import { registerWasmFastSlice } from './wasmSlice.js';
import { registerWasmTrainingKernels } from './wasmTrainingKernels.js';

/**
 * What {@link enableWasmTraining} registers, in order: each register function
 * and how its kernels are listed (replacements that only make a stock kernel
 * faster are marked `(fast)`).
 */
const WASM_ADDITIONS: ReadonlyArray<{ register: () => string[]; fast: boolean }> = [
  { register: registerWasmTrainingKernels, fast: false },
  { register: registerWasmFastMatMul, fast: true },
  { register: registerWasmFastSlice, fast: true },
];

/**
 * Makes tfjs's wasm backend fit for training, in one idempotent call: adds
 * the kernels stock wasm lacks for gradients (`UnsortedSegmentSum` for
 * Embedding, the Conv2D and depthwise back-propagation kernels, ...) and
 * routes every matrix product through XNNPACK's fast untransposed path
 * (stock wasm runs transposed and batched products in a scalar loop, ~13×
 * slower: every Dense layer's backward pass has two), and makes `Slice`,
 * `Unpack`, `SplitV` and `GatherV2` copy only what they return (stock wasm copies the
 * whole input out of the heap on every call).
 *
 * Call it after importing `@tensorflow/tfjs-backend-wasm`, before or after
 * `tf.setBackend('wasm')`. `pickTrainingBackend` calls it when it picks wasm.
 *
 * @returns The names of the kernels kd-ts provides on wasm; those that
 *   replace a stock kernel only to be faster end in ` (fast)`.
 * @throws {@link KdBackendError} `BACKEND_UNAVAILABLE` when the wasm backend's kernels are not registered.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { enableWasmTraining } from 'kd-ts';
 *
 * enableWasmTraining();
 * await tf.setBackend('wasm');
 * ```
 */
export function enableWasmTraining(): string[] {
  if (tf.getKernelsForBackend(WASM).length === 0) {
    throw new KdBackendError(
      'BACKEND_UNAVAILABLE',
      'the wasm backend is not registered: import @tensorflow/tfjs-backend-wasm before enableWasmTraining()',
    );
  }
  return WASM_ADDITIONS.flatMap(({ register, fast }) => register().map((name) => (fast ? `${name} (fast)` : name)));
}
