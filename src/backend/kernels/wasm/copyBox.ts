/**
 * What the fast `Slice`, `Unpack` and `SplitV` kernels share: a copy of one
 * box of a tensor that reads only that box, and the hand-back of string
 * tensors to the stock kernels.
 *
 * @packageDocumentation
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { WasmBackend } from './heap.js';

/** The stock kernel, for string tensors (kd-ts's kernels copy numbers only). */
export function delegate(name: string, stock: tf.KernelFunc | undefined, args: unknown): tf.TensorInfo | tf.TensorInfo[] {
  if (stock === undefined) throw new Error(`wasm ${name}: no stock kernel to delegate string tensors to`);
  return stock(args as Parameters<tf.KernelFunc>[0]);
}

/**
 * Copies the box `[begin, begin + size)` of `x` into a new tensor of shape
 * `outShape` (same element count), one contiguous run of the last axis at a time.
 */
export function copyBox(
  backend: WasmBackend,
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
  outShape: number[],
): tf.TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  const count = size.reduce((a, b) => a * b, 1);
  if (count === 0) return out;
  // Views taken after the allocation: growing the heap detaches older views.
  const source = backend.typedArrayFromHeap(x);
  const target = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    target[0] = source[0]!;
    return out;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1]! * x.shape[d + 1]!;
  // Merge trailing axes that are taken whole into the contiguous run.
  let runAxis = rank - 1;
  while (runAxis > 0 && begin[runAxis] === 0 && size[runAxis] === x.shape[runAxis]) runAxis--;
  const run = size.slice(runAxis).reduce((a, b) => a * b, 1);
  const index = new Array<number>(runAxis).fill(0);
  for (let written = 0; written < count; written += run) {
    let offset = begin[runAxis]! * strides[runAxis]!;
    for (let d = 0; d < runAxis; d++) offset += (begin[d]! + index[d]!) * strides[d]!;
    target.set(source.subarray(offset, offset + run), written);
    for (let d = runAxis - 1; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

export function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
