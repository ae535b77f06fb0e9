/**
 * `SplitV` (`tf.split`) for wasm that copies only each part it returns, in
 * place of the stock kernel (tfjs-backend-wasm 4.22), which copies the whole
 * input out of the heap per part. tfjs's LSTM splits its gates every step.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { copyBox, delegate, normalizeAxis } from './copyBox.js';
import { WASM, type WasmBackend } from './heap.js';

/** Replaces the stock wasm `SplitV`, which keeps string tensors. */
export const splitVConfig: KdKernelConfig = {
  kernelName: tf.SplitV,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: splitV,
};

function splitV(args: KernelArgs<tf.SplitVAttrs>, stock: tf.KernelFunc | undefined): tf.TensorInfo | tf.TensorInfo[] {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return delegate(tf.SplitV, stock, args);
  const axis = normalizeAxis(args.attrs!.axis, x.shape.length);
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, args.attrs!.numOrSizeSplits, axis);
  let offset = 0;
  return sizes.map((length) => {
    const begin = x.shape.map((_, d) => (d === axis ? offset : 0));
    const size = x.shape.map((dim, d) => (d === axis ? length : dim));
    offset += length;
    return copyBox(args.backend as WasmBackend, x, begin, size, size);
  });
}
