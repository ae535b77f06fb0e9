import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { formatId, type ExampleId } from '../io/teacherOutputs.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import { readIds } from './ids.js';
import { checkedOutputSpec } from './outputSpec.js';
import type { Teacher, TeacherContext, TeacherOutputs, TeacherOutputSpec } from './teacher.js';

// kd-ts never imports @huggingface/transformers: the model, the tokenizer and
// their tensors are typed by the few members used here.

/** A transformers.js `Tensor`, as far as kd-ts reads one. */
export interface TransformersTensorLike {
  /** Shape. */
  readonly dims: readonly number[];
  /** Element type (`'float32'` for logits, `'int64'` for token ids). */
  readonly type: string;
  /** Values, row-major. */
  readonly data: unknown;
  /** Frees what the runtime holds for the tensor. */
  dispose?(): void;
}

/** What a tokenizer returns for a batch: `input_ids`, `attention_mask`, maybe `token_type_ids`. */
export type TransformersEncoding = Record<string, TransformersTensorLike>;

/** Options kd-ts passes to the tokenizer (transformers.js's names). */
export interface TransformersTokenizerCallOptions {
  padding: boolean;
  truncation: boolean;
  max_length?: number;
}

/** A transformers.js tokenizer (`await AutoTokenizer.from_pretrained(...)`), called on a batch of sentences. */
export type TransformersTokenizerLike = (
  texts: string[],
  options: TransformersTokenizerCallOptions,
) => TransformersEncoding | Promise<TransformersEncoding>;

/**
 * A transformers.js sequence-classification model
 * (`await AutoModelForSequenceClassification.from_pretrained(...)`), called on
 * the tokenizer's output; it resolves to an object holding `logits`.
 */
export type TransformersModelLike = (inputs: TransformersEncoding) => Promise<{ logits?: TransformersTensorLike }>;

/** A transformers.js `text-classification` pipeline: kd-ts runs its `model` and `tokenizer` (its post-processing returns labels, not logits). */
export interface TransformersPipelineLike {
  readonly model: TransformersModelLike;
  readonly tokenizer: TransformersTokenizerLike;
}

/**
 * The sentence of each example id: an array indexed by integer ids (the
 * transfer set's texts, row i with id i), a map, or a function.
 */
export type TextsById = readonly string[] | ReadonlyMap<ExampleId, string> | ((id: ExampleId) => string | undefined);

/** Options of {@link transformersTeacher}. */
export interface TransformersTeacherOptions {
  /** The sentences, by example id. */
  texts: TextsById;
  /** Sentences per model call (default 32). */
  batchSize?: number;
  /** Tokens kept per sentence, special tokens included (default: the tokenizer's `model_max_length`). */
  maxLength?: number;
  /**
   * Sort each batch's sentences by length before cutting it into model calls,
   * so that each call pads little (default true). The rows come back in the
   * batch's order either way.
   */
  sortByLength?: boolean;
  /** What the model returns: `'logits'` (default, what a sequence-classification model's `logits` are). */
  outputs?: TeacherOutputs | TeacherOutputSpec;
}

/** A {@link Teacher} running a transformers.js classifier; see {@link transformersTeacher}. */
export interface TransformersTeacher extends Teacher {
  /** The logits of the batch's examples, read by id (`context.ids`); a new float32 `[rows, classes]` tensor. */
  predict(inputs: ModelInputs, context: TeacherContext): Promise<tf.Tensor2D>;
  /**
   * The logits of sentences given directly (dev sets, timing), in their order.
   *
   * @param texts - Sentences.
   * @returns A new float32 `[texts.length, classes]` tensor the caller owns.
   */
  scoreTexts(texts: readonly string[]): Promise<tf.Tensor2D>;
  /** How many times the model has run. */
  readonly modelCalls: number;
  /** How many sentences the model has scored. */
  readonly rowsScored: number;
}

const DEFAULT_BATCH_SIZE = 32;

/**
 * Makes a transformers.js text classifier (`AutoModelForSequenceClassification`
 * with its `AutoTokenizer`, or a `text-classification` pipeline) a teacher for
 * Tang et al.'s path without Python: each batch's example ids (`context.ids`,
 * from `fitDataset` elements with `id`) pick raw sentences from `texts` (tfjs
 * cannot carry strings through `tf.data` shuffles, so the sentences stay
 * here), which are sorted by length, cut into model calls of `batchSize`,
 * tokenized and padded per call, and scored; the logits come back in the
 * batch's order. The student reads its own inputs (token ids of its own
 * vocabulary) from the same batch.
 *
 * Wrap it in `cachedTeacher` (or fill a `TeacherCache` with
 * `TeacherCache.fromTeacher`) so each sentence is scored once, however many
 * epochs the student trains. Every transformers.js tensor it makes is
 * disposed, on errors too.
 *
 * kd-ts does not import transformers.js; load the model yourself, from a
 * local folder (`env.localModelPath`, `env.allowRemoteModels = false`) or the Hub.
 *
 * @param model - A sequence-classification model (or, in the second form, a `text-classification` pipeline).
 * @param tokenizer - Its tokenizer.
 * @param options - See {@link TransformersTeacherOptions}; `texts` is required.
 * @returns A {@link TransformersTeacher}.
 * @throws {@link KdConfigError} `INVALID_TEACHER` when the model or tokenizer is not callable;
 *   `INVALID_OPTION` for a bad `batchSize`, `maxLength` or `texts`.
 * @throws (from `predict`) {@link KdConfigError} `IDS_REQUIRED` for a batch without ids, `TEACHER_FAILED`
 *   when the tokenizer or model throws (its error is the `cause`); {@link KdDataError} `MISSING_ID` for an
 *   id without a sentence, `NON_FINITE_TEACHER_OUTPUT`; {@link KdShapeError} `BATCH_SIZE_MISMATCH`
 *   when the model's logits are not `[sentences, classes]`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { TeacherCache } from 'kd-ts';
 * import { transformersTeacher, type TransformersModelLike, type TransformersTokenizerLike } from 'kd-ts/teachers';
 *
 * // model and tokenizer: from @huggingface/transformers, with a local model folder (no download):
 * //   env.allowRemoteModels = false; env.localModelPath = './models/';
 * //   const model = await AutoModelForSequenceClassification.from_pretrained('my-bert-sst2');
 * //   const tokenizer = await AutoTokenizer.from_pretrained('my-bert-sst2');
 * export async function scoreTransferSet(model: TransformersModelLike, tokenizer: TransformersTokenizerLike, texts: string[]) {
 *   const teacher = transformersTeacher(model, tokenizer, { texts, batchSize: 64 });
 *   // Every row once, by id: row i of the transfer set has id i (x is not read, the ids say which sentences).
 *   const ids = texts.map((_, i) => i);
 *   const x = tf.tensor1d(ids, 'int32');
 *   const cache = await TeacherCache.fromTeacher(teacher, { x, ids }, { batchSize: 1024 });
 *   x.dispose();
 *   return cache; // a teacher for the Distiller (fitDataset elements carry `id`), or a file: writeTeacherOutputs
 * }
 * ```
 *
 * @example
 * ```ts
 * import { cachedTeacher } from 'kd-ts';
 * import { transformersTeacher, type TransformersPipelineLike } from 'kd-ts/teachers';
 *
 * // classifier = await pipeline('text-classification', 'my-bert-sst2') from @huggingface/transformers
 * export function teacherFor(classifier: TransformersPipelineLike, texts: string[]) {
 *   // Scored as the Distiller meets each id, once: later epochs read the cache.
 *   return cachedTeacher(transformersTeacher(classifier, { texts }));
 * }
 * ```
 */
export function transformersTeacher(
  model: TransformersModelLike,
  tokenizer: TransformersTokenizerLike,
  options: TransformersTeacherOptions,
): TransformersTeacher;
/**
 * The same teacher from a transformers.js `text-classification` pipeline:
 * kd-ts runs the pipeline's `model` and `tokenizer` (the pipeline's own
 * post-processing returns labels and scores, not logits).
 *
 * @param pipeline - `await pipeline('text-classification', name)` from transformers.js.
 * @param options - See {@link TransformersTeacherOptions}; `texts` is required.
 * @returns A {@link TransformersTeacher}.
 * @throws Like the model-and-tokenizer form.
 */
export function transformersTeacher(pipeline: TransformersPipelineLike, options: TransformersTeacherOptions): TransformersTeacher;
export function transformersTeacher(
  modelOrPipeline: TransformersModelLike | TransformersPipelineLike,
  tokenizerOrOptions: TransformersTokenizerLike | TransformersTeacherOptions,
  maybeOptions?: TransformersTeacherOptions,
): TransformersTeacher {
  const isPipeline = typeof tokenizerOrOptions !== 'function';
  const model = isPipeline ? (modelOrPipeline as TransformersPipelineLike | undefined)?.model : (modelOrPipeline as TransformersModelLike);
  const tokenizer = isPipeline ? (modelOrPipeline as TransformersPipelineLike | undefined)?.tokenizer : tokenizerOrOptions;
  const options = (isPipeline ? tokenizerOrOptions : maybeOptions) as TransformersTeacherOptions | undefined;
  if (typeof model !== 'function' || typeof tokenizer !== 'function') {
    throw new KdConfigError(
      'INVALID_TEACHER',
      'transformersTeacher takes a transformers.js model and its tokenizer (AutoModelForSequenceClassification and ' +
        "AutoTokenizer .from_pretrained), or a pipeline('text-classification', ...) followed by the options",
    );
  }
  return new TextClassifierTeacher(model, tokenizer, options);
}

class TextClassifierTeacher implements TransformersTeacher {
  readonly outputs: TeacherOutputSpec;
  modelCalls = 0;
  rowsScored = 0;
  private readonly textOf: (id: ExampleId) => string | undefined;
  private readonly batchSize: number;
  private readonly maxLength: number | undefined;
  private readonly sortByLength: boolean;

  constructor(
    private readonly model: TransformersModelLike,
    private readonly tokenizer: TransformersTokenizerLike,
    options: TransformersTeacherOptions | undefined,
  ) {
    const texts = options?.texts;
    if (typeof texts === 'function') this.textOf = texts;
    else if (Array.isArray(texts)) this.textOf = (id) => (typeof id === 'number' ? (texts as readonly string[])[id] : undefined);
    else if (texts instanceof Map) this.textOf = (id) => texts.get(id);
    else {
      throw new KdConfigError(
        'INVALID_OPTION',
        'transformersTeacher needs options.texts: the sentences by example id (an array indexed by id, a Map, or a function id => text)',
      );
    }
    this.batchSize = positive(options?.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
    this.maxLength = options?.maxLength === undefined ? undefined : positive(options.maxLength, 'maxLength');
    this.sortByLength = options?.sortByLength ?? true;
    this.outputs = checkedOutputSpec(options?.outputs);
  }

  async predict(_inputs: ModelInputs, context: TeacherContext): Promise<tf.Tensor2D> {
    if (context?.ids === undefined) {
      throw new KdConfigError(
        'IDS_REQUIRED',
        'transformersTeacher reads each row\'s sentence by example id, but the batch has no ids: add an `id` tensor to the ' +
          'dataset elements ({ xs, id }, strings or integers below 2^24) and train with distiller.fitDataset',
      );
    }
    const ids = await readIds(context.ids, 'the batch ids');
    const texts = ids.map((id, row) => {
      const text = this.textOf(id);
      if (typeof text !== 'string') {
        throw new KdDataError(
          'MISSING_ID',
          `no sentence for id ${formatId(id)} (batch row ${row}): give options.texts a sentence for every id of the data ` +
            '(with an array, integer ids index it)',
        );
      }
      return text;
    });
    return this.scoreTexts(texts);
  }

  async scoreTexts(texts: readonly string[]): Promise<tf.Tensor2D> {
    if (texts.length === 0) throw new KdShapeError('LENGTH_MISMATCH', 'no sentences to score: pass at least one');
    const order = texts.map((_, i) => i);
    // Stable sort by length in characters: a cheap stand-in for tokens, so each call pads little.
    if (this.sortByLength) order.sort((a, b) => texts[a]!.length - texts[b]!.length || a - b);
    let classes: number | undefined;
    let logits: Float32Array | undefined;
    for (let start = 0; start < order.length; start += this.batchSize) {
      const rows = order.slice(start, start + this.batchSize);
      const values = await this.run(rows.map((r) => texts[r]!), start);
      const C = values.length / rows.length;
      classes ??= C;
      if (C !== classes) {
        throw new KdShapeError(
          'CLASS_COUNT_MISMATCH',
          `the model returned ${classes} classes, then ${C}: it must return the same classes for every batch`,
        );
      }
      logits ??= new Float32Array(texts.length * classes);
      rows.forEach((row, k) => logits!.set(values.subarray(k * C, (k + 1) * C), row * C));
    }
    return tf.tensor2d(logits!, [texts.length, classes!], 'float32');
  }

  /** One model call on sentences, padded to the longest; returns their logits, row-major. */
  private async run(texts: string[], offset: number): Promise<Float32Array> {
    let encoding: TransformersEncoding | undefined;
    let output: Record<string, unknown> | undefined;
    try {
      try {
        encoding = await this.tokenizer(texts, {
          padding: true,
          truncation: true,
          ...(this.maxLength === undefined ? {} : { max_length: this.maxLength }),
        });
        this.modelCalls++;
        output = (await this.model(encoding)) as Record<string, unknown> | undefined;
      } catch (error) {
        throw new KdConfigError(
          'TEACHER_FAILED',
          `the transformers.js ${encoding === undefined ? 'tokenizer' : 'model'} failed on ${texts.length} sentence(s) ` +
            `(the first: ${JSON.stringify(texts[0]!.slice(0, 80))}): ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
      this.rowsScored += texts.length;
      return readLogits(output?.logits as TransformersTensorLike | undefined, texts.length, offset);
    } finally {
      for (const t of [...Object.values(encoding ?? {}), ...Object.values(output ?? {})]) {
        (t as TransformersTensorLike | undefined)?.dispose?.();
      }
    }
  }
}

/** The logits tensor's values as float32, checked: `[rows, classes]`, finite. */
function readLogits(logits: TransformersTensorLike | undefined, rows: number, offset: number): Float32Array {
  if (logits === undefined || !Array.isArray(logits.dims)) {
    throw new KdConfigError(
      'INVALID_TEACHER',
      'the model returned no `logits`: load it with AutoModelForSequenceClassification (or pass a text-classification pipeline)',
    );
  }
  if (logits.dims.length !== 2 || logits.dims[0] !== rows) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `the model returned logits of shape [${logits.dims.join(', ')}] for ${rows} sentences: a text classifier returns [sentences, classes]`,
    );
  }
  const data = logits.data;
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
    throw new KdConfigError('INVALID_TEACHER', `the model returned ${logits.type} logits: kd-ts reads float32 (or float64)`);
  }
  const values = Float32Array.from(data);
  const classes = logits.dims[1]!;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new KdDataError(
        'NON_FINITE_TEACHER_OUTPUT',
        `the model returned ${values[i]} for sentence ${offset + Math.floor(i / classes)} of the length-sorted batch, class ${i % classes}: ` +
          'check the model and its tokenizer',
      );
    }
  }
  return values;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new KdConfigError('INVALID_OPTION', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}
