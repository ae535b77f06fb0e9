/**
 * A training kernel for tfjs's cpu backend: `UnsortedSegmentSum` (the
 * gradient of Gather, hence of every Embedding layer) in one pass.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';

/**
 * Replaces tfjs-backend-cpu's `UnsortedSegmentSum` with a one-pass version.
 *
 * The stock kernel (tfjs 4.22) loops over the segments and, for each, masks
 * every row of the input and sums them: O(segments · rows · features). As the
 * gradient of an Embedding, segments are the vocabulary, so one training step
 * of a 15,000-word, 300-wide embedding on a batch of 50 × 20 tokens does
 * 15,000 passes over 1,000 × 300 values, and takes minutes. This kernel adds
 * each row once into its segment: O(rows · features + output).
 *
 * Same results as the stock kernel, bit for bit, on finite float32 inputs
 * with 1-D segment ids (the gradient's case): both add a segment's rows in
 * row order, and ids outside [0, numSegments) are dropped. Differences: a NaN
 * or ±∞ in one row reaches only its own segment (the stock kernel multiplies
 * every row by a 0/1 mask, and 0 · ∞ spreads NaN to all segments), and
 * `numSegments: 0` gives an empty tensor (the stock kernel throws). Inputs it
 * does not take, left to the stock kernel unchanged: non-float32 `x` (the
 * stock kernel returns float32 for int32 and bool), and segment ids of rank
 * above 1.
 *
 * Idempotent. Call it after importing `@tensorflow/tfjs-backend-cpu`;
 * {@link pickTrainingBackend} calls it when it picks cpu.
 *
 * @returns The kernels kd-ts provides on cpu: `['UnsortedSegmentSum']`.
 * @throws {@link KdBackendError} `BACKEND_UNAVAILABLE` when the cpu backend's kernels are not registered.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-cpu';
 * import { registerCpuTrainingKernels } from 'kd-ts';
 *
 * registerCpuTrainingKernels();
 * await tf.setBackend('cpu');
 * // Embedding students now take milliseconds per gradient, not minutes.
 * ```
 */
export function registerCpuTrainingKernels(): string[] {
  const existing = tf.getKernel(tf.UnsortedSegmentSum, CPU);
  if (existing === undefined) {
    throw new KdBackendError(
      'BACKEND_UNAVAILABLE',
      'the cpu backend is not registered: import @tensorflow/tfjs-backend-cpu before registerCpuTrainingKernels()',
    );
  }
  if (!isOurs(existing.kernelFunc)) {
    stockUnsortedSegmentSum = existing.kernelFunc;
    // Unregister first: registering over a kernel logs a warning.
    tf.unregisterKernel(tf.UnsortedSegmentSum, CPU);
    tf.registerKernel({ ...existing, kernelFunc: markAsOurs(unsortedSegmentSum as unknown as tf.KernelFunc) });
  }
  return [tf.UnsortedSegmentSum];
}

const CPU = 'cpu';

/** The stock kernel, for inputs this one hands back. */
let stockUnsortedSegmentSum: tf.KernelFunc | undefined;

/**
 * Marks kd-ts's kernelFunc under a global symbol, so that a second copy of
 * kd-ts in the same process (ESM next to CJS) sees it as registered.
 */
const KD_KERNEL = Symbol.for('kd-ts.cpuTrainingKernels.kernel');

function markAsOurs(kernelFunc: tf.KernelFunc): tf.KernelFunc {
  const marked = kernelFunc as tf.KernelFunc & { [KD_KERNEL]?: boolean };
  if (marked[KD_KERNEL] === undefined) Object.defineProperty(marked, KD_KERNEL, { value: true });
  return marked;
}

function isOurs(kernelFunc: tf.KernelFunc): boolean {
  return (kernelFunc as tf.KernelFunc & { [KD_KERNEL]?: boolean })[KD_KERNEL] === true;
}

/** What the kernel uses of tfjs-backend-cpu's `MathBackendCPU` (typed structurally: it is only a devDependency). */
interface CpuBackend {
  readSync(dataId: tf.DataId): tf.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): tf.TensorInfo;
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/**
 * out[s, ...] = Σ over rows i with segmentIds[i] = s of x[i, ...], in row
 * order; ids outside [0, numSegments) dropped. Touches each row once and each
 * segment that occurs once (a one-hot product would cost numSegments times more).
 */
function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const name = tf.UnsortedSegmentSum;
  const { x, segmentIds } = args.inputs;
  const numSegments = (args.attrs as unknown as tf.UnsortedSegmentSumAttrs | undefined)?.numSegments;
  if (x === undefined || segmentIds === undefined) {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: inputs x and segmentIds are required`);
  }
  if (x.dtype !== 'float32' || segmentIds.shape.length !== 1) {
    if (stockUnsortedSegmentSum === undefined) {
      throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name} on cpu (kd-ts): the stock kernel for this input is missing`);
    }
    return stockUnsortedSegmentSum(args as Parameters<tf.KernelFunc>[0]);
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
