/**
 * `Unpack` (`tf.unstack`) for wasm that copies only each slice it returns, in
 * place of the stock kernel (tfjs-backend-wasm 4.22), which copies the whole
 * input out of the heap per slice. tfjs's LSTM unstacks its input every step.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { copyBox, delegate, normalizeAxis } from './copyBox.js';
import { WASM, type WasmBackend } from './heap.js';

/** Replaces the stock wasm `Unpack`, which keeps string tensors. */
export const unpackConfig: KdKernelConfig = {
  kernelName: tf.Unpack,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: unpack,
};

function unpack(args: KernelArgs<tf.UnpackAttrs>, stock: tf.KernelFunc | undefined): tf.TensorInfo | tf.TensorInfo[] {
  const value = args.inputs.value as tf.TensorInfo;
  if (value.dtype === 'string') return delegate(tf.Unpack, stock, args);
  const axis = normalizeAxis(args.attrs!.axis, value.shape.length);
  const outShape = value.shape.filter((_, d) => d !== axis);
  const size = value.shape.map((dim, d) => (d === axis ? 1 : dim));
  return Array.from({ length: value.shape[axis]! }, (_, i) => {
    const begin = value.shape.map((_, d) => (d === axis ? i : 0));
    return copyBox(args.backend as WasmBackend, value, begin, size, outShape);
  });
}
