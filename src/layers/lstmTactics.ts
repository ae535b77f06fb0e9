/**
 * FastLSTM's tactics: backend-dependent ways to run the same math, each
 * chosen by measurement (tfjs 4.22, batch 128, 150 units). The sequence op
 * (`lstmSequence.ts`) asks for the tactics of the active backend.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';

/** The choices the sequence op leaves to the backend. */
export interface Tactics {
  /**
   * Precompute x·W + b for all steps, one product per gate, and take each
   * step's rows: free views on cpu. On wasm a slice copies its input's whole
   * buffer (`readSync`), so taking 32 steps out of a [32, 128, 150] tensor
   * costs 32 copies of it: there each step multiplies [x_t, h] by [W; U].
   */
  precomputeInputs: boolean;
  /**
   * Sigmoid-gated sequences take the full-width path (`lstmFullWidth.ts`):
   * one [B, 4u] gate product and one Sigmoid per step, no Reverse. Fewer,
   * larger kernel calls: what wasm needs. On cpu, splitting a [B, 4u] tensor
   * copies element by element, slower than four separate products.
   */
  fullWidth: boolean;
  /**
   * Per-step masks as [B, u] tensors: cpu's broadcasting binary ops index
   * every element (~10× a same-shape op). wasm broadcasts [B, 1] cheaply and
   * pays for every slice, so keeps them small.
   */
  fullMasks: boolean;
  /**
   * The T slices [B, ...] of a time-major [T, B, ...] tensor: `unstack` (views
   * on cpu), or on wasm one `gather` per step, which copies only that step
   * (unstacking a [32, 128, 100] tensor there takes ~250 ms, 32 gathers ~20 ms).
   */
  timeSteps: (timeMajor: tf.Tensor) => tf.Tensor[];
  /** wasm's Tanh is a scalar loop, ~10× its vectorized Sigmoid: there tanh(x) = 2σ(2x) − 1. */
  tanh: (x: tf.Tensor) => tf.Tensor;
  /** aᵀ·b: wasm's transposed products take a scalar path (13× slower) while its Transpose is fast; cpu's are free. */
  transposedTimes: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
}

/** The tactics for `backend` (a tfjs backend name): wasm's, or those of cpu and the rest. */
export function tacticsFor(backend: string): Tactics {
  const wasm = backend === 'wasm';
  return {
    precomputeInputs: !wasm,
    fullWidth: wasm,
    fullMasks: !wasm,
    timeSteps: wasm
      ? (timeMajor) => Array.from({ length: timeMajor.shape[0]! }, (_, t) => tf.gather(timeMajor, t))
      : (timeMajor) => tf.unstack(timeMajor),
    tanh: wasm ? (x) => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) : (x) => tf.tanh(x),
    transposedTimes: wasm ? (a, b) => tf.matMul(tf.transpose(a), b) : (a, b) => tf.matMul(a, b, true, false),
  };
}
