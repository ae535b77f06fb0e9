import * as tf from '@tensorflow/tfjs-core';
import { replaceStockKernel, type KernelArgs, type WasmBackend } from './wasmTrainingKernels.js';

/**
 * Replaces wasm's `Slice`, `Unpack` and `SplitV` kernels with copies that read
 * only the rows they return. The stock kernels (tfjs-backend-wasm 4.22) call
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
 * import { registerWasmFastSlice } from 'kd-ts';
 *
 * registerWasmFastSlice();
 * await tf.setBackend('wasm');
 * const batch = tf.slice(tf.zeros([20000, 784]), [0, 0], [128, -1]); // copies 128 rows, not 20,000
 * ```
 */
export function registerWasmFastSlice(): string[] {
  replaceStockKernel('Slice', sliceKernel as never, (stock) => (stockKernels.Slice = stock));
  replaceStockKernel('Unpack', unpackKernel as never, (stock) => (stockKernels.Unpack = stock));
  replaceStockKernel('SplitV', splitVKernel as never, (stock) => (stockKernels.SplitV = stock));
  return ['Slice', 'Unpack', 'SplitV'];
}

const stockKernels: Partial<Record<'Slice' | 'Unpack' | 'SplitV', tf.KernelFunc>> = {};

function delegate(name: keyof typeof stockKernels, args: unknown): tf.TensorInfo | tf.TensorInfo[] {
  const stock = stockKernels[name] ?? tf.getKernel(name, 'wasm')?.kernelFunc;
  if (stock === undefined) throw new Error(`wasm ${name}: no stock kernel to delegate string tensors to`);
  return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo | tf.TensorInfo[];
}

function sliceKernel(args: KernelArgs<{ begin: number | number[]; size: number | number[] }>): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return delegate('Slice', args) as tf.TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs!.begin, args.attrs!.size) as [number[], number[]];
  return copyBox(args.backend as WasmBackend, x, begin, size, size);
}

function unpackKernel(args: KernelArgs<{ axis: number }>): tf.TensorInfo[] {
  const value = args.inputs.value as tf.TensorInfo;
  if (value.dtype === 'string') return delegate('Unpack', args) as tf.TensorInfo[];
  const axis = normalizeAxis(args.attrs!.axis, value.shape.length);
  const outShape = value.shape.filter((_, d) => d !== axis);
  const size = value.shape.map((dim, d) => (d === axis ? 1 : dim));
  return Array.from({ length: value.shape[axis]! }, (_, i) => {
    const begin = value.shape.map((_, d) => (d === axis ? i : 0));
    return copyBox(args.backend as WasmBackend, value, begin, size, outShape);
  });
}

function splitVKernel(args: KernelArgs<{ numOrSizeSplits: number | number[]; axis: number }>): tf.TensorInfo[] {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return delegate('SplitV', args) as tf.TensorInfo[];
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

/**
 * Copies the box `[begin, begin + size)` of `x` into a new tensor of shape
 * `outShape` (same element count), one contiguous run of the last axis at a time.
 */
function copyBox(
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

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
