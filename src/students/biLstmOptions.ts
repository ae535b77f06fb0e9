/**
 * Options of the BiLSTM student: their defaults (written once, here), their
 * validation, and the parameter count they imply.
 *
 * @packageDocumentation
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KdConfigError } from '../errors.js';

/** How a pretrained embedding matrix is used (Kim 2014's and Tang et al.'s modes). */
export type EmbeddingMode = 'trainable' | 'frozen' | 'multichannel';

/** A pretrained word-embedding matrix, one row per token id, and how to use it. */
export interface PretrainedEmbeddings {
  /**
   * The matrix, `[vocabSize, embeddingDim]`: a tensor (kd-ts copies nothing
   * and does not dispose it), nested rows, or one flat row-major array.
   */
  weights: tf.Tensor2D | number[][] | Float32Array;
  /**
   * `'trainable'` (fine-tuned with the student), `'frozen'` (kept fixed), or
   * `'multichannel'`: a trainable and a frozen copy whose vectors are
   * concatenated, so the BiLSTM reads 2·embeddingDim features per token (as in
   * Tang et al.'s code). Default `'trainable'`.
   */
  mode?: EmbeddingMode;
}

/** Options of {@link buildBiLstmStudent}. Defaults are Tang et al.'s (2019, §4.2). */
export interface BiLstmStudentOptions {
  /** Number of token ids, PAD (0), UNK (1) and MASK (2) included: at least 3 (`vocabulary.size`). */
  vocabSize: number;
  /** Number of classes (logits per example); at least 2. */
  numClasses: number;
  /** Width of the word vectors. Default 300, or the width of `embeddings.weights` when given. */
  embeddingDim?: number;
  /** LSTM units per direction. Default 150. */
  hiddenUnits?: number;
  /** Units of the ReLU fully connected layer. Default 200. */
  fcUnits?: number;
  /** Dropout rate after the ReLU fully connected layer, in [0, 1) (where Tang et al.'s code applies it). Default 0. */
  dropout?: number;
  /**
   * How the BiLSTM's outputs become one vector: `'last'`, each direction's
   * final hidden state (Tang et al.), or `'max'`, a max over the non-padded
   * time steps. Default `'last'`.
   */
  pooling?: 'last' | 'max';
  /**
   * Sentence pairs: two inputs (a, b) through one shared encoder, combined as
   * `[h1, h2, h1 ⊙ h2, |h1 − h2|]` (Tang et al., eq. 3). Default `false`.
   */
  pair?: boolean;
  /** A pretrained embedding matrix. Default: random vectors, uniform in [−0.25, 0.25], trainable. */
  embeddings?: PretrainedEmbeddings;
  /**
   * The LSTM implementation: `'fast'`, kd-ts's {@link FastLSTM} (the whole
   * sequence as one op, several times faster to train, especially on wasm), or
   * `'tfjs'`, tfjs-layers' LSTM. Same math and weights. Default `'fast'`.
   */
  cell?: 'fast' | 'tfjs';
  /** The model's name. Default `'bilstm_student'`. */
  name?: string;
}

/** {@link BiLstmStudentOptions} with every default filled in. */
export interface ResolvedBiLstmOptions {
  vocabSize: number;
  numClasses: number;
  embeddingDim: number;
  hiddenUnits: number;
  fcUnits: number;
  dropout: number;
  pooling: 'last' | 'max';
  pair: boolean;
  embeddings: { weights: tf.Tensor2D | number[][] | Float32Array; mode: EmbeddingMode } | null;
  cell: 'fast' | 'tfjs';
  name: string;
}

/**
 * The number of parameters (trainable and frozen) of the student
 * {@link buildBiLstmStudent} builds with these options, without building it.
 * With V = vocabSize, d = embeddingDim, h = hiddenUnits, f = fcUnits,
 * C = numClasses, k = 2 for `'multichannel'` embeddings (else 1) and p = 4 for
 * pairs (else 1):
 *
 *   k·V·d  +  8h·(k·d + h + 1)  +  (2h·p + 1)·f  +  (f + 1)·C
 *
 * (embeddings; two LSTMs with input, recurrent and bias weights for 4 gates;
 * the ReLU layer; the logits). Pooling does not change it. Of these,
 * V·d are frozen with `'frozen'` or `'multichannel'` embeddings. (PyTorch's
 * LSTM has two bias vectors per direction where tfjs has one: 8h more there.)
 * Tang et al.'s SST-2 student (V ≈ 14,800, defaults): about 5.0 million, 4.4 of them embeddings.
 *
 * @param options - As for {@link buildBiLstmStudent} (`embeddings.weights` only sets the default width).
 * @returns The count `model.countParams()` gives.
 * @throws {@link KdConfigError} (`INVALID_OPTION`) for invalid options.
 *
 * @example
 * ```ts
 * import { biLstmStudentParamCount } from 'kd-ts';
 *
 * biLstmStudentParamCount({ vocabSize: 15000, numClasses: 2 }); // 5,101,802
 * ```
 */
export function biLstmStudentParamCount(options: BiLstmStudentOptions): number {
  const o = resolveBiLstmOptions(options);
  const channels = o.embeddings?.mode === 'multichannel' ? 2 : 1;
  const pairFactor = o.pair ? 4 : 1;
  const { vocabSize: V, embeddingDim: d, hiddenUnits: h, fcUnits: f, numClasses: C } = o;
  return channels * V * d + 8 * h * (channels * d + h + 1) + (2 * h * pairFactor + 1) * f + (f + 1) * C;
}

/** Token ids 0, 1, 2 are PAD, UNK and MASK in kd-ts's Vocabulary. */
const RESERVED_IDS = 3;

const KNOWN_OPTIONS = new Set([
  'vocabSize',
  'numClasses',
  'embeddingDim',
  'hiddenUnits',
  'fcUnits',
  'dropout',
  'pooling',
  'pair',
  'embeddings',
  'cell',
  'name',
]);

/**
 * Fills in the defaults and checks every option.
 *
 * @throws {@link KdConfigError} (`INVALID_OPTION`) naming the option and the fix.
 */
export function resolveBiLstmOptions(options: BiLstmStudentOptions): ResolvedBiLstmOptions {
  if (options === null || typeof options !== 'object') {
    throw new KdConfigError('INVALID_OPTION', 'buildBiLstmStudent takes an options object: { vocabSize, numClasses, ... }');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new KdConfigError(
        'INVALID_OPTION',
        `unknown BiLSTM student option '${key}': use one of ${[...KNOWN_OPTIONS].join(', ')}`,
      );
    }
  }
  const vocabSize = integerAtLeast(options.vocabSize, RESERVED_IDS, 'vocabSize', ' (ids 0, 1 and 2 are PAD, UNK and MASK): pass vocabulary.size');
  const numClasses = integerAtLeast(options.numClasses, 2, 'numClasses', ': pass the number of classes of your task');
  const embeddings = resolveEmbeddings(options.embeddings);
  const embeddingDim = integerAtLeast(
    options.embeddingDim ?? (embeddings !== null ? matrixWidth(embeddings.weights) : undefined) ?? 300,
    1,
    'embeddingDim',
    '',
  );
  const hiddenUnits = integerAtLeast(options.hiddenUnits ?? 150, 1, 'hiddenUnits', '');
  const fcUnits = integerAtLeast(options.fcUnits ?? 200, 1, 'fcUnits', '');
  const dropout = options.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new KdConfigError('INVALID_OPTION', `dropout must be in [0, 1), got ${String(dropout)}: pass e.g. 0.1, or 0 for none`);
  }
  const pooling = oneOf(options.pooling ?? 'last', ['last', 'max'] as const, 'pooling');
  const cell = oneOf(options.cell ?? 'fast', ['fast', 'tfjs'] as const, 'cell');
  const pair = options.pair ?? false;
  if (typeof pair !== 'boolean') {
    throw new KdConfigError('INVALID_OPTION', `pair must be true or false, got ${String(pair)}`);
  }
  const name = options.name ?? 'bilstm_student';
  if (typeof name !== 'string' || name.length === 0) {
    throw new KdConfigError('INVALID_OPTION', `name must be a non-empty string, got ${String(name)}`);
  }
  return { vocabSize, numClasses, embeddingDim, hiddenUnits, fcUnits, dropout, pooling, pair, embeddings, cell, name };
}

function resolveEmbeddings(embeddings: PretrainedEmbeddings | undefined): ResolvedBiLstmOptions['embeddings'] {
  if (embeddings === undefined) return null;
  if (embeddings === null || typeof embeddings !== 'object' || embeddings.weights == null) {
    throw new KdConfigError(
      'INVALID_OPTION',
      'embeddings must be { weights, mode }, with weights a [vocabSize, embeddingDim] matrix: ' +
        'omit embeddings for random trainable vectors',
    );
  }
  const mode = oneOf(embeddings.mode ?? 'trainable', ['trainable', 'frozen', 'multichannel'] as const, 'embeddings.mode');
  return { weights: embeddings.weights, mode };
}

/** The matrix's width when it shows one (a tensor or nested rows); a flat array does not. */
function matrixWidth(weights: tf.Tensor2D | number[][] | Float32Array): number | undefined {
  if (weights instanceof Float32Array) return undefined;
  if (Array.isArray(weights)) return Array.isArray(weights[0]) ? weights[0].length : undefined;
  const shape = (weights as Partial<tf.Tensor> | null)?.shape; // anything else is refused when the matrix is read
  return Array.isArray(shape) ? shape[1] : undefined;
}

function integerAtLeast(value: unknown, minimum: number, option: string, fix: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new KdConfigError('INVALID_OPTION', `${option} must be an integer ≥ ${minimum}, got ${String(value)}${fix}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], option: string): T {
  if (!allowed.includes(value as T)) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `${option} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}
