/**
 * FastLSTM's sequence op on wasm with sigmoid gates: the same math as
 * `lstmSequence.ts`, laid out for a backend where each kernel call costs
 * more than the arithmetic of a [128, 150] step.
 *
 * - x·W + b for all steps is one product, taken apart per step by the fast
 *   `Unpack` (kd-ts's wasm slices copy only the rows they return).
 * - One full-width product h·U [B, 4u] per step and one Sigmoid over all four
 *   gates: the cell gate's columns of W, U and b are doubled up front, so that
 *   σ(2z) gives tanh(z) = 2σ(2z) − 1 (wasm's Tanh is a scalar loop).
 * - `goBackwards` walks the steps from the end instead of reversing the
 *   input and the input gradient (wasm's Reverse copies element by element).
 * - The backward pass multiplies all four gate gradients by their slopes at
 *   once (σ' = a(1 − a); tanh' = 4a(1 − a) for the doubled cell gate).
 *
 * About 14 kernel calls per step forward and 16 backward, against about 25
 * and 25 in the general path. Semantics are those of `lstmSequence.ts`.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { withoutKernelLeakCheck } from '../compat/kernelLeakCheck.js';
import { isTapeRecording } from '../compat/tapeRecording.js';

/** The options the full-width path reads (sigmoid gates are implied). */
export interface FullWidthOptions {
  units: number;
  returnSequences: boolean;
  goBackwards: boolean;
}

/** Tensors one step keeps for the backward pass, in saved order. */
const STEP_KEYS = ['a', 'i', 'f', 'g', 'o', 'cellTanh', 'c', 'h'] as const;
type StepKey = (typeof STEP_KEYS)[number];
type Step = Record<StepKey, tf.Tensor>;

/**
 * Below this many elements, wasm's scalar Tanh costs less than the three
 * extra kernel calls of 2σ(2x) − 1 (batch 1 inference is call-bound).
 */
const SMALL_TANH = 1024;

/** tanh(x) = 2σ(2x) − 1 for large tensors: wasm's Sigmoid is vectorized, its Tanh is not. */
const tanhBySigmoid = (x: tf.Tensor) => (x.size <= SMALL_TANH ? tf.tanh(x) : tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1));

/**
 * The LSTM over a whole sequence as one differentiable op, sigmoid gates,
 * full-width gate products (see the file's notes). Inputs as `lstmSequence`.
 */
export function fullWidthSequence(
  x: tf.Tensor3D,
  kernel: tf.Tensor,
  recurrentKernel: tf.Tensor,
  bias: tf.Tensor | null,
  mask: tf.Tensor | null,
  options: FullWidthOptions,
): tf.Tensor {
  const [batch, steps, inputDim] = x.shape;
  const recording = isTapeRecording();
  let maskIndex = -1;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [input, w, u, b] = args as tf.Tensor[];
    const forward = runForward(input as tf.Tensor3D, w!, u!, bias === null ? null : b!, mask, options);
    if (recording) {
      const saved: tf.Tensor[] = [forward.inputs, w!, u!];
      if (forward.stepMask !== null) maskIndex = saved.push(forward.stepMask) - 1;
      for (const step of forward.steps) for (const key of STEP_KEYS) saved.push(step[key]);
      save(saved);
    }
    return {
      value: forward.value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        runBackward(dy, saved, { batch, steps, inputDim, maskIndex, hasBias: bias !== null }, options),
    };
  });
  const inputs = bias === null ? [x, kernel, recurrentKernel] : [x, kernel, recurrentKernel, bias];
  return withoutKernelLeakCheck(() => op(...inputs));
}

/** Step t of the processing order is time step `timeOf(t)` of the sequence. */
function timeOf(t: number, steps: number, goBackwards: boolean): number {
  return goBackwards ? steps - 1 - t : t;
}

/** [4u] column scales: 1 on the i, f, o gates, `cell` on the cell gate's columns. */
function gateScale(units: number, cell: number): tf.Tensor {
  const values = new Float32Array(4 * units).fill(1);
  values.fill(cell, 2 * units, 3 * units);
  return tf.tensor1d(values);
}

interface Forward {
  value: tf.Tensor;
  /** Inputs time-major in sequence order, [T·B, inputDim]. */
  inputs: tf.Tensor;
  /** [T, B, 1] 0/1 mask, time-major in sequence order, or null. */
  stepMask: tf.Tensor | null;
  /** Indexed by processing step. */
  steps: Step[];
}

function runForward(
  x: tf.Tensor3D,
  kernel: tf.Tensor,
  recurrentKernel: tf.Tensor,
  bias: tf.Tensor | null,
  mask: tf.Tensor | null,
  options: FullWidthOptions,
): Forward {
  const { units, goBackwards } = options;
  const [batch, steps, inputDim] = x.shape;
  const inputs = tf.reshape(tf.transpose(x, [1, 0, 2]), [steps * batch, inputDim]);
  const stepMask =
    mask === null ? null : tf.expandDims(tf.transpose(tf.reshape(tf.cast(tf.cast(mask, 'bool'), 'float32'), [batch, steps])), 2);
  const scale = gateScale(units, 2);
  const w = tf.mul(kernel, scale);
  let projected = tf.matMul(inputs, w);
  if (bias !== null) projected = tf.add(projected, tf.mul(bias, scale));
  const perStep = {
    projected: tf.unstack(tf.reshape(projected, [steps, batch, 4 * units])),
    recurrent: tf.mul(recurrentKernel, scale),
    keep: stepMask === null ? [] : tf.unstack(stepMask),
    drop: stepMask === null ? [] : tf.unstack(tf.sub(1, stepMask)),
  };
  tf.dispose([scale, w, projected]);
  const result: Step[] = [];
  let h: tf.Tensor | null = null;
  let c: tf.Tensor | null = null;
  for (let t = 0; t < steps; t++) {
    const time = timeOf(t, steps, goBackwards);
    const previousH = h;
    const previousC = c;
    const step: Step = tf.tidy(() => {
      const z = previousH === null ? perStep.projected[time]! : tf.add(perStep.projected[time]!, tf.matMul(previousH, perStep.recurrent));
      const a = tf.sigmoid(z);
      const [i, f, doubled, o] = tf.split(a, 4, 1) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const g = tf.sub(tf.mul(doubled, 2), 1);
      const cNew = previousC === null ? tf.mul(i, g) : tf.add(tf.mul(f, previousC), tf.mul(i, g));
      const cellTanh = tanhBySigmoid(cNew);
      const hNew = tf.mul(o, cellTanh);
      const keep = perStep.keep[time];
      const drop = perStep.drop[time];
      const carried = (next: tf.Tensor, previous: tf.Tensor | null) => {
        if (keep === undefined || drop === undefined) return next;
        return previous === null ? tf.mul(next, keep) : tf.add(tf.mul(next, keep), tf.mul(previous, drop));
      };
      return { a, i, f, g, o, cellTanh, c: carried(cNew, previousC), h: carried(hNew, previousH) };
    });
    h = step.h;
    c = step.c;
    result.push(step);
  }
  tf.dispose([perStep.projected, perStep.recurrent, perStep.keep, perStep.drop]);
  let value: tf.Tensor;
  if (options.returnSequences) {
    // Outputs in processing order, as tfjs's rnn() returns them.
    value = tf.stack(
      result.map((s) => s.h),
      1,
    );
  } else {
    value = tf.clone(result[steps - 1]!.h);
  }
  return { value, inputs, stepMask, steps: result };
}

interface Layout {
  batch: number;
  steps: number;
  inputDim: number;
  maskIndex: number;
  hasBias: boolean;
}

function runBackward(dy: tf.Tensor, saved: tf.Tensor[], layout: Layout, options: FullWidthOptions): tf.Tensor[] {
  return tf.tidy(() => {
    const { units, goBackwards, returnSequences } = options;
    const { batch, steps, inputDim } = layout;
    const [inputs, kernel, recurrentKernel] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
    const first = layout.maskIndex >= 0 ? 4 : 3;
    const step = (t: number): Step => {
      const at = first + t * STEP_KEYS.length;
      return Object.fromEntries(STEP_KEYS.map((key, k) => [key, saved[at + k]!])) as Step;
    };
    const stepMask = layout.maskIndex >= 0 ? saved[layout.maskIndex]! : null;
    const keeps = stepMask === null ? null : tf.unstack(stepMask);
    const drops = stepMask === null ? null : tf.unstack(tf.sub(1, stepMask));
    // σ' = a(1 − a) on i, f, o; tanh'(z) = 1 − g² = 4a(1 − a) on the doubled cell gate.
    const slopeScale = gateScale(units, 4);
    const recurrentT = tf.transpose(recurrentKernel);
    // dy of a sequence comes in processing order, [B, T, u].
    const outputGrads = returnSequences ? tf.unstack(dy, 1) : null;
    const zeros = tf.zeros([batch, units]);

    // Gradients of z by sequence time, and each step's h_{t-1} by sequence time, for dW and dU.
    const gateGrads = new Array<tf.Tensor>(steps);
    const previousOutputs = new Array<tf.Tensor>(steps);
    let dh: tf.Tensor | null = null;
    let dc: tf.Tensor | null = null;
    for (let t = steps - 1; t >= 0; t--) {
      const time = timeOf(t, steps, goBackwards);
      const fromAbove: tf.Tensor | null = dh;
      const cellAbove: tf.Tensor | null = dc;
      const s = step(t);
      const previousCell = t > 0 ? step(t - 1).c : zeros;
      previousOutputs[time] = t > 0 ? step(t - 1).h : zeros;
      const result = tf.tidy(() => {
        let dhT: tf.Tensor;
        if (outputGrads !== null) dhT = fromAbove === null ? outputGrads[t]! : tf.add(fromAbove, outputGrads[t]!);
        else dhT = fromAbove ?? dy;
        const keep = keeps?.[time];
        const drop = drops?.[time];
        const dhNew = keep === undefined ? dhT : tf.mul(dhT, keep);
        let dcNew = tf.mul(dhNew, tf.mul(s.o, tf.sub(1, tf.square(s.cellTanh))));
        if (cellAbove !== null) dcNew = tf.add(dcNew, keep === undefined ? cellAbove : tf.mul(cellAbove, keep));
        const dGates = tf.concat([tf.mul(dcNew, s.g), tf.mul(dcNew, previousCell), tf.mul(dcNew, s.i), tf.mul(dhNew, s.cellTanh)], 1);
        const dz = tf.mul(dGates, tf.mul(tf.mul(s.a, tf.sub(1, s.a)), slopeScale));
        if (t === 0) return { dz };
        let dhPrevious = tf.matMul(dz, recurrentT);
        let dcPrevious = tf.mul(dcNew, s.f);
        if (drop !== undefined) {
          // A masked step passed (h, c) through: so does its gradient.
          dhPrevious = tf.add(dhPrevious, tf.mul(dhT, drop));
          if (cellAbove !== null) dcPrevious = tf.add(dcPrevious, tf.mul(cellAbove, drop));
        }
        return { dz, dh: dhPrevious, dc: dcPrevious };
      });
      tf.dispose([fromAbove, cellAbove].filter((v): v is tf.Tensor => v !== null));
      gateGrads[time] = result.dz;
      dh = result.dh ?? null;
      dc = result.dc ?? null;
    }

    // [T·B, 4u] in sequence order, like `inputs`. dW, db and dU as one product [x | 1 | h_prev]ᵀ·dz.
    const dz = tf.concat(gateGrads, 0);
    const factors = tf.concat([inputs, tf.ones([steps * batch, 1]), tf.concat(previousOutputs, 0)], 1);
    const [dKernel, dBias, dRecurrent] = tf.split(transposedTimes(factors, dz, batch), [inputDim, 1, units], 0) as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
    const dx = tf.transpose(tf.reshape(tf.matMul(dz, tf.transpose(kernel)), [steps, batch, inputDim]), [1, 0, 2]);
    const grads = [dx, dKernel, dRecurrent];
    if (layout.hasBias) grads.push(tf.reshape(dBias, [4 * units]));
    return grads;
  });
}

/** Rows per block of {@link transposedTimes}: measured best among 128, 256, 512 and 1,024 (bench/profile.ts). */
const BLOCK_ROWS = 512;

/**
 * aᵀ·b for tall a [n, k] and b [n, m], as a sum of products over blocks of
 * about {@link BLOCK_ROWS} rows (whole steps of `batch` rows), each with an
 * explicit transpose: wasm's transposed products are scalar loops, and one
 * product over all T·B rows streams a from memory once per column block of b
 * (25 % slower than blocks for the BiLSTM benchmark's [4096, 251]ᵀ·[4096, 600]).
 */
function transposedTimes(a: tf.Tensor, b: tf.Tensor, batch: number): tf.Tensor {
  const rows = a.shape[0]!;
  const block = Math.max(1, Math.round(BLOCK_ROWS / batch)) * batch;
  let sum: tf.Tensor | null = null;
  for (let from = 0; from < rows; from += block) {
    const size = Math.min(block, rows - from);
    const product = tf.matMul(tf.transpose(tf.slice(a, [from, 0], [size, -1])), tf.slice(b, [from, 0], [size, -1]));
    sum = sum === null ? product : tf.add(sum, product);
  }
  return sum!;
}
