/**
 * `buildBiLstmStudent`: Tang et al.'s (2019) BiLSTM student, for single
 * sentences and sentence pairs.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdShapeError } from '../errors.js';
import { FastLSTM } from '../layers/fastLstm.js';
import { MaskedGlobalMaxPooling1D } from '../layers/maskedGlobalMaxPooling1D.js';
import { PairFeatures } from '../layers/pairFeatures.js';
import { registerKdLayers } from '../layers/register.js';
import { resolveBiLstmOptions, type BiLstmStudentOptions, type ResolvedBiLstmOptions } from './biLstmOptions.js';

/**
 * Builds Tang et al.'s (2019) student: word embeddings → one-layer BiLSTM →
 * both directions' last hidden states, concatenated → ReLU fully connected
 * layer → logits (linear: no softmax, as the {@link Distiller} expects).
 *
 * Inputs are int32 token ids `[batch, time]` of any length (`time` is not
 * fixed). Id 0 is padding and is masked everywhere: the same sentence gives
 * the same logits unpadded or padded with zeros (after it or before it), for
 * both poolings. With `pair: true` the model takes two inputs `[a, b]`, both
 * through one shared encoder (the same layers and weights), and classifies
 * `[h1, h2, h1 ⊙ h2, |h1 − h2|]` ({@link PairFeatures}).
 *
 * Choices, and where they come from:
 * - Random embeddings are uniform in [−0.25, 0.25] and trainable, as in the
 *   authors' code (castorini/d-bert); a pretrained matrix can be fine-tuned,
 *   frozen, or used as two channels (a trainable copy, then a frozen copy,
 *   concatenated per token).
 * - The LSTM uses sigmoid gates (PyTorch's LSTM, which the authors used;
 *   tfjs's default is hard sigmoid), glorot-uniform recurrent weights and
 *   zero biases.
 * - `dropout` applies after the ReLU layer, before the logits, where the
 *   authors' code applies it (their SST-2 setting: 0.1); the paper names no
 *   other place. It is active only in training (`fit`, the Distiller).
 * - `'max'` pooling takes, per feature, the maximum of the BiLSTM's outputs
 *   over the non-padded steps ({@link MaskedGlobalMaxPooling1D}).
 *
 * Parameters: k·V·d + 8h·(k·d + h + 1) + (2h·p + 1)·f + (f + 1)·C, see
 * {@link biLstmStudentParamCount} (k = 2 with multichannel embeddings, p = 4
 * for pairs). Layers are named `embedding` (and `embedding_frozen`), `bilstm`,
 * `max_pool`, `pair_features`, `fc`, `fc_dropout` and `logits`; inputs
 * `tokens`, or `tokens_a` and `tokens_b`.
 *
 * Saving: `model.save(...)` and `saveStudent` (`kd-ts/node`) work as for any
 * tfjs model; before `tf.loadLayersModel`, call {@link registerKdLayers}
 * (`loadStudent` does) so tfjs knows kd-ts's layers.
 *
 * @param options - See {@link BiLstmStudentOptions}; `vocabSize` and `numClasses` are required.
 * @returns A built (not compiled) `tf.LayersModel` whose output is `[batch, numClasses]` logits.
 * @throws {@link KdConfigError} (`INVALID_OPTION`) for invalid options (vocabSize below 3,
 *   non-integer sizes, dropout outside [0, 1), unknown names, `embeddings.weights` of another type).
 * @throws {@link KdShapeError} (`EMBEDDING_SHAPE_MISMATCH`) when `embeddings.weights` is not
 *   `[vocabSize, embeddingDim]`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { buildBiLstmStudent, Distiller, Vocabulary, type ModelInputs } from 'kd-ts';
 *
 * const sentences = ['a gorgeous , witty , seductive movie .', 'contains no wit , only labored gags'];
 * const vocabulary = Vocabulary.fromCorpus(sentences, { tokenizer: 'whitespace' });
 * const tokenIds = vocabulary.encodeBatch(sentences); // int32 [n, time]
 * // Any teacher: a model, or a function returning logits (a stand-in for a large model here).
 * const teacher = (x: ModelInputs) => tf.randomNormal([(x as tf.Tensor).shape[0]!, 2]);
 * const student = buildBiLstmStudent({ vocabSize: vocabulary.size, numClasses: 2 });
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: tf.train.adam(1e-3), kind: 'mse', alpha: 0 });
 * await distiller.fit(tokenIds, undefined, { epochs: 3, batchSize: 50 });
 *
 * // Sentence pairs (e.g. QQP, MNLI): fit with x = [tokensA, tokensB].
 * const pairStudent = buildBiLstmStudent({ vocabSize: vocabulary.size, numClasses: 3, pair: true });
 * ```
 */
export function buildBiLstmStudent(options: BiLstmStudentOptions): tfl.LayersModel {
  registerKdLayers();
  const o = resolveBiLstmOptions(options);
  const matrix = o.embeddings === null ? null : embeddingMatrix(o.embeddings.weights, o.vocabSize, o.embeddingDim);
  try {
    const encoder = makeEncoder(o);
    const inputs = o.pair
      ? [tokenInput('tokens_a'), tokenInput('tokens_b')]
      : [tokenInput('tokens')];
    const encoded = inputs.map(encoder.encode);
    let features = o.pair ? (new PairFeatures({ name: 'pair_features' }).apply(encoded) as tfl.SymbolicTensor) : encoded[0]!;
    features = tfl.layers.dense({ units: o.fcUnits, activation: 'relu', name: 'fc' }).apply(features) as tfl.SymbolicTensor;
    if (o.dropout > 0) features = tfl.layers.dropout({ rate: o.dropout, name: 'fc_dropout' }).apply(features) as tfl.SymbolicTensor;
    const logits = tfl.layers.dense({ units: o.numClasses, name: 'logits' }).apply(features) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs, outputs: logits, name: o.name });
    if (matrix !== null) for (const layer of encoder.embeddingLayers) layer.setWeights([matrix.tensor]);
    return model;
  } finally {
    if (matrix?.owned) matrix.tensor.dispose();
  }
}

/** An int32 token-id input of any length. */
function tokenInput(name: string): tfl.SymbolicTensor {
  return tfl.input({ shape: [null], dtype: 'int32', name });
}

/**
 * The sentence encoder: token ids → embeddings → BiLSTM → one vector
 * `[batch, 2h]`. Its layers are made once, so applying `encode` to two inputs
 * shares every weight between them.
 */
function makeEncoder(o: ResolvedBiLstmOptions): {
  encode: (tokens: tfl.SymbolicTensor) => tfl.SymbolicTensor;
  embeddingLayers: tfl.layers.Layer[];
} {
  const mode = o.embeddings?.mode ?? 'trainable';
  const embedding = (name: string, trainable: boolean) =>
    tfl.layers.embedding({
      inputDim: o.vocabSize,
      outputDim: o.embeddingDim,
      maskZero: true,
      trainable,
      name,
      // The authors' random init (castorini/d-bert, uniform ±0.25); a pretrained matrix replaces it after the build.
      embeddingsInitializer: tfl.initializers.randomUniform({ minval: -0.25, maxval: 0.25 }),
    });
  const embeddingLayers =
    mode === 'multichannel'
      ? [embedding('embedding', true), embedding('embedding_frozen', false)]
      : [embedding('embedding', mode !== 'frozen')];
  const concatenate = embeddingLayers.length > 1 ? tfl.layers.concatenate({ axis: -1, name: 'embedding_channels' }) : null;
  const returnSequences = o.pooling === 'max';
  const bilstm = biLstm(o, returnSequences);
  const pool = returnSequences ? new MaskedGlobalMaxPooling1D({ name: 'max_pool' }) : null;
  const encode = (tokens: tfl.SymbolicTensor): tfl.SymbolicTensor => {
    const vectors = embeddingLayers.map((layer) => layer.apply(tokens) as tfl.SymbolicTensor);
    let x = concatenate === null ? vectors[0]! : (concatenate.apply(vectors) as tfl.SymbolicTensor);
    x = bilstm.apply(x) as tfl.SymbolicTensor;
    return pool === null ? x : (pool.apply(x) as tfl.SymbolicTensor);
  };
  return { encode, embeddingLayers };
}

/** One bidirectional LSTM layer, outputs of both directions concatenated. */
function biLstm(o: ResolvedBiLstmOptions, returnSequences: boolean): tfl.layers.Layer {
  const cellArgs = {
    units: o.hiddenUnits,
    recurrentActivation: 'sigmoid' as const,
    // tfjs's orthogonal initializer needs the umbrella package's chained ops; glorot-uniform works everywhere.
    recurrentInitializer: 'glorotUniform',
    returnSequences,
    name: 'lstm',
  };
  const layer = o.cell === 'fast' ? (new FastLSTM(cellArgs) as unknown as tfl.RNN) : tfl.layers.lstm(cellArgs);
  return tfl.layers.bidirectional({ layer, mergeMode: 'concat', name: 'bilstm' });
}

/** The embedding matrix as a float32 `[vocabSize, embeddingDim]` tensor, checked; `owned` when made here. */
function embeddingMatrix(
  weights: tf.Tensor2D | number[][] | Float32Array,
  vocabSize: number,
  embeddingDim: number,
): { tensor: tf.Tensor2D; owned: boolean } {
  const expected = `[${vocabSize}, ${embeddingDim}] (vocabSize × embeddingDim)`;
  const fix = 'pass one row per token id (ids 0, 1, 2 are PAD, UNK, MASK) and set vocabSize and embeddingDim to match';
  if (weights instanceof Float32Array) {
    if (weights.length !== vocabSize * embeddingDim) {
      throw new KdShapeError(
        'EMBEDDING_SHAPE_MISMATCH',
        `embeddings.weights has ${weights.length} values but ${expected} needs ${vocabSize * embeddingDim}: ${fix}`,
      );
    }
    return { tensor: tf.tensor2d(weights, [vocabSize, embeddingDim], 'float32'), owned: true };
  }
  if (Array.isArray(weights)) {
    const badRow = weights.findIndex((row) => !Array.isArray(row) || row.length !== embeddingDim);
    if (weights.length !== vocabSize || badRow >= 0) {
      const found = badRow >= 0 ? `row ${badRow} has ${String((weights[badRow] as unknown[] | undefined)?.length)} values` : `${weights.length} rows`;
      throw new KdShapeError('EMBEDDING_SHAPE_MISMATCH', `embeddings.weights must be ${expected}, but ${found}: ${fix}`);
    }
    return { tensor: tf.tensor2d(weights, [vocabSize, embeddingDim], 'float32'), owned: true };
  }
  if (!(weights instanceof tf.Tensor)) {
    // A Float64Array or a plain object would otherwise fail later with a TypeError.
    const got = ArrayBuffer.isView(weights) ? (weights as object).constructor.name : typeof weights;
    throw new KdConfigError(
      'INVALID_OPTION',
      `embeddings.weights must be a tf.Tensor2D, an array of rows or a Float32Array, got ${got}: ` +
        'convert it, e.g. Float32Array.from(values)',
    );
  }
  const tensor = weights as tf.Tensor;
  if (tensor.rank !== 2 || tensor.shape[0] !== vocabSize || tensor.shape[1] !== embeddingDim) {
    throw new KdShapeError('EMBEDDING_SHAPE_MISMATCH', `embeddings.weights must be ${expected}, got [${tensor.shape.join(', ')}]: ${fix}`);
  }
  if (tensor.dtype === 'float32') return { tensor: tensor as tf.Tensor2D, owned: false };
  return { tensor: tf.cast(tensor, 'float32') as tf.Tensor2D, owned: true };
}
