/**
 * `FastLSTM`: a drop-in for tfjs-layers' `LSTM` that runs the whole sequence
 * as one op with a hand-written backward pass.
 *
 * tfjs runs an LSTM as a JavaScript loop of about twenty small ops per time
 * step, and autodiff records every one of them; the backward pass then replays
 * them one by one, each with its own transposed matrix products. Here the
 * sequence is one `tf.customGrad` op: the forward loop runs outside the tape
 * and keeps each step's gate activations; the backward pass is a manual
 * backpropagation through time with one `dz·Uᵀ` product per step, and the
 * weight and input gradients are two large products after the loop.
 * Semantics, weights and masking are tfjs's (tfjs-layers 4.x `LSTMCell` +
 * `rnn()`), so weights move between the two layers unchanged.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdShapeError } from '../errors.js';

/** A tfjs-layers initializer object (what `tfl.initializers.*()` returns). */
export type Initializer = ReturnType<typeof tfl.initializers.zeros>;
type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** The recurrent (gate) activations FastLSTM implements. tfjs's LSTM default is `'hardSigmoid'`. */
export type RecurrentActivationName = 'sigmoid' | 'hardSigmoid';

/**
 * An initializer as tfjs-layers accepts one: an identifier (`'glorotUniform'`,
 * `'orthogonal'`, `'zeros'`...), an object from `tfl.initializers`, or its
 * serialized form `{ className, config }`.
 */
export type InitializerSpec = string | Initializer | { className: string; config?: tf.serialization.ConfigDict };

/**
 * Options of {@link FastLSTM}: tfjs's `LSTMLayerArgs` minus what it rejects.
 * Defaults are tfjs's.
 */
export interface FastLstmArgs extends LayerArgs {
  /** Size of the hidden and cell states. */
  units: number;
  /** Cell and output activation. Only `'tanh'` (the default). */
  activation?: 'tanh';
  /** Gate activation. Default `'hardSigmoid'` (tfjs's default; PyTorch and Tang et al. use `'sigmoid'`). */
  recurrentActivation?: RecurrentActivationName;
  /** Default `true`. */
  useBias?: boolean;
  /** Initialize the forget gate's bias to 1 (Jozefowicz et al. 2015). Default `false`, as in tfjs. */
  unitForgetBias?: boolean;
  /** Default `'glorotNormal'`, as in tfjs. */
  kernelInitializer?: InitializerSpec;
  /** Default `'orthogonal'`, computed by kd-ts (tfjs's own needs the umbrella package). */
  recurrentInitializer?: InitializerSpec;
  /** Default `'zeros'`. */
  biasInitializer?: InitializerSpec;
  /** Return the whole output sequence `[batch, time, units]` rather than the last output `[batch, units]`. Default `false`. */
  returnSequences?: boolean;
  /** Process the sequence backwards; with `returnSequences`, the outputs come in processing order, as in tfjs. Default `false`. */
  goBackwards?: boolean;
}

/** Counter for default layer names, as tfjs keeps one per class. */
let unnamedLayers = 0;

/**
 * tfjs LSTM options FastLSTM accepts only at their inactive value, so that a
 * tfjs LSTM's `getConfig()` can build a FastLSTM. Anything else is rejected
 * rather than silently ignored.
 */
const INACTIVE_LSTM_OPTIONS: ReadonlyArray<readonly [string, unknown]> = [
  ['returnState', false],
  ['stateful', false],
  ['dropout', 0],
  ['recurrentDropout', 0],
  ['dropoutFunc', null],
  ['kernelRegularizer', null],
  ['recurrentRegularizer', null],
  ['biasRegularizer', null],
  ['activityRegularizer', null],
  ['kernelConstraint', null],
  ['recurrentConstraint', null],
  ['biasConstraint', null],
  ['cell', null],
];

/**
 * A one-layer LSTM with tfjs-layers' semantics (gate order i, f, c, o; masked
 * steps carry the previous state and output; `goBackwards` returns outputs in
 * processing order) whose sequence runs as one op with a manual backward pass
 * (BPTT): nothing per step is recorded on the autodiff tape. Weights have
 * tfjs's names, shapes and order (`kernel` `[inputDim, 4·units]`,
 * `recurrent_kernel` `[units, 4·units]`, `bias` `[4·units]`), so `setWeights`
 * with a tfjs LSTM's weights gives the same outputs (to float rounding, about
 * 1e-7). Works inside `tfl.layers.bidirectional` (see
 * {@link bidirectionalFastLstm} for a typed shortcut).
 *
 * Rejected (a {@link KdConfigError} with code `INVALID_OPTION`): activations
 * other than tanh (cell) and sigmoid/hardSigmoid (gates), dropout, recurrent
 * dropout, regularizers, constraints, `returnState`, `stateful`, and initial
 * states at call time. `unroll` and `implementation` are accepted and ignored,
 * as tfjs ignores them.
 *
 * Registration: the class registers itself with tfjs's serialization map when
 * first constructed (Bidirectional clones its layer through that map);
 * {@link registerKdLayers} registers it too, before `tfl.loadLayersModel`.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { FastLSTM } from 'kd-ts';
 *
 * const student = tfl.sequential({
 *   layers: [
 *     tfl.layers.embedding({ inputDim: 10000, outputDim: 100, maskZero: true, inputShape: [null] }),
 *     new FastLSTM({ units: 150, recurrentActivation: 'sigmoid' }),
 *     tfl.layers.dense({ units: 2 }),
 *   ],
 * });
 * ```
 */
export class FastLSTM extends tfl.layers.Layer {
  /** Namespaced class name under which tfjs serializes the layer. */
  static className = 'kd>FastLSTM';

  readonly units: number;
  readonly recurrentActivation: RecurrentActivationName;
  readonly useBias: boolean;
  readonly unitForgetBias: boolean;
  readonly returnSequences: boolean;
  readonly goBackwards: boolean;
  /** Always `false`; read by `tfl.layers.bidirectional`. */
  readonly returnState = false;

  private readonly kernelInitializer: Initializer;
  private readonly recurrentInitializer: Initializer;
  private readonly biasInitializer: Initializer;
  private kernel: tfl.LayerVariable | null = null;
  private recurrentKernel: tfl.LayerVariable | null = null;
  private bias: tfl.LayerVariable | null = null;

  /**
   * @param args - See {@link FastLstmArgs}.
   * @throws {@link KdConfigError} (`INVALID_OPTION`) for a non-positive-integer
   *   `units`, an unsupported activation, or an active option FastLSTM lacks.
   */
  constructor(args: FastLstmArgs) {
    // tfjs derives default names from the class name, and 'kd>' is not valid in a weight name.
    super({ ...args, name: args.name ?? `fast_lstm_${++unnamedLayers}` });
    if (!Number.isInteger(args.units) || args.units <= 0) {
      throw new KdConfigError('INVALID_OPTION', `FastLSTM units must be a positive integer, got ${String(args.units)}`);
    }
    const activation = args.activation ?? 'tanh';
    if (activation !== 'tanh') {
      throw new KdConfigError(
        'INVALID_OPTION',
        `FastLSTM supports activation 'tanh' only, got ${describe(activation)}: use tfl.layers.lstm for other activations`,
      );
    }
    const recurrentActivation = args.recurrentActivation ?? 'hardSigmoid';
    if (recurrentActivation !== 'sigmoid' && recurrentActivation !== 'hardSigmoid') {
      throw new KdConfigError(
        'INVALID_OPTION',
        `FastLSTM supports recurrentActivation 'sigmoid' or 'hardSigmoid', got ${describe(recurrentActivation)}: ` +
          'use tfl.layers.lstm for others',
      );
    }
    const given = args as unknown as Record<string, unknown>;
    for (const [option, inactive] of INACTIVE_LSTM_OPTIONS) {
      const value = given[option];
      if (value !== undefined && value !== inactive) {
        throw new KdConfigError(
          'INVALID_OPTION',
          `FastLSTM does not support ${option} = ${describe(value)}: drop the option or use tfl.layers.lstm`,
        );
      }
    }
    if ((args.dtype ?? 'float32') !== 'float32') {
      throw new KdConfigError('INVALID_OPTION', `FastLSTM computes in float32, got dtype '${String(args.dtype)}': drop the dtype option`);
    }
    this.units = args.units;
    this.recurrentActivation = recurrentActivation;
    this.useBias = args.useBias ?? true;
    this.unitForgetBias = args.unitForgetBias ?? false;
    this.returnSequences = args.returnSequences ?? false;
    this.goBackwards = args.goBackwards ?? false;
    this.kernelInitializer = resolveInitializer(args.kernelInitializer ?? 'glorotNormal', 'kernelInitializer');
    this.recurrentInitializer = resolveInitializer(args.recurrentInitializer ?? 'orthogonal', 'recurrentInitializer');
    this.biasInitializer = resolveInitializer(args.biasInitializer ?? 'zeros', 'biasInitializer');
    this.supportsMasking = true;
    this.inputSpec = [new tfl.InputSpec({ ndim: 3 })];
    // Bidirectional clones its layer by class name: make sure tfjs knows ours.
    const known = tf.serialization.SerializationMap.getMap().classNameMap[FastLSTM.className];
    if (known === undefined) tf.serialization.registerClass(FastLSTM);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const inputDim = shape[shape.length - 1];
    if (shape.length !== 3 || inputDim == null) {
      throw new KdShapeError(
        'RANK_MISMATCH',
        `FastLSTM expects inputs [batch, time, features] with known features, got [${shape.join(', ')}]: ` +
          'put an Embedding or a 3-D input before it',
      );
    }
    const units = this.units;
    this.inputSpec = [new tfl.InputSpec({ shape: [null, null, inputDim] })];
    this.kernel = this.addWeight('kernel', [inputDim, 4 * units], 'float32', this.kernelInitializer, undefined, true);
    this.recurrentKernel = this.addWeight(
      'recurrent_kernel',
      [units, 4 * units],
      'float32',
      withOwnOrthogonal(this.recurrentInitializer),
      undefined,
      true,
    );
    if (this.useBias) {
      const init = this.unitForgetBias ? unitForgetBiasInitializer(this.biasInitializer, units) : this.biasInitializer;
      this.bias = this.addWeight('bias', [4 * units], 'float32', init, undefined, true);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      if ((Array.isArray(inputs) && inputs.length > 1) || kwargs['initialState'] != null) {
        throw new KdConfigError(
          'INVALID_OPTION',
          'FastLSTM starts from zero states and takes no initialState: use tfl.layers.lstm for it',
        );
      }
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor3D;
      const maskArg = kwargs['mask'] as tf.Tensor | tf.Tensor[] | null | undefined;
      const mask = Array.isArray(maskArg) ? (maskArg[0] ?? null) : (maskArg ?? null);
      if (this.kernel === null || this.recurrentKernel === null) {
        throw new KdConfigError('INVALID_OPTION', `FastLSTM '${this.name}' was called before it was built: call it through apply()`);
      }
      return lstmSequence(x, this.kernel.read(), this.recurrentKernel.read(), this.bias?.read() ?? null, mask, {
        units: this.units,
        hardSigmoid: this.recurrentActivation === 'hardSigmoid',
        returnSequences: this.returnSequences,
        goBackwards: this.goBackwards,
      });
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return this.returnSequences ? [shape[0] ?? null, shape[1] ?? null, this.units] : [shape[0] ?? null, this.units];
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    const inputMask = Array.isArray(mask) ? mask[0] : mask;
    // As tfjs's RNN: the sequence output keeps the mask, the last output has none.
    return (this.returnSequences ? (inputMask ?? null) : null) as tf.Tensor;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      activation: 'tanh',
      recurrentActivation: this.recurrentActivation,
      useBias: this.useBias,
      unitForgetBias: this.unitForgetBias,
      kernelInitializer: serializeInitializer(this.kernelInitializer),
      recurrentInitializer: serializeInitializer(this.recurrentInitializer),
      biasInitializer: serializeInitializer(this.biasInitializer),
      returnSequences: this.returnSequences,
      goBackwards: this.goBackwards,
    };
  }
}

/**
 * Builds a {@link FastLSTM}, the way `tfl.layers.lstm` builds an LSTM.
 *
 * @param args - See {@link FastLstmArgs}.
 * @returns A new, unbuilt layer.
 * @throws {@link KdConfigError} (`INVALID_OPTION`) for options FastLSTM rejects.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { fastLstm } from 'kd-ts';
 *
 * const tagger = tfl.sequential({
 *   layers: [fastLstm({ units: 64, returnSequences: true, inputShape: [null, 32] }), tfl.layers.dense({ units: 5 })],
 * });
 * ```
 */
export function fastLstm(args: FastLstmArgs): FastLSTM {
  return new FastLSTM(args);
}

/**
 * `tfl.layers.bidirectional` around a {@link FastLSTM}. tfjs types
 * Bidirectional's `layer` as its own `RNN` class, which FastLSTM is not (it
 * has the same contract: config cloning, `goBackwards`, masks), hence this
 * typed shortcut.
 *
 * @param args - FastLSTM options plus Bidirectional's `mergeMode` (default `'concat'`).
 * @returns A new, unbuilt Bidirectional layer.
 * @throws {@link KdConfigError} (`INVALID_OPTION`) for options FastLSTM rejects.
 *
 * @example
 * ```ts
 * import { bidirectionalFastLstm } from 'kd-ts';
 *
 * const encoder = bidirectionalFastLstm({ units: 150, recurrentActivation: 'sigmoid' }); // [batch, 300]
 * ```
 */
export function bidirectionalFastLstm(
  args: FastLstmArgs & { mergeMode?: 'concat' | 'sum' | 'mul' | 'ave' },
): ReturnType<typeof tfl.layers.bidirectional> {
  const { mergeMode = 'concat', ...layerArgs } = args;
  return tfl.layers.bidirectional({ layer: new FastLSTM(layerArgs) as unknown as tfl.RNN, mergeMode });
}

interface SequenceOptions {
  units: number;
  hardSigmoid: boolean;
  returnSequences: boolean;
  goBackwards: boolean;
}

/**
 * Backend-dependent ways to run the same math, each chosen by measurement
 * (tfjs 4.22, batch 128, 150 units).
 */
interface Tactics {
  /**
   * Precompute x·W + b for all steps, one product per gate, and take each
   * step's rows: free views on cpu. On wasm a slice copies its input's whole
   * buffer (`readSync`), so taking 32 steps out of a [32, 128, 150] tensor
   * costs 32 copies of it: there each step multiplies [x_t, h] by [W; U].
   */
  precomputeInputs: boolean;
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

function tacticsFor(backend: string): Tactics {
  const wasm = backend === 'wasm';
  return {
    precomputeInputs: !wasm,
    fullMasks: !wasm,
    timeSteps: wasm
      ? (timeMajor) => Array.from({ length: timeMajor.shape[0]! }, (_, t) => tf.gather(timeMajor, t))
      : (timeMajor) => tf.unstack(timeMajor),
    tanh: wasm ? (x) => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) : (x) => tf.tanh(x),
    transposedTimes: wasm ? (a, b) => tf.matMul(tf.transpose(a), b) : (a, b) => tf.matMul(a, b, true, false),
  };
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
function lstmSequence(
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
  const tactics = tacticsFor(tf.getBackend());
  // Saving activations only pays when the tape records this op (training).
  const recording = tf.engine().isTapeOn();
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
  return withSavedActivationsAllowed(() => op(...inputs));
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

/**
 * Runs `fn` with tfjs's test-mode kernel leak check (`IS_TEST`) off. That
 * check counts every data id a custom op leaves behind as a leak, including
 * the activations `lstmSequence` saves for its backward pass on purpose (the
 * engine frees them with the tape). Training-loop leak tests (numTensors,
 * numDataIds) still see everything.
 */
function withSavedActivationsAllowed<T>(fn: () => T): T {
  const env = tf.env();
  if (!env.getBool('IS_TEST')) return fn();
  env.set('IS_TEST', false);
  try {
    return fn();
  } finally {
    env.set('IS_TEST', true);
  }
}

function resolveInitializer(spec: InitializerSpec, option: string): Initializer {
  if (typeof spec === 'string') {
    // tfjs's identifiers are its class names with a lower-case first letter.
    return fromRegistry(spec.charAt(0).toUpperCase() + spec.slice(1), {}, option);
  }
  if (typeof (spec as Initializer).apply === 'function') return spec as Initializer;
  const { className, config } = spec as { className?: unknown; config?: tf.serialization.ConfigDict };
  if (typeof className === 'string') return fromRegistry(className, config ?? {}, option);
  throw new KdConfigError(
    'INVALID_OPTION',
    `FastLSTM ${option} must be an identifier such as 'glorotUniform', a tfl.initializers object or ` +
      `{ className, config }, got ${describe(spec)}`,
  );
}

function fromRegistry(className: string, config: tf.serialization.ConfigDict, option: string): Initializer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (entry === undefined) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `FastLSTM ${option}: unknown initializer '${className}': use one of tfl.initializers' names, e.g. 'glorotUniform'`,
    );
  }
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config) as unknown as Initializer;
}

function serializeInitializer(initializer: Initializer): tf.serialization.ConfigDict {
  return { className: initializer.getClassName(), config: initializer.getConfig() };
}

/**
 * tfjs's Orthogonal initializer calls chained tensor methods, which exist only
 * when the app imports `@tensorflow/tfjs`, warns above 2,000 elements, and its
 * `tf.linalg.qr` takes about 40 s for a 150×600 recurrent kernel on the cpu
 * backend. Same distribution, computed here.
 */
function withOwnOrthogonal(initializer: Initializer): Initializer {
  if (initializer.getClassName() !== 'Orthogonal') return initializer;
  const { gain, seed } = initializer.getConfig() as { gain?: number; seed?: number | null };
  return {
    apply: (shape: tfl.Shape) => orthogonal(shape as number[], gain ?? 1, seed ?? undefined),
  } as unknown as Initializer;
}

/**
 * A random matrix with orthonormal rows or columns (whichever are fewer),
 * times `gain`: the Q of a normal matrix's QR with a positive diagonal in R,
 * which is uniformly distributed (Mezzadri 2007; what tfjs and Keras compute
 * by signing Q's columns with diag(R)). Gram-Schmidt, each column
 * orthogonalized twice for stability, in float64 on the CPU: about 4·m·n²
 * flops, tens of milliseconds for 600×150.
 */
function orthogonal(shape: number[], gain: number, seed: number | undefined): tf.Tensor {
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const cols = shape[shape.length - 1]!;
  const long = Math.max(rows, cols);
  const short = Math.min(rows, cols);
  const normal = tf.tidy(() => tf.transpose(tf.randomNormal([long, short], 0, 1, 'float32', seed)));
  const drawn = normal.dataSync();
  normal.dispose();
  // q holds the `short` columns, each `long` numbers, one after another.
  const q = Float64Array.from(drawn);
  for (let j = 0; j < short; j++) {
    const column = q.subarray(j * long, (j + 1) * long);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        const previous = q.subarray(k * long, (k + 1) * long);
        let dot = 0;
        for (let i = 0; i < long; i++) dot += previous[i]! * column[i]!;
        for (let i = 0; i < long; i++) column[i]! -= dot * previous[i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < long; i++) norm += column[i]! * column[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < long; i++) column[i]! /= norm;
  }
  // Rows < cols: the result is Qᵀ (orthonormal rows), already q's layout. Else Q: transpose.
  const values = new Float32Array(rows * cols);
  if (rows < cols) {
    for (let i = 0; i < values.length; i++) values[i] = gain * q[i]!;
  } else {
    for (let r = 0; r < long; r++) for (let c = 0; c < short; c++) values[r * short + c] = gain * q[c * long + r]!;
  }
  return tf.tensor(values, shape, 'float32');
}

/** tfjs's unitForgetBias: [biasInit(u), ones(u), biasInit(2u)], drawn in that order. */
function unitForgetBiasInitializer(base: Initializer, units: number): Initializer {
  return {
    apply: () => tf.tidy(() => tf.concat([base.apply([units]), tf.ones([units]), base.apply([2 * units])])),
  } as unknown as Initializer;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value !== null && typeof value === 'object') {
    const named = value as { getClassName?: () => string; className?: string };
    if (typeof named.getClassName === 'function') return named.getClassName();
    if (typeof named.className === 'string') return named.className;
  }
  return String(value);
}
