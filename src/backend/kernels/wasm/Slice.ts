/**
 * `Slice` for wasm that copies only the rows it returns, in place of the
 * stock kernel (tfjs-backend-wasm 4.22), which calls `readSync` on the whole
 * input: taking a 128-row batch of a `[20000, 784]` tensor cost ~300 ms.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { copyBox, delegate } from './copyBox.js';
import { WASM, type WasmBackend } from './heap.js';

/** Replaces the stock wasm `Slice`, which keeps string tensors. */
export const sliceConfig: KdKernelConfig = {
  kernelName: tf.Slice,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: slice,
};

function slice(args: KernelArgs<tf.SliceAttrs>, stock: tf.KernelFunc | undefined): tf.TensorInfo | tf.TensorInfo[] {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return delegate(tf.Slice, stock, args);
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs!.begin, args.attrs!.size) as [number[], number[]];
  return copyBox(args.backend as WasmBackend, x, begin, size, size);
}
