/**
 * `UnsortedSegmentSum` for wasm, which tfjs-backend-wasm 4.22 lacks: the
 * gradient of Gather, hence of Embedding.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../../../errors.js';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { requireAttrs, requireInputs } from './checks.js';
import { asWasmBackend, WASM } from './heap.js';

/** Registered where wasm has no `UnsortedSegmentSum`. */
export const unsortedSegmentSumConfig: KdKernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: WASM,
  mode: 'add',
  kernelFunc: unsortedSegmentSum,
};

/**
 * out[s, ...] = Σ over i with segmentIds[i] = s of x[i, ...]; ids outside
 * [0, numSegments) are dropped, as on the cpu backend. One scatter-add pass in
 * JS (a one-hot product would cost numSegments times more).
 */
function unsortedSegmentSum(args: KernelArgs<tf.UnsortedSegmentSumAttrs>): tf.TensorInfo {
  const name = tf.UnsortedSegmentSum;
  const backend = asWasmBackend(args.backend, name);
  const { x, segmentIds } = requireInputs(args.inputs, ['x', 'segmentIds'], name);
  const { numSegments } = requireAttrs(args.attrs, name);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${name} on wasm (kd-ts) supports float32 and int32 x, got ${x.dtype}: cast x first`,
    );
  }
  if (segmentIds.dtype !== 'int32') {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  const idsRank = segmentIds.shape.length;
  if (!segmentIds.shape.every((size, axis) => size === x.shape[axis])) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${name}: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
    );
  }
  const innerShape = x.shape.slice(idsRank);
  const inner = tf.util.sizeFromShape(innerShape);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const sums = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const values = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  sums.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= numSegments) continue;
    const from = i * inner;
    const to = id * inner;
    for (let j = 0; j < inner; j++) sums[to + j] = sums[to + j]! + values[from + j]!;
  }
  return out;
}
