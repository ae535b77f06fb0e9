/**
 * Faster matrix products for training on tfjs's wasm backend: the
 * `BatchMatMul` and `_FusedMatMul` kernels of `kernels/wasm/`, which route
 * every product through XNNPACK's fast path.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';
import { registerKdKernels, restoreStockKernels, type KdKernelConfig } from './kernels/registry.js';
import { batchMatMulConfig } from './kernels/wasm/BatchMatMul.js';
import { WASM } from './kernels/wasm/heap.js';
import { fusedMatMulConfig } from './kernels/wasm/_FusedMatMul.js';

/** What {@link registerWasmFastMatMul} registers, in place of the stock kernels. */
export const WASM_FAST_MATMUL_KERNELS: readonly KdKernelConfig[] = [batchMatMulConfig, fusedMatMulConfig];

/**
 * Replaces the wasm backend's `BatchMatMul` and `_FusedMatMul` kernels with
 * versions that route every product through XNNPACK's fast path.
 *
 * Results are those of the stock kernels up to float32 rounding (the sums run
 * in a different order). Transposed 2-D products, such as the two products of
 * every Dense layer's backward pass, run about 10× faster; a training step of
 * an MLP several times faster (see `bench/matmul.ts`). Batched products
 * (`[b, m, k]·[k, n]`, `[k, m]ᵀ·[b, k, n]`, equal batches) become one or a few
 * 2-D products. `_FusedMatMul` keeps its semantics (those of the cpu
 * backend), including cases the stock wasm kernel rejects or gets wrong: a
 * bias of any broadcastable shape, PReLU weights broadcast along other than
 * the trailing axes, and transposed or batched products with a bias or a
 * relu/relu6 (see the notes at the end of `kernels/wasm/matMulProducts.ts`).
 *
 * Call it once, after importing `@tensorflow/tfjs-backend-wasm`, before or
 * after `tf.setBackend('wasm')`. Calling it again does nothing. Other
 * backends are not touched.
 *
 * @returns The kernels now served by kd-ts: `['BatchMatMul', '_FusedMatMul']`.
 * @throws {@link KdBackendError} (`BACKEND_UNAVAILABLE`) when the wasm
 *   backend's kernels are not registered: import `@tensorflow/tfjs-backend-wasm` first.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { registerWasmFastMatMul } from 'kd-ts/backend';
 *
 * registerWasmFastMatMul();
 * await tf.setBackend('wasm');
 * const x = tf.randomNormal([128, 784]);
 * const dy = tf.randomNormal([128, 800]);
 * const dW = tf.matMul(x, dy, true, false); // xᵀ·dy, now on XNNPACK
 * console.log(dW.shape); // [784, 800]
 * ```
 */
export function registerWasmFastMatMul(): string[] {
  // The fast kernels delegate to the stock ones and compose Transpose.
  const needed = [...WASM_FAST_MATMUL_KERNELS.map((kernel) => kernel.kernelName), tf.Transpose];
  if (needed.some((kernelName) => tf.getKernel(kernelName, WASM) === undefined)) {
    throw new KdBackendError(
      'BACKEND_UNAVAILABLE',
      "the wasm backend's matMul kernels are not registered: import '@tensorflow/tfjs-backend-wasm' before calling registerWasmFastMatMul()",
    );
  }
  return registerKdKernels(WASM_FAST_MATMUL_KERNELS);
}

/**
 * Puts back the wasm backend's stock `BatchMatMul` and `_FusedMatMul`
 * kernels, undoing {@link registerWasmFastMatMul}; for benchmarks and tests
 * (internal: not on any public entry). Does nothing when the fast kernels are
 * not registered.
 */
export function unregisterWasmFastMatMul(): void {
  restoreStockKernels(WASM_FAST_MATMUL_KERNELS);
}
