/**
 * What every teacher-output reader yields, and the id rules they share.
 * Browser-safe: no Node APIs.
 *
 * @packageDocumentation
 */
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { assertSameTopK, assertTopKRow } from './topKRows.js';

/**
 * An example id: a string, or an integer in `[0, 2^24)`. Larger integers are
 * rejected because `tf.data` batches numbers as float32, where 16777217
 * becomes 16777216: two examples would share a row. Use strings for larger ids.
 */
export type ExampleId = string | number;

/** Numeric ids must be below this (2^24, the last integer float32 holds exactly). */
export const MAX_NUMERIC_ID = 2 ** 24;

/**
 * A batch of teacher outputs as every reader yields it: `ids[i]` owns row `i`
 * of `logits` (row-major, `ids.length × numClasses` float32 values).
 *
 * Top-k rows (a top-k file or cache) also carry `topIds`: row `i` then holds
 * the teacher's k largest logits in `logits` and their class ids in `topIds`,
 * and `numClasses` is k, the values per row.
 */
export interface TeacherOutputBatch {
  /** One id per row. */
  ids: ExampleId[];
  /** `ids.length × numClasses` values, row after row. */
  logits: Float32Array;
  /** Values per row: the class count, or k for top-k rows. */
  numClasses: number;
  /** Top-k rows: the class id of each value in `logits` (same length), k distinct ids per row. */
  topIds?: Int32Array;
  /** Top-k rows: the teacher's class count when known (every class id is below it). */
  classCount?: number;
  /** Where row `i` came from, for messages: e.g. `part-00001.jsonl line 17`. */
  locate?: (row: number) => string;
}

/** Options shared by the readers. */
export interface ReadTeacherOutputsOptions {
  /** A name for messages (the file name); defaults to the format's name. */
  source?: string;
  /** Rows per yielded batch (default 1024). Arrow yields one batch per record batch instead. */
  batchSize?: number;
  /** The expected class count; by default the first row's length. */
  numClasses?: number;
}

/** Default rows per yielded batch. */
export const DEFAULT_READ_BATCH_SIZE = 1024;

/** `"abc"` or `17`, as it would appear in the file. */
export function formatId(id: unknown): string {
  if (typeof id === 'bigint') return `${id}n`;
  try {
    return JSON.stringify(id) ?? String(id);
  } catch {
    return String(id);
  }
}

const ID_FIX = 'ids must be strings or integers in [0, 2^24) (tf.data turns numbers into float32); use string ids for anything else';

/**
 * Checks one id and tracks the id kind of a stream: strings and numbers may
 * not mix (the lookup would miss: `17` and `"17"` are different ids).
 *
 * @internal
 */
export class IdChecker {
  private kind: 'string' | 'number' | undefined;
  private firstAt = '';

  /** The kind seen so far. */
  get idKind(): 'string' | 'number' | undefined {
    return this.kind;
  }

  /** Forgets the kind seen (after a batch that was refused as a whole). */
  reset(): void {
    this.kind = undefined;
    this.firstAt = '';
  }

  /** Returns the id, or throws `ID_TYPE_MISMATCH` naming `where`. */
  check(id: unknown, where: () => string): ExampleId {
    let kind: 'string' | 'number';
    if (typeof id === 'string') kind = 'string';
    else if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < MAX_NUMERIC_ID) kind = 'number';
    else if (typeof id === 'bigint' && id >= 0n && id < BigInt(MAX_NUMERIC_ID)) return this.check(Number(id), where);
    else {
      throw new KdDataError('ID_TYPE_MISMATCH', `${where()}: id ${formatId(id)} is not a valid id: ${ID_FIX}`);
    }
    if (this.kind === undefined) {
      this.kind = kind;
      this.firstAt = where();
    } else if (this.kind !== kind) {
      throw new KdDataError(
        'ID_TYPE_MISMATCH',
        `${where()}: id ${formatId(id)} is a ${kind} but the ids before it are ${this.kind}s (first at ${this.firstAt}): ` +
          'use one id type throughout (17 and "17" are different ids)',
      );
    }
    return id as ExampleId;
  }
}

/**
 * Throws `NON_FINITE_TEACHER_OUTPUT` when a row holds NaN or ±Infinity.
 *
 * @internal
 */
export function assertFiniteRow(values: Float32Array, start: number, numClasses: number, where: () => string): void {
  for (let c = 0; c < numClasses; c++) {
    const v = values[start + c]!;
    if (v - v !== 0) {
      throw new KdDataError(
        'NON_FINITE_TEACHER_OUTPUT',
        `${where()}: class ${c} is ${v}: teacher outputs must be finite; recompute them (a diverged teacher, or ` +
          'float64 values beyond float32 range)',
      );
    }
  }
}

/**
 * Throws `CLASS_COUNT_MISMATCH` unless `numClasses` equals `expected`.
 *
 * @internal
 */
export function assertClassCount(numClasses: number, expected: number | undefined, where: () => string): void {
  if (expected !== undefined && numClasses !== expected) {
    throw new KdShapeError(
      'CLASS_COUNT_MISMATCH',
      `${where()}: ${numClasses} classes but the rows before have ${expected}: every row needs one value per class, ` +
        'in the same class order',
    );
  }
}

/**
 * Collects rows and hands out batches of `batchSize`.
 *
 * @internal
 */
export class RowBatcher {
  private ids: ExampleId[] = [];
  private locations: string[] = [];
  private values: Float32Array;
  private classIds: Int32Array | undefined;
  private rows = 0;

  /**
   * @param batchSize - Rows per batch.
   * @param numClasses - Values per row (k for top-k rows).
   * @param topK - Collect top-k rows: a class id per value; `classCount` is the teacher's class count when known.
   */
  constructor(
    readonly batchSize: number,
    readonly numClasses: number,
    readonly topK?: { classCount?: number },
  ) {
    this.values = new Float32Array(batchSize * numClasses);
    if (topK !== undefined) this.classIds = new Int32Array(batchSize * numClasses);
  }

  /** Room for one more row's values, to fill in place. */
  nextRow(): Float32Array {
    return this.values.subarray(this.rows * this.numClasses, (this.rows + 1) * this.numClasses);
  }

  /** Room for one more row's class ids (top-k rows only), to fill in place. */
  nextIds(): Int32Array {
    return this.classIds!.subarray(this.rows * this.numClasses, (this.rows + 1) * this.numClasses);
  }

  /** Commits the row filled through {@link RowBatcher.nextRow}; returns a batch when full. */
  commit(id: ExampleId, location: string): TeacherOutputBatch | undefined {
    this.ids.push(id);
    this.locations.push(location);
    this.rows++;
    return this.rows === this.batchSize ? this.flush() : undefined;
  }

  /** The rows collected so far, or undefined when none. */
  flush(): TeacherOutputBatch | undefined {
    if (this.rows === 0) return undefined;
    const locations = this.locations;
    const full = this.rows === this.batchSize;
    const size = this.rows * this.numClasses;
    const batch: TeacherOutputBatch = {
      ids: this.ids,
      logits: full ? this.values : this.values.slice(0, size),
      numClasses: this.numClasses,
      locate: (row) => locations[row] ?? `row ${row}`,
    };
    if (this.classIds !== undefined) {
      batch.topIds = full ? this.classIds : this.classIds.slice(0, size);
      if (this.topK?.classCount !== undefined) batch.classCount = this.topK.classCount;
      this.classIds = new Int32Array(this.batchSize * this.numClasses);
    }
    this.ids = [];
    this.locations = [];
    this.values = new Float32Array(this.batchSize * this.numClasses);
    this.rows = 0;
    return batch;
  }
}

/**
 * Validates a stream of batches from several files as one: same class count,
 * one id kind, finite values; for top-k batches, one k, valid distinct class
 * ids, and no full rows among them. Batches pass through unchanged.
 *
 * @param batches - Batches from any reader, or several readers chained.
 * @returns The same batches.
 * @throws {@link KdShapeError} `CLASS_COUNT_MISMATCH`; {@link KdDataError} `ID_TYPE_MISMATCH`,
 *   `NON_FINITE_TEACHER_OUTPUT`, `INVALID_TOP_K_IDS`; {@link KdConfigError} `INVALID_TOP_K` (another k,
 *   or top-k and full rows mixed); naming the row's file and line or row.
 *
 * @example
 * ```ts
 * import { checkTeacherOutputs, readJsonlTeacherOutputs } from 'kd-ts/io';
 * const shards = ['{"id": 0, "logits": [2.5, -1]}\n', '{"id": 1, "logits": [0, 3]}\n']; // e.g. two files' text
 * async function* all() {
 *   for (const [i, text] of shards.entries()) yield* readJsonlTeacherOutputs(text, { source: `part-${i}` });
 * }
 * for await (const batch of checkTeacherOutputs(all())) console.log(batch.ids.length);
 * ```
 */
export function checkTeacherOutputs(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
): AsyncGenerator<TeacherOutputBatch> {
  return checkTeacherOutputsStream(batches);
}

async function* checkTeacherOutputsStream(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
): AsyncGenerator<TeacherOutputBatch> {
  const ids = new IdChecker();
  let numClasses: number | undefined;
  let topK: boolean | undefined;
  let classCount: number | undefined;
  for await (const batch of batches) {
    const locate = (row: number) => batch.locate?.(row) ?? `row ${row}`;
    assertBatchShape(batch);
    const isTopK = batch.topIds !== undefined;
    assertSameForm(isTopK, topK, () => locate(0));
    topK = isTopK;
    if (isTopK) assertSameTopK(batch.numClasses, numClasses, () => locate(0));
    else assertClassCount(batch.numClasses, numClasses, () => locate(0));
    numClasses = batch.numClasses;
    if (batch.classCount !== undefined) {
      assertClassCount(batch.classCount, classCount, () => `${locate(0)}: the top-k rows say`);
      classCount = batch.classCount;
    }
    for (let row = 0; row < batch.ids.length; row++) {
      ids.check(batch.ids[row], () => locate(row));
      const where = () => `${locate(row)} (id ${formatId(batch.ids[row])})`;
      assertFiniteRow(batch.logits, row * batch.numClasses, batch.numClasses, where);
      if (batch.topIds !== undefined) assertTopKRow(batch.topIds, row * batch.numClasses, batch.numClasses, classCount, where);
    }
    yield batch;
  }
}

/**
 * Throws `LENGTH_MISMATCH` unless `logits` holds `ids.length × numClasses` values.
 *
 * @internal
 */
export function assertBatchShape(batch: TeacherOutputBatch): void {
  if (!Number.isInteger(batch.numClasses) || batch.numClasses < 1) {
    throw new KdShapeError('CLASS_COUNT_MISMATCH', `a teacher-output batch has numClasses ${batch.numClasses}: it must be a positive integer`);
  }
  if (batch.logits.length !== batch.ids.length * batch.numClasses) {
    throw new KdShapeError(
      'LENGTH_MISMATCH',
      `a teacher-output batch has ${batch.ids.length} ids and ${batch.logits.length} values, not ` +
        `${batch.ids.length} × ${batch.numClasses}: give one row of numClasses values per id`,
    );
  }
  if (batch.topIds !== undefined && batch.topIds.length !== batch.logits.length) {
    throw new KdShapeError(
      'LENGTH_MISMATCH',
      `a top-k teacher-output batch has ${batch.logits.length} values but ${batch.topIds.length} class ids: give one class id per value`,
    );
  }
}

/**
 * Throws `INVALID_TOP_K` when top-k rows and full rows mix in one stream.
 *
 * @internal
 */
export function assertSameForm(isTopK: boolean, before: boolean | undefined, where: () => string): void {
  if (before !== undefined && isTopK !== before) {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `${where()}: ${isTopK ? 'top-k rows (class ids and values)' : 'full rows (one value per class)'} after ` +
        `${before ? 'top-k rows' : 'full rows'}: one stream (file, shard directory, cache) holds one form; write them apart`,
    );
  }
}

/**
 * Decodes chunks of UTF-8 bytes (or strings) into text pieces, keeping
 * multi-byte characters split across chunks whole.
 *
 * @internal
 */
export function decodeText(
  chunks: string | Uint8Array | ArrayBuffer | AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
): AsyncGenerator<string> {
  return decodeTextStream(chunks);
}

async function* decodeTextStream(
  chunks: string | Uint8Array | ArrayBuffer | AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
): AsyncGenerator<string> {
  if (typeof chunks === 'string') {
    yield chunks;
    return;
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (bytes: Uint8Array, stream: boolean) => {
    try {
      return decoder.decode(bytes, { stream });
    } catch (error) {
      throw new KdDataError('CORRUPT_FILE', `the text is not valid UTF-8: it is not a text file, or it is damaged`, { cause: error });
    }
  };
  if (chunks instanceof ArrayBuffer) {
    yield decode(new Uint8Array(chunks), false);
    return;
  }
  if (chunks instanceof Uint8Array) {
    yield decode(chunks, false);
    return;
  }
  for await (const chunk of chunks) {
    yield typeof chunk === 'string' ? chunk : decode(chunk, true);
  }
  const rest = decode(new Uint8Array(0), false);
  if (rest !== '') yield rest;
}

/**
 * Raw bytes from the byte sources readers accept.
 *
 * @internal
 */
export function byteChunks(
  data: Uint8Array | ArrayBuffer | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  return byteChunksStream(data);
}

async function* byteChunksStream(
  data: Uint8Array | ArrayBuffer | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (data instanceof ArrayBuffer) yield new Uint8Array(data);
  else if (data instanceof Uint8Array) yield data;
  else for await (const chunk of data) yield chunk;
}
