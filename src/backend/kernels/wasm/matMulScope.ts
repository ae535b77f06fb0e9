/**
 * What the fast matrix-product kernels (`BatchMatMul.ts`, `_FusedMatMul.ts`)
 * share: the wasm backend's members they use, typed structurally, and the
 * {@link Scope} that owns the buffers of one kernel call.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../../../errors.js';
import type { KernelArgs } from '../registry.js';
import { WASM, type WasmBackend } from './heap.js';

/** What the wasm backend keeps per data id (`BackendWasm.dataIdMap` entries). */
export interface WasmTensorData {
  /** The id the C++ side knows the tensor by. */
  id: number;
  /** The shape the buffer was created with, which stock `_FusedMatMul` reads for its bias. */
  shape: number[];
}

/** The members of tfjs-backend-wasm's `BackendWasm` that the product kernels use. */
export interface WasmBackendWithData extends WasmBackend {
  dataIdMap: { get(dataId: tf.DataId): WasmTensorData | undefined };
}

export function wasmBackend(backend: unknown): WasmBackendWithData {
  const candidate = backend as Partial<WasmBackendWithData>;
  const isWasm =
    typeof candidate.makeOutput === 'function' &&
    typeof candidate.typedArrayFromHeap === 'function' &&
    candidate.dataIdMap !== undefined;
  if (!isWasm) {
    throw new KdBackendError('BACKEND_UNAVAILABLE', 'the fast wasm matMul kernels ran on a backend that is not tfjs-backend-wasm');
  }
  return backend as WasmBackendWithData;
}

/** Runs the wasm kernel registered under `name` (one kd-ts does not replace); the caller owns the result. */
export function runStock(name: string, args: KernelArgs): tf.TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (kernel === undefined) {
    throw new KdBackendError('BACKEND_UNAVAILABLE', `the wasm kernel ${name} is not registered: import '@tensorflow/tfjs-backend-wasm'`);
  }
  return kernel.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}

/**
 * Rows of each buffer handed to XNNPACK as right operand (see
 * {@link Scope.rightOperand}). XNNPACK's operator cache lives as long as the
 * backend, so this map does too.
 */
const rhsRows = new WeakMap<tf.DataId, number>();

/** The same buffer seen with another shape (no copy, no reference taken). */
export function view(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * The intermediate buffers of one kernel call. `run` frees them all when the
 * call ends, normally or by an exception, except the buffer of the result.
 * Helpers return buffers the scope does not own, unless they say otherwise.
 */
export class Scope {
  private owned: tf.TensorInfo[] = [];

  constructor(
    readonly backend: WasmBackendWithData,
    /** The stock `BatchMatMul`, which kd-ts's replaced (the registered one is ours and would recurse). */
    readonly stockBatchMatMul: tf.KernelFunc,
  ) {}

  /** The stock `BatchMatMul` (the registered one is ours and would recurse). */
  stockProduct(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): tf.TensorInfo {
    const args = { inputs: { a, b }, backend: this.backend, attrs: { transposeA, transposeB } };
    return this.stockBatchMatMul(args) as tf.TensorInfo;
  }

  /**
   * `rhs`, or a copy of it when its buffer went to XNNPACK before as a
   * matrix with another number of rows. The stock kernel caches XNNPACK's
   * operator (with `rhs` packed in it) by data id alone, and `tf.reshape`
   * keeps the data id: without the copy, the reshaped weights would be
   * multiplied with the operator packed for the old shape, giving wrong
   * values (and reading past the buffer).
   */
  rightOperand(rhs: tf.TensorInfo): tf.TensorInfo {
    const rows = rhs.shape[0]!;
    const seen = rhsRows.get(rhs.dataId);
    if (seen === undefined) rhsRows.set(rhs.dataId, rows);
    if (seen === undefined || seen === rows) return rhs;
    const copy = this.own(this.backend.makeOutput(rhs.shape, 'float32'));
    this.backend.typedArrayFromHeap(copy).set(this.backend.typedArrayFromHeap(rhs));
    return copy;
  }

  run(body: () => tf.TensorInfo, { keepResult = true } = {}): tf.TensorInfo {
    let result: tf.TensorInfo | undefined;
    try {
      result = body();
      return result;
    } finally {
      const keep = keepResult ? result?.dataId : undefined;
      for (const info of this.owned) if (info.dataId !== keep) this.backend.disposeData(info.dataId);
      this.owned.length = 0;
    }
  }

  own(info: tf.TensorInfo): tf.TensorInfo {
    this.owned.push(info);
    return info;
  }

  /** Hands `info`'s buffer over to the caller: the scope will not free it. */
  disown(info: tf.TensorInfo): tf.TensorInfo {
    this.owned = this.owned.filter((o) => o.dataId !== info.dataId);
    return info;
  }

  /**
   * Swaps the last two axes of `x` (rank 2 or 3), into a buffer the scope
   * owns. When one of the two has size 1 the memory order does not change,
   * and a view of `x` is returned.
   */
  transposeLastTwo(x: tf.TensorInfo): tf.TensorInfo {
    const shape = x.shape;
    const rank = shape.length;
    const [rows, cols] = shape.slice(-2) as [number, number];
    const outShape = [...shape.slice(0, -2), cols, rows];
    if (rows === 1 || cols === 1) return view(x, outShape);
    const perm = rank === 2 ? [1, 0] : [0, 2, 1];
    return this.own(runStock('Transpose', { inputs: { x }, backend: this.backend, attrs: { perm } }));
  }

  /** A copy, owned, of matrix `index` of a `[batch, rows, cols]` buffer (batch 1 broadcasts). */
  copyMatrix(x: tf.TensorInfo, index: number, rows: number, cols: number): tf.TensorInfo {
    const size = rows * cols;
    const source = tf.util.sizeFromShape(x.shape) === size ? 0 : index * size;
    const out = this.own(this.backend.makeOutput([rows, cols], 'float32'));
    // Typed arrays are taken after makeOutput: an allocation can grow (and replace) the wasm heap.
    const from = this.backend.typedArrayFromHeap(view(x, [tf.util.sizeFromShape(x.shape)]));
    this.backend.typedArrayFromHeap(out).set(from.subarray(source, source + size));
    return out;
  }
}

