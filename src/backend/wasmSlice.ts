import { registerKdKernels, type KdKernelConfig } from './kernels/registry.js';
import { gatherV2Config } from './kernels/wasm/GatherV2.js';
import { sliceConfig } from './kernels/wasm/Slice.js';
import { splitVConfig } from './kernels/wasm/SplitV.js';
import { unpackConfig } from './kernels/wasm/Unpack.js';

/** What {@link registerWasmFastSlice} registers, in place of the stock kernels. */
export const WASM_FAST_SLICE_KERNELS: readonly KdKernelConfig[] = [sliceConfig, unpackConfig, splitVConfig, gatherV2Config];

/**
 * Replaces wasm's `Slice`, `Unpack`, `SplitV` and `GatherV2` kernels with
 * copies that read only the rows they return (`GatherV2`: whole rows at a
 * time, where the stock kernel computes an index per element, ~30× slower for
 * an Embedding lookup). The stock kernels (tfjs-backend-wasm 4.22) call
 * `readSync` on the whole input, which copies all of it out of the wasm heap
 * on every call: taking a 128-row batch of a `[20000, 784]` tensor cost
 * ~300 ms, and tfjs's LSTM, which unstacks its input and splits its gates
 * every time step, spent almost half its step in those copies
 * (docs/benchmarks.md). String tensors go to the stock kernels.
 *
 * Idempotent; `enableWasmTraining` calls it.
 *
 * @returns The kernel names now served by kd-ts.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { registerWasmFastSlice } from 'kd-ts/backend';
 *
 * registerWasmFastSlice();
 * await tf.setBackend('wasm');
 * const batch = tf.slice(tf.zeros([20000, 784]), [0, 0], [128, -1]); // copies 128 rows, not 20,000
 * ```
 */
export function registerWasmFastSlice(): string[] {
  return registerKdKernels(WASM_FAST_SLICE_KERNELS);
}
