/**
 * JSON Lines teacher outputs: one `{"id": ..., "logits": [...]}` object per
 * line. Browser-safe: reads strings, bytes or async iterables of chunks.
 *
 * @packageDocumentation
 */
import { KdDataError } from '../errors.js';
import {
  assertBatchShape,
  assertClassCount,
  assertFiniteRow,
  decodeText,
  DEFAULT_READ_BATCH_SIZE,
  formatId,
  IdChecker,
  RowBatcher,
  type ExampleId,
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
 * Memory holds one batch and one line at a time.
 *
 * @param text - The file's text or bytes, or an async iterable of chunks (e.g. a fetch body reader, a Node read stream).
 * @param options - See {@link ReadJsonlOptions}.
 * @returns An async generator of batches of `batchSize` rows, in file order.
 * @throws {@link KdDataError} `CORRUPT_FILE` for invalid JSON or a line that is not an object with the
 *   values array; `MISSING_ID`, `ID_TYPE_MISMATCH`, `NON_FINITE_TEACHER_OUTPUT`; {@link KdShapeError}
 *   `CLASS_COUNT_MISMATCH`. Every message names the source, the line and (when known) the id.
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
  let numClasses = options.numClasses;
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
    const values = record[field];
    if (!Array.isArray(values)) {
      throw new KdDataError(
        'CORRUPT_FILE',
        `${where()}: "${field}" is ${values === undefined ? 'missing' : 'not an array'}: write the outputs as "${field}": [v0, v1, ...]` +
          (options.field === undefined ? ", or pass { field: 'probs' } for another name" : ''),
      );
    }
    assertClassCount(values.length, numClasses, where);
    numClasses = values.length;
    batcher ??= new RowBatcher(batchSize, numClasses);
    const target = batcher.nextRow();
    for (let c = 0; c < numClasses; c++) {
      const v = values[c];
      // null is what some writers put for NaN; the finiteness check below names it.
      target[c] = typeof v === 'number' ? v : v === null ? NaN : badValue(v, c, where);
    }
    assertFiniteRow(target, 0, numClasses, where);
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

function badValue(value: unknown, index: number, where: () => string): never {
  throw new KdDataError('CORRUPT_FILE', `${where()}: class ${index} is ${formatId(value)}, not a number`);
}

/**
 * Writes teacher outputs as JSON Lines text, one row per line. Values are
 * written so that reading them back as float32 gives the same bits (the
 * shortest decimal that rounds back to the value; `-0` kept).
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
      assertFiniteRow(batch.logits, row * batch.numClasses, batch.numClasses, where);
      lines.push(jsonlLine(batch.ids[row]!, batch.logits, row * batch.numClasses, batch.numClasses, key));
    }
    yield lines.join('');
  }
}

function jsonlLine(id: ExampleId, values: Float32Array, start: number, numClasses: number, key: string): string {
  const parts = new Array<string>(numClasses);
  for (let c = 0; c < numClasses; c++) {
    const v = values[start + c]!;
    // JSON.stringify(-0) is "0": keep the sign so the bits survive.
    parts[c] = Object.is(v, -0) ? '-0' : String(v);
  }
  return `{"id":${JSON.stringify(id)},${key}:[${parts.join(',')}]}\n`;
}
