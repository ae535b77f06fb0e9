/**
 * JSON Lines teacher outputs: one `{"id": ..., "logits": [...]}` object per
 * line. Browser-safe: reads strings, bytes or async iterables of chunks.
 *
 * @packageDocumentation
 */
import { KdDataError, KdShapeError } from '../errors.js';
import { assertSameTopK, assertTopKRow } from './topKRows.js';
import {
  assertBatchShape,
  assertClassCount,
  assertFiniteRow,
  assertSameForm,
  decodeText,
  DEFAULT_READ_BATCH_SIZE,
  formatId,
  IdChecker,
  RowBatcher,
  type ReadTeacherOutputsOptions,
  type TeacherOutputBatch,
} from './teacherOutputs.js';

/** Options of {@link readJsonlTeacherOutputs}. */
export interface ReadJsonlOptions extends ReadTeacherOutputsOptions {
  /** The field holding the values (default `'logits'`; e.g. `'probs'`). */
  field?: string;
}

/** What {@link readJsonlTeacherOutputs} reads: the whole text, bytes, or chunks of either. */
export type TextSource =
  | string
  | Uint8Array
  | ArrayBuffer
  | AsyncIterable<string | Uint8Array>
  | Iterable<string | Uint8Array>;

/**
 * Reads JSON Lines teacher outputs, streaming: one `{"id": 17, "logits":
 * [1.5, -0.25, ...]}` object per line (blank lines skipped, `\r\n` accepted).
 * Values are rounded to float32 as they are read.
 *
 * Top-k rows, `{"id": 17, "top_ids": [3, 0], "top_logits": [4.5, 1.25]}` (the
 * teacher's k largest logits and their class ids, as a top-k cache writes
 * them), are read as top-k batches (`topIds` set, `numClasses` = k); a file
 * holds one form, and one k. With top-k rows, `numClasses` is the teacher's
 * class count, and class ids at or above it are refused.
 *
 * Memory holds one batch and one line at a time.
 *
 * @param text - The file's text or bytes, or an async iterable of chunks (e.g. a fetch body reader, a Node read stream).
 * @param options - See {@link ReadJsonlOptions}.
 * @returns An async generator of batches of `batchSize` rows, in file order.
 * @throws {@link KdDataError} `CORRUPT_FILE` for invalid JSON or a line that is not an object with the
 *   values array; `MISSING_ID`, `ID_TYPE_MISMATCH`, `NON_FINITE_TEACHER_OUTPUT`; `INVALID_TOP_K_IDS` for a
 *   top-k class id that is not an integer in range or appears twice in a row; {@link KdShapeError}
 *   `CLASS_COUNT_MISMATCH`, `LENGTH_MISMATCH` (`top_ids` and `top_logits` of different lengths);
 *   {@link KdConfigError} `INVALID_TOP_K` for rows with different k, or top-k and full rows mixed.
 *   Every message names the source, the line and (when known) the id.
 *
 * @example
 * ```ts
 * import { readJsonlTeacherOutputs } from 'kd-ts/io';
 * const text = '{"id": 0, "logits": [2.5, -1]}\n{"id": 1, "logits": [0, 3]}\n';
 * for await (const batch of readJsonlTeacherOutputs(text, { source: 'teacher.jsonl' })) {
 *   console.log(batch.ids, batch.logits); // [0, 1] Float32Array [2.5, -1, 0, 3]
 * }
 * ```
 */
export function readJsonlTeacherOutputs(
  text: TextSource,
  options: ReadJsonlOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  return readJsonlTeacherOutputsStream(text, options);
}

async function* readJsonlTeacherOutputsStream(
  text: TextSource,
  options: ReadJsonlOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  const source = options.source ?? 'JSONL';
  const field = options.field ?? 'logits';
  const batchSize = options.batchSize ?? DEFAULT_READ_BATCH_SIZE;
  const ids = new IdChecker();
  let batcher: RowBatcher | undefined;
  let width: number | undefined; // values per row: the class count, or k
  let topK: boolean | undefined; // the first row decides: full rows, or top-k rows
  let lineNumber = 0;

  const parseLine = (line: string, isLast: boolean): TeacherOutputBatch | undefined => {
    lineNumber++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') return undefined;
    const at = `${source} line ${lineNumber}`;
    const row = parseJson(line, at, isLast);
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new KdDataError('CORRUPT_FILE', `${at}: expected an object {"id": ..., "${field}": [...]}, got ${line.slice(0, 60)}`);
    }
    const record = row as Record<string, unknown>;
    if (!('id' in record) || record.id === null) {
      throw new KdDataError('MISSING_ID', `${at}: the object has no "id": write one id per line, {"id": ..., "${field}": [...]}`);
    }
    const id = ids.check(record.id, () => at);
    const where = () => `${at} (id ${formatId(id)})`;
    const isTopK = 'top_ids' in record || 'top_logits' in record;
    assertSameForm(isTopK, topK, where);
    topK = isTopK;
    const values = isTopK ? topKField(record, 'top_logits', where) : record[field];
    if (!Array.isArray(values)) {
      throw new KdDataError(
        'CORRUPT_FILE',
        `${where()}: "${field}" is ${values === undefined ? 'missing' : 'not an array'}: write the outputs as "${field}": [v0, v1, ...]` +
          (options.field === undefined ? ", or pass { field: 'probs' } for another name" : ''),
      );
    }
    if (isTopK) {
      const classIds = topKField(record, 'top_ids', where);
      if (classIds.length !== values.length) {
        throw new KdShapeError(
          'LENGTH_MISMATCH',
          `${where()}: ${classIds.length} "top_ids" but ${values.length} "top_logits": give one logit per class id`,
        );
      }
      assertSameTopK(values.length, width, where);
    } else {
      assertClassCount(values.length, width ?? options.numClasses, where);
    }
    width = values.length;
    batcher ??= new RowBatcher(batchSize, width, isTopK ? { ...(options.numClasses === undefined ? {} : { classCount: options.numClasses }) } : undefined);
    const target = batcher.nextRow();
    for (let c = 0; c < width; c++) {
      const v = values[c];
      // null is what some writers put for NaN; the finiteness check below names it.
      target[c] = typeof v === 'number' ? v : v === null ? NaN : badValue(v, c, where);
    }
    assertFiniteRow(target, 0, width, where);
    if (isTopK) {
      const classIds = record.top_ids as unknown[];
      const targetIds = batcher.nextIds();
      for (let j = 0; j < width; j++) {
        const c = classIds[j];
        if (typeof c !== 'number' || !Number.isInteger(c)) {
          throw new KdDataError('INVALID_TOP_K_IDS', `${where()}: "top_ids" entry ${j} is ${formatId(c)}, not an integer class id`);
        }
        targetIds[j] = c;
      }
      assertTopKRow(classIds as number[], 0, width, options.numClasses, where);
    }
    return batcher.commit(id, at);
  };

  let pending = '';
  for await (const piece of decodeText(text)) {
    pending += piece;
    let start = 0;
    for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n', start)) {
      const batch = parseLine(pending.slice(start, newline), false);
      start = newline + 1;
      if (batch !== undefined) yield batch;
    }
    pending = pending.slice(start);
  }
  if (pending !== '') {
    const batch = parseLine(pending, true);
    if (batch !== undefined) yield batch;
  }
  const last = batcher?.flush();
  if (last !== undefined) yield last;
}

function parseJson(line: string, at: string, isLast: boolean): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    if (/(?<![\w"])-?(NaN|Infinity)(?![\w"])/.test(line)) {
      throw new KdDataError(
        'NON_FINITE_TEACHER_OUTPUT',
        `${at}${idHint(line)}: the line holds NaN or Infinity (Python's json writes them for non-finite floats): ` +
          'teacher outputs must be finite; recompute them',
        { cause: error },
      );
    }
    throw new KdDataError(
      'CORRUPT_FILE',
      `${at}${idHint(line)}: invalid JSON (${(error as Error).message})` +
        (isLast ? ': the last line has no newline, the file may be truncated' : ': write one JSON object per line'),
      { cause: error },
    );
  }
}

/** ` (id 17)` from a line too broken to parse, when the id can still be seen. */
function idHint(line: string): string {
  const match = /"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)/.exec(line);
  return match === null ? '' : ` (id ${match[1]})`;
}

function topKField(record: Record<string, unknown>, name: 'top_ids' | 'top_logits', where: () => string): unknown[] {
  const value = record[name];
  if (!Array.isArray(value)) {
    throw new KdDataError(
      'CORRUPT_FILE',
      `${where()}: "${name}" is ${value === undefined ? 'missing' : 'not an array'}: a top-k row is ` +
        '{"id": ..., "top_ids": [class ids], "top_logits": [their logits]}',
    );
  }
  return value;
}

function badValue(value: unknown, index: number, where: () => string): never {
  throw new KdDataError('CORRUPT_FILE', `${where()}: class ${index} is ${formatId(value)}, not a number`);
}

/**
 * Writes teacher outputs as JSON Lines text, one row per line. Values are
 * written so that reading them back as float32 gives the same bits (the
 * shortest decimal that rounds back to the value; `-0` kept). Top-k batches
 * are written as `{"id": ..., "top_ids": [...], "top_logits": [...]}` rows.
 *
 * @param batches - Batches to write (e.g. `cache.batches()` or a reader's output).
 * @param options - `field`: the name of the values array (default `'logits'`).
 * @returns An async generator of text chunks, one per batch.
 *
 * @example
 * ```ts
 * import { encodeJsonlTeacherOutputs } from 'kd-ts/io';
 * const batch = { ids: [0, 1], logits: new Float32Array([2.5, -1, 0, 3]), numClasses: 2 };
 * let text = '';
 * for await (const chunk of encodeJsonlTeacherOutputs([batch])) text += chunk;
 * // {"id":0,"logits":[2.5,-1]}\n{"id":1,"logits":[0,3]}\n
 * ```
 */
export function encodeJsonlTeacherOutputs(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: { field?: string } = {},
): AsyncGenerator<string> {
  return encodeJsonlTeacherOutputsStream(batches, options);
}

async function* encodeJsonlTeacherOutputsStream(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: { field?: string } = {},
): AsyncGenerator<string> {
  const key = JSON.stringify(options.field ?? 'logits');
  for await (const batch of batches) {
    assertBatchShape(batch);
    const lines: string[] = [];
    for (let row = 0; row < batch.ids.length; row++) {
      const where = () => `${batch.locate?.(row) ?? `row ${row}`} (id ${formatId(batch.ids[row])})`;
      const start = row * batch.numClasses;
      assertFiniteRow(batch.logits, start, batch.numClasses, where);
      if (batch.topIds === undefined) {
        lines.push(`{"id":${JSON.stringify(batch.ids[row]!)},${key}:[${floatList(batch.logits, start, batch.numClasses)}]}\n`);
        continue;
      }
      assertTopKRow(batch.topIds, start, batch.numClasses, batch.classCount, where);
      const classIds = batch.topIds.subarray(start, start + batch.numClasses).join(',');
      lines.push(`{"id":${JSON.stringify(batch.ids[row]!)},"top_ids":[${classIds}],"top_logits":[${floatList(batch.logits, start, batch.numClasses)}]}\n`);
    }
    yield lines.join('');
  }
}

function floatList(values: Float32Array, start: number, count: number): string {
  const parts = new Array<string>(count);
  for (let c = 0; c < count; c++) {
    const v = values[start + c]!;
    // JSON.stringify(-0) is "0": keep the sign so the bits survive.
    parts[c] = Object.is(v, -0) ? '-0' : String(v);
  }
  return parts.join(',');
}
