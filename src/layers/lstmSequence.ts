/**
 * FastLSTM's sequence op: the LSTM over a whole sequence as one
 * `tf.customGrad` op. The forward loop runs outside the tape and keeps each
 * step's gate activations; the backward pass is a manual backpropagation
 * through time (BPTT) with one `dz·Uᵀ` product per step, and the weight and
 * input gradients are two large products after the loop. Semantics are
 * tfjs's (tfjs-layers 4.x `LSTMCell` + `rnn()`).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { withoutKernelLeakCheck } from '../compat/kernelLeakCheck.js';
import { isTapeRecording } from '../compat/tapeRecording.js';
import { KdShapeError } from '../errors.js';
import { fullWidthSequence } from './lstmFullWidth.js';
import { canRunLstmInference, lstmInference } from './lstmInference.js';
import { tacticsFor, type Tactics } from './lstmTactics.js';

/** What the layer fixes for its sequence op. */
export interface SequenceOptions {
  units: number;
  hardSigmoid: boolean;
  returnSequences: boolean;
  goBackwards: boolean;
}


/** What one forward step leaves for the backward pass. `c` and `h` are the carried (masked) states. */
type StepState = {
  i: tf.Tensor;
  f: tf.Tensor;
  g: tf.Tensor;
  o: tf.Tensor;
  /** tanh of the step's new cell state, before masking. */
  cellTanh: tf.Tensor;
  c: tf.Tensor;
  h: tf.Tensor;
  /** hardSigmoid only: 0.2·z + 0.5 of gates i, f, o, before clipping. */
  preClip?: tf.Tensor[];
};
const STATE_KEYS = ['i', 'f', 'g', 'o', 'cellTanh', 'c', 'h'] as const;

/** Where `lstmSequence` puts each tensor in the flat list it saves for the backward pass. */
interface SavedLayout {
  batch: number;
  steps: number;
  inputDim: number;
  hasBias: boolean;
  mask: number;
  first: number;
  perStep: number;
}

/**
 * The LSTM over a whole sequence as one differentiable op.
 *
 * Per step (tfjs `LSTMCell`): z = x_t·W + h·U + b, gates i, f, c, o in that
 * column order; i, f, o = σ(z_i, z_f, z_o); g = tanh(z_c); c' = f·c + i·g;
 * h' = o·tanh(c'); a masked step keeps (h, c): h = h'·m + h·(1 − m), as tfjs.
 */
export function lstmSequence(
  x: tf.Tensor3D,
  kernel: tf.Tensor,
  recurrentKernel: tf.Tensor,
  bias: tf.Tensor | null,
  mask: tf.Tensor | null,
  options: SequenceOptions,
): tf.Tensor {
  const [batch, steps, inputDim] = x.shape;
  if (steps === 0) {
    throw new KdShapeError('INPUT_SHAPE_MISMATCH', 'FastLSTM got a sequence of length 0: pass at least one time step');
  }
  if (mask !== null && (mask.shape[0] !== batch || mask.shape[1] !== steps)) {
    throw new KdShapeError(
      'INPUT_SHAPE_MISMATCH',
      `FastLSTM mask has shape [${mask.shape.join(', ')}] but the inputs are [${x.shape.join(', ')}]: pass a [batch, time] mask`,
    );
  }
  // Inference (no tape) on wasm for small batches: the whole recurrence in one WebAssembly call.
  if (!options.hardSigmoid && !isTapeRecording() && canRunLstmInference(x, options.units, mask)) return lstmInference(x, kernel, recurrentKernel, bias, mask, options);
  const tactics = tacticsFor(tf.getBackend());
  if (tactics.fullWidth && !options.hardSigmoid) return fullWidthSequence(x, kernel, recurrentKernel, bias, mask, options);
  // Saving activations only pays when the tape records this op (training).
  const recording = isTapeRecording();
  const perStep = STATE_KEYS.length + (options.hardSigmoid ? 3 : 0);
  const layout: SavedLayout = { batch, steps, inputDim, hasBias: bias !== null, mask: -1, first: -1, perStep };
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [input, w, u, b] = args as tf.Tensor[];
    const forward = lstmForward(input as tf.Tensor3D, w!, u!, bias === null ? null : b!, mask, options, tactics);
    if (recording) {
      const saved: tf.Tensor[] = [forward.inputs, w!, u!];
      if (forward.stepMask !== null) layout.mask = saved.push(forward.stepMask) - 1;
      layout.first = saved.length;
      for (const state of forward.states) {
        for (const key of STATE_KEYS) saved.push(state[key]);
        if (state.preClip !== undefined) saved.push(...state.preClip);
      }
      save(saved);
    }
    return {
      value: forward.value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => lstmBackward(dy, saved, layout, options, tactics),
    };
  });
  const inputs = bias === null ? [x, kernel, recurrentKernel] : [x, kernel, recurrentKernel, bias];
  // The activations saved for the backward pass are no leak, whatever tfjs's test mode says.
  return withoutKernelLeakCheck(() => op(...inputs));
}

interface ForwardResult {
  value: tf.Tensor;
  /** Inputs in processing order, [T·B, inputDim]. */
  inputs: tf.Tensor;
  /** [T, B, 1] 0/1 mask in processing order, or null. */
  stepMask: tf.Tensor | null;
  states: StepState[];
}

function lstmForward(
  x: tf.Tensor3D,
  kernel: tf.Tensor,
  recurrentKernel: tf.Tensor,
  bias: tf.Tensor | null,
  mask: tf.Tensor | null,
  options: SequenceOptions,
  tactics: Tactics,
): ForwardResult {
  const { units, hardSigmoid, goBackwards } = options;
  const [batch, steps, inputDim] = x.shape;
  // Time-major, in processing order: tfjs's rnn() reverses inputs and mask for goBackwards.
  let timeMajor: tf.Tensor = tf.transpose(x, [1, 0, 2]);
  if (goBackwards) timeMajor = tf.reverse(timeMajor, 0);
  const inputs = tf.reshape(timeMajor, [steps * batch, inputDim]);
  const preactivations = gatePreactivations(timeMajor, inputs, kernel, recurrentKernel, bias, options, tactics);
  const stepMask = mask === null ? null : timeMajorMask(mask, batch, steps, goBackwards);
  const masks = stepMask === null ? null : stepMasks(stepMask, units, tactics);
  // hardSigmoid (tfjs): clip(0.2·z + 0.5, 0, 1); 0.2·z + 0.5 comes folded from gatePreactivations.
  const gate = (z: tf.Tensor): [tf.Tensor, tf.Tensor | undefined] =>
    hardSigmoid ? [tf.clipByValue(z, 0, 1), z] : [tf.sigmoid(z), undefined];

  const zeros = tf.zeros([batch, units]);
  let h: tf.Tensor = zeros;
  let c: tf.Tensor = zeros;
  const states: StepState[] = [];
  for (let t = 0; t < steps; t++) {
    const state: StepState = tf.tidy(() => {
      const [zi, zf, zc, zo] = preactivations(t, h);
      const [i, preI] = gate(zi!);
      const [f, preF] = gate(zf!);
      const [o, preO] = gate(zo!);
      const g = tactics.tanh(zc!);
      const cNew = t === 0 ? tf.mul(i, g) : tf.add(tf.mul(f, c), tf.mul(i, g));
      const cellTanh = tactics.tanh(cNew);
      const hNew = tf.mul(o, cellTanh);
      const keep = masks?.keep[t];
      const drop = masks?.drop[t];
      const carried = (next: tf.Tensor, previous: tf.Tensor) =>
        keep === undefined || drop === undefined ? next : tf.add(tf.mul(next, keep), tf.mul(previous, drop));
      return {
        i,
        f,
        g,
        o,
        cellTanh,
        c: carried(cNew, c),
        h: carried(hNew, h),
        ...(hardSigmoid ? { preClip: [preI!, preF!, preO!] } : {}),
      };
    });
    h = state.h;
    c = state.c;
    states.push(state);
  }
  const outputs = states.map((state) => state.h);
  const value = options.returnSequences ? tf.stack(outputs, 1) : outputs[steps - 1]!;
  return { value, inputs, stepMask, states };
}

/**
 * A function from (step, h) to the step's four gate pre-activations, each
 * [B, u], in gate order i, f, c, o. Gates are computed separately: splitting
 * a [B, 4u] product into gates copies element by element on cpu and copies
 * the whole product per gate on wasm, both slower than the product itself.
 * With hardSigmoid, the i, f, o pre-activations are already 0.2·z + 0.5: the
 * scale and offset are folded into those gates' weights and bias.
 */
function gatePreactivations(
  timeMajor: tf.Tensor,
  inputs: tf.Tensor,
  kernel: tf.Tensor,
  recurrentKernel: tf.Tensor,
  bias: tf.Tensor | null,
  options: SequenceOptions,
  tactics: Tactics,
): (t: number, h: tf.Tensor) => tf.Tensor[] {
  const { units, hardSigmoid } = options;
  const [steps, batch] = timeMajor.shape as [number, number, number];
  const split = bias === null ? null : tf.split(bias, 4);
  const folded = (k: number) => hardSigmoid && k !== 2;
  const kernels = gateBlocks(kernel, units).map((w, k) => (folded(k) ? tf.mul(w, 0.2) : w));
  const recurrents = gateBlocks(recurrentKernel, units).map((u, k) => (folded(k) ? tf.mul(u, 0.2) : u));
  const biases = [0, 1, 2, 3].map((k) => {
    const b = split?.[k];
    if (!folded(k)) return b;
    return b === undefined ? tf.fill([units], 0.5) : tf.add(tf.mul(b, 0.2), 0.5);
  });
  if (tactics.precomputeInputs) {
    const projected = kernels.map((w, k) => {
      let product = tf.matMul(inputs, w);
      const b = biases[k];
      if (b !== undefined) product = tf.add(product, b);
      return tf.unstack(tf.reshape(product, [steps, batch, units]));
    });
    // h = 0 at t = 0: z is the input part alone (x + 0 = x exactly).
    return (t, h) => projected.map((byStep, k) => (t === 0 ? byStep[t]! : tf.add(byStep[t]!, tf.matMul(h, recurrents[k]!))));
  }
  const stepInputs = tactics.timeSteps(timeMajor);
  const joint = kernels.map((w, k) => tf.concat([w, recurrents[k]!], 0));
  return (t, h) => {
    const a = t === 0 ? stepInputs[t]! : tf.concat([stepInputs[t]!, h], 1);
    return (t === 0 ? kernels : joint).map((b, k) => tf.fused.matMul({ a, b, bias: biases[k] }));
  };
}

/** The four [rows, u] column blocks of a [rows, 4u] weight, in gate order i, f, c, o. */
function gateBlocks(weight: tf.Tensor, units: number): tf.Tensor[] {
  const rows = weight.shape[0]!;
  return tf.unstack(tf.transpose(tf.reshape(weight, [rows, 4, units]), [1, 0, 2]));
}

/**
 * Backpropagation through time for {@link lstmForward}: per step about 25
 * elementwise ops on [B, u] tensors and one dz·Uᵀ product; the weight and
 * input gradients are two products over all steps after the loop.
 */
function lstmBackward(
  dy: tf.Tensor,
  saved: tf.Tensor[],
  layout: SavedLayout,
  options: SequenceOptions,
  tactics: Tactics,
): tf.Tensor[] {
  return tf.tidy(() => {
    const { units, hardSigmoid, goBackwards, returnSequences } = options;
    const { batch, steps, inputDim } = layout;
    const [inputs, kernel, recurrentKernel] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
    const masks = layout.mask >= 0 ? stepMasks(saved[layout.mask]!, units, tactics) : null;
    const state = (t: number): StepState => {
      const at = layout.first + t * layout.perStep;
      const [i, f, g, o, cellTanh, c, h, ...preClip] = saved.slice(at, at + layout.perStep) as tf.Tensor[];
      return { i: i!, f: f!, g: g!, o: o!, cellTanh: cellTanh!, c: c!, h: h!, preClip };
    };
    // Gate slopes as tfjs's gradients compute them: σ' = s(1 − s); hardSigmoid' = 0.2
    // where 0 <= 0.2z + 0.5 <= 1 (clipByValue's gradient includes both ends).
    const slope = (gate: tf.Tensor, preClip: tf.Tensor | undefined) =>
      preClip === undefined ? tf.mul(gate, tf.sub(1, gate)) : tf.mul(tf.cast(tf.equal(gate, preClip), 'float32'), 0.2);
    const recurrentT = tf.transpose(recurrentKernel);
    const outputGrads = returnSequences ? tactics.timeSteps(tf.transpose(dy, [1, 0, 2])) : null;
    const zeros = tf.zeros([batch, units]);

    const gateGrads = new Array<tf.Tensor>(steps);
    let dh: tf.Tensor | null = null;
    let dc: tf.Tensor | null = null;
    for (let t = steps - 1; t >= 0; t--) {
      const fromAbove: tf.Tensor | null = dh;
      const cellAbove: tf.Tensor | null = dc;
      const s = state(t);
      const previousCell = t > 0 ? state(t - 1).c : zeros;
      const step = tf.tidy(() => {
        let dhT: tf.Tensor;
        if (outputGrads !== null) dhT = fromAbove === null ? outputGrads[t]! : tf.add(fromAbove, outputGrads[t]!);
        else dhT = fromAbove ?? dy;
        const keep = masks?.keep[t];
        const drop = masks?.drop[t];
        // Gradients of the step's new h' and c' (zero where the step is masked).
        const dhNew = keep === undefined ? dhT : tf.mul(dhT, keep);
        let dcNew = tf.mul(dhNew, tf.mul(s.o, tf.sub(1, tf.square(s.cellTanh))));
        if (cellAbove !== null) dcNew = tf.add(dcNew, keep === undefined ? cellAbove : tf.mul(cellAbove, keep));
        const dz = tf.concat(
          [
            tf.mul(dcNew, tf.mul(s.g, slope(s.i, s.preClip?.[0]))),
            tf.mul(dcNew, tf.mul(previousCell, slope(s.f, s.preClip?.[1]))),
            tf.mul(dcNew, tf.mul(s.i, tf.sub(1, tf.square(s.g)))),
            tf.mul(dhNew, tf.mul(s.cellTanh, slope(s.o, s.preClip?.[2]))),
          ],
          1,
        );
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
      gateGrads[t] = step.dz;
      dh = step.dh ?? null;
      dc = step.dc ?? null;
    }

    // [T·B, 4u], rows in processing order like `inputs`.
    const dz = tf.concat(gateGrads, 0);
    // dW = xᵀ·dz, db = 1ᵀ·dz and dU = Σ_t h_{t-1}ᵀ·dz_t (h_{-1} = 0) as one product
    // [x | 1 | h_prev]ᵀ·dz: dz is packed once, and no column sum over [T·B, 4u].
    const previousOutputs = [zeros, ...Array.from({ length: steps - 1 }, (_, t) => state(t).h)];
    const factors = tf.concat([inputs, tf.ones([steps * batch, 1]), tf.concat(previousOutputs, 0)], 1);
    const [dKernel, dBias, dRecurrent] = tf.split(tactics.transposedTimes(factors, dz), [inputDim, 1, units], 0) as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
    let dx: tf.Tensor = tf.reshape(tf.matMul(dz, tf.transpose(kernel)), [steps, batch, inputDim]);
    if (goBackwards) dx = tf.reverse(dx, 0);
    dx = tf.transpose(dx, [1, 0, 2]);
    const grads = [dx, dKernel, dRecurrent];
    if (layout.hasBias) grads.push(tf.reshape(dBias, [4 * units]));
    return grads;
  });
}

/** The mask as tfjs's rnn() uses it: 0/1 floats, time-major `[T, B, 1]`, in processing order. */
function timeMajorMask(mask: tf.Tensor, batch: number, steps: number, goBackwards: boolean): tf.Tensor {
  let m: tf.Tensor = tf.transpose(tf.reshape(tf.cast(tf.cast(mask, 'bool'), 'float32'), [batch, steps]));
  if (goBackwards) m = tf.reverse(m, 0);
  return tf.expandDims(m, 2);
}

/** Per-step keep (m) and drop (1 − m) masks, [B, u] or [B, 1] (see {@link Tactics.fullMasks}). */
function stepMasks(stepMask: tf.Tensor, units: number, tactics: Tactics): { keep: tf.Tensor[]; drop: tf.Tensor[] } {
  const [steps, batch] = stepMask.shape as [number, number, number];
  // A rank-1 product broadcasts on cpu ~20× faster than Tile or a broadcasting multiply, and exactly (m·1 = m).
  const keep = tactics.fullMasks
    ? tf.reshape(tf.matMul(tf.reshape(stepMask, [steps * batch, 1]), tf.ones([1, units])), [steps, batch, units])
    : stepMask;
  return { keep: tactics.timeSteps(keep), drop: tactics.timeSteps(tf.sub(1, keep)) };
}

