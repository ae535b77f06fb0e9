/**
 * `UnsortedSegmentSum` for tfjs's cpu backend (the gradient of Gather, hence
 * of every Embedding layer) in one pass, in place of the stock kernel, which
 * masks every row once per segment: O(segments · rows · features).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../../../errors.js';
import type { KdKernelConfig, KernelArgs } from '../registry.js';

/** Replaces the stock cpu `UnsortedSegmentSum`, which takes the inputs this one hands back. */
export const unsortedSegmentSumConfig: KdKernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'cpu',
  mode: 'replace',
  kernelFunc: unsortedSegmentSum,
};

/** What the kernel uses of tfjs-backend-cpu's `MathBackendCPU` (typed structurally: it is only a devDependency). */
interface CpuBackend {
  readSync(dataId: tf.DataId): tf.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): tf.TensorInfo;
}

/**
 * out[s, ...] = Σ over rows i with segmentIds[i] = s of x[i, ...], in row
 * order; ids outside [0, numSegments) dropped. Touches each row once and each
 * segment that occurs once (a one-hot product would cost numSegments times more).
 */
function unsortedSegmentSum(
  args: KernelArgs<tf.UnsortedSegmentSumAttrs>,
  stock: tf.KernelFunc | undefined,
): tf.TensorInfo | tf.TensorInfo[] {
  const name = tf.UnsortedSegmentSum;
  const { x, segmentIds } = args.inputs;
  const numSegments = args.attrs?.numSegments;
  if (x === undefined || segmentIds === undefined) {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: inputs x and segmentIds are required`);
  }
  if (x.dtype !== 'float32' || segmentIds.shape.length !== 1) {
    if (stock === undefined) {
      throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name} on cpu (kd-ts): the stock kernel for this input is missing`);
    }
    return stock(args as Parameters<tf.KernelFunc>[0]);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  if (typeof numSegments !== 'number' || !Number.isInteger(numSegments) || numSegments < 0) {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: numSegments must be a non-negative integer, got ${String(numSegments)}`);
  }
  const rows = segmentIds.shape[0]!;
  if (x.shape.length < 1 || x.shape[0] !== rows) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${name}: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
    );
  }
  const backend = args.backend as CpuBackend;
  const innerShape = x.shape.slice(1);
  const inner = tf.util.sizeFromShape(innerShape);
  const values = backend.readSync(x.dataId) as Float32Array;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array;
  // Rows grouped by segment, in row order; each segment summed in float64 and
  // rounded once, as the stock kernel's Sum does (a float32 running sum would
  // round after every row and differ in the last bits).
  const rowsOf = new Map<number, number[]>();
  for (let i = 0; i < rows; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= numSegments) continue;
    const group = rowsOf.get(id);
    if (group === undefined) rowsOf.set(id, [i]);
    else group.push(i);
  }
  const sums = new Float32Array(numSegments * inner);
  const sum = new Float64Array(inner);
  for (const [id, group] of rowsOf) {
    sum.fill(0);
    for (const row of group) {
      const from = row * inner;
      for (let j = 0; j < inner; j++) sum[j]! += values[from + j]!;
    }
    sums.set(sum, id * inner);
  }
  return backend.makeTensorInfo([numSegments, ...innerShape], 'float32', sums);
}
