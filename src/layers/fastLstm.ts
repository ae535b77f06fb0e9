/**
 * `FastLSTM`: a drop-in for tfjs-layers' `LSTM` that runs the whole sequence
 * as one op with a hand-written backward pass.
 *
 * tfjs runs an LSTM as a JavaScript loop of about twenty small ops per time
 * step, and autodiff records every one of them; the backward pass then replays
 * them one by one, each with its own transposed matrix products. Here the
 * sequence is one `tf.customGrad` op (`lstmSequence.ts`, with the
 * backend-specific choices of `lstmTactics.ts`); inference on wasm at small
 * batches is one WebAssembly call (`lstmInference.ts`). Semantics, weights and
 * masking are tfjs's (tfjs-layers 4.x `LSTMCell` + `rnn()`), so weights move
 * between the two layers unchanged.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdShapeError } from '../errors.js';
import {
  describeValue,
  resolveInitializer,
  serializeInitializer,
  unitForgetBiasInitializer,
  type Initializer,
  type InitializerSpec,
} from './initializers.js';
import { lstmSequence } from './lstmSequence.js';
import { withOwnOrthogonal } from './orthogonalInitializer.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** The recurrent (gate) activations FastLSTM implements. tfjs's LSTM default is `'hardSigmoid'`. */
export type RecurrentActivationName = 'sigmoid' | 'hardSigmoid';

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
 * Inference (no gradient tape: `predict`, `evaluate`) with sigmoid gates on
 * the wasm backend, up to 24 rows per batch (and 64 MiB of kernel memory), runs every time step in one
 * WebAssembly SIMD call (`lstmInference.wat`): about 3.6 ms per sentence for
 * the Tang et al. BiLSTM, against 10 ms through tfjs's kernels. Larger batches,
 * training and the other backends use tfjs's kernels.
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
 * import { FastLSTM } from 'kd-ts/layers';
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
        `FastLSTM supports activation 'tanh' only, got ${describeValue(activation)}: use tfl.layers.lstm for other activations`,
      );
    }
    const recurrentActivation = args.recurrentActivation ?? 'hardSigmoid';
    if (recurrentActivation !== 'sigmoid' && recurrentActivation !== 'hardSigmoid') {
      throw new KdConfigError(
        'INVALID_OPTION',
        `FastLSTM supports recurrentActivation 'sigmoid' or 'hardSigmoid', got ${describeValue(recurrentActivation)}: ` +
          'use tfl.layers.lstm for others',
      );
    }
    const given = args as unknown as Record<string, unknown>;
    for (const [option, inactive] of INACTIVE_LSTM_OPTIONS) {
      const value = given[option];
      if (value !== undefined && value !== inactive) {
        throw new KdConfigError(
          'INVALID_OPTION',
          `FastLSTM does not support ${option} = ${describeValue(value)}: drop the option or use tfl.layers.lstm`,
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
 * import { fastLstm } from 'kd-ts/layers';
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
 * import { bidirectionalFastLstm } from 'kd-ts/layers';
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
