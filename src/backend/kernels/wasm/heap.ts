/**
 * What kd-ts's wasm kernels share: the wasm backend typed structurally (this
 * package never imports `@tensorflow/tfjs-backend-wasm`), heap buffers made,
 * copied and freed by hand, and the backend's own kernels run on them.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../../../errors.js';

export const WASM = 'wasm';

export type Shape4 = [number, number, number, number];

/**
 * Above this many float32 elements (16 MiB) the im2col matrix of
 * Conv2DBackpropFilter, and the product whose columns Conv2DBackpropInput adds
 * back into the image, are made in row blocks, so memory stays bounded for
 * large batches.
 */
export const MAX_IM2COL_ELEMENTS = 1 << 22;

/** What the kernels use of tfjs-backend-wasm's `BackendWasm` (typed structurally: it is only a devDependency). */
export interface WasmBackend {
  /** Allocates an uninitialized tensor on the wasm heap. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's heap memory; detached when the heap grows, so take it after the last allocation. */
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
  /** Decrements the reference count of a tensor's data and frees it at zero. */
  disposeData(dataId: tf.DataId): boolean;
}

/** Runs one of the wasm backend's own kernels; the caller disposes the result. */
export function runWasm(
  backend: WasmBackend,
  kernelName: string,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, WASM);
  if (kernel === undefined) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `kernel ${kernelName} is not registered for wasm: import @tensorflow/tfjs-backend-wasm before training on wasm`,
    );
  }
  return kernel.kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo;
}

export function keep(temps: tf.TensorInfo[], info: tf.TensorInfo): tf.TensorInfo {
  temps.push(info);
  return info;
}

export function copyOf(backend: WasmBackend, info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  const copy = backend.makeOutput(shape, info.dtype);
  backend.typedArrayFromHeap(copy).set(backend.typedArrayFromHeap(info));
  return copy;
}

/** A copy of elements `[from, to)` of a tensor, as a tensor of `shape`. */
export function rowsOf(backend: WasmBackend, info: tf.TensorInfo, from: number, to: number, shape: number[]): tf.TensorInfo {
  const copy = backend.makeOutput(shape, info.dtype);
  backend.typedArrayFromHeap(copy).set(backend.typedArrayFromHeap(info).subarray(from, to));
  return copy;
}

export function zeros(backend: WasmBackend, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  backend.typedArrayFromHeap(out).fill(0);
  return out;
}

export function asWasmBackend(backend: unknown, kernelName: string): WasmBackend {
  const candidate = backend as Partial<WasmBackend> | null;
  if (
    typeof candidate?.makeOutput !== 'function' ||
    typeof candidate.typedArrayFromHeap !== 'function' ||
    typeof candidate.disposeData !== 'function'
  ) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `kd-ts's ${kernelName} kernel runs on tfjs's wasm backend only, but got another backend: call tf.setBackend('wasm')`,
    );
  }
  return candidate as WasmBackend;
}
