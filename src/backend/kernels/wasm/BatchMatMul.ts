/**
 * `BatchMatMul` for wasm with every product on XNNPACK's fast path, in place
 * of the stock kernel, which runs transposed and batched products in a scalar
 * loop about 13× slower (see `matMulProducts.ts`).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../../../errors.js';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { WASM } from './heap.js';
import { describeProduct, multiply } from './matMulProducts.js';
import { Scope, wasmBackend } from './matMulScope.js';

/** Replaces the stock wasm `BatchMatMul`, which it delegates to for what it does not take (other dtypes, odd broadcasts). */
export const batchMatMulConfig: KdKernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: fastBatchMatMul,
};

function fastBatchMatMul(args: KernelArgs<tf.BatchMatMulAttrs>, stock: tf.KernelFunc | undefined): tf.TensorInfo | tf.TensorInfo[] {
  const stockBatchMatMul = requireStock(stock, tf.BatchMatMul);
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs!;
  const geometry = describeProduct(a, b, transposeA, transposeB);
  if (geometry === undefined) return stockBatchMatMul(args as Parameters<tf.KernelFunc>[0]);
  const scope = new Scope(wasmBackend(args.backend), stockBatchMatMul);
  return scope.run(() => multiply(scope, geometry));
}

/** The stock kernel a fast product kernel delegates to; registerWasmFastMatMul makes sure there is one. */
export function requireStock(stock: tf.KernelFunc | undefined, kernelName: string): tf.KernelFunc {
  if (stock === undefined) {
    throw new KdBackendError(
      'BACKEND_UNAVAILABLE',
      `the wasm backend's ${kernelName} kernel is not registered: import '@tensorflow/tfjs-backend-wasm' before calling registerWasmFastMatMul()`,
    );
  }
  return stock;
}
