/**
 * A training kernel for tfjs's cpu backend: `UnsortedSegmentSum` (the
 * gradient of Gather, hence of every Embedding layer) in one pass
 * (`kernels/cpu/UnsortedSegmentSum.ts`).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';
import { registerKdKernels, type KdKernelConfig } from './kernels/registry.js';
import { unsortedSegmentSumConfig } from './kernels/cpu/UnsortedSegmentSum.js';

/** What {@link registerCpuTrainingKernels} registers, in place of the stock kernels. */
export const CPU_TRAINING_KERNELS: readonly KdKernelConfig[] = [unsortedSegmentSumConfig];

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
 * import { registerCpuTrainingKernels } from 'kd-ts/backend';
 *
 * registerCpuTrainingKernels();
 * await tf.setBackend('cpu');
 * // Embedding students now take milliseconds per gradient, not minutes.
 * ```
 */
export function registerCpuTrainingKernels(): string[] {
  if (CPU_TRAINING_KERNELS.some(({ kernelName, backendName }) => tf.getKernel(kernelName, backendName) === undefined)) {
    throw new KdBackendError(
      'BACKEND_UNAVAILABLE',
      'the cpu backend is not registered: import @tensorflow/tfjs-backend-cpu before registerCpuTrainingKernels()',
    );
  }
  return registerKdKernels(CPU_TRAINING_KERNELS);
}
