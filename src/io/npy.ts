/**
 * NPY teacher outputs: a float32 (or float64, float16) `[N, C]` array as
 * `np.save` writes it, plus the N ids in a separate list. Browser-safe.
 *
 * @packageDocumentation
 */
import { float16ToFloat32, parse as parseNpy } from 'npyjs';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import {
  assertBatchShape,
  assertFiniteRow,
  byteChunks,
  DEFAULT_READ_BATCH_SIZE,
  formatId,
  IdChecker,
  MAX_NUMERIC_ID,
  type ExampleId,
  type ReadTeacherOutputsOptions,
  type TeacherOutputBatch,
} from './teacherOutputs.js';

/** Options of {@link readNpyTeacherOutputs}. */
export interface ReadNpyOptions extends Omit<ReadTeacherOutputsOptions, 'numClasses'> {
  /** A name for the id list in messages (e.g. `teacher.ids.json`). */
  idsSource?: string;
}

/** What {@link readNpyTeacherOutputs} reads: the file's bytes, or chunks of them. */
export type ByteSource = Uint8Array | ArrayBuffer | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ITEM_SIZE: Record<string, number> = { f2: 2, f4: 4, f8: 8, i4: 4, i8: 8 };

/**
 * Reads an NPY array of teacher outputs, streaming: `[N, C]` float32,
 * float64 or float16 (little-endian, C order), as `np.save(path,
 * logits.astype(np.float32))` writes it, with its N ids given separately
 * (see {@link parseIdList}). float64 and float16 values are rounded to the
 * nearest float32, as numpy's `astype(np.float32)` does.
 *
 * The header is parsed with `npyjs`; the rows are then read as they arrive,
 * so memory holds one batch at a time.
 *
 * @param data - The file's bytes, or an async iterable of byte chunks.
 * @param ids - One id per row, in row order.
 * @param options - See {@link ReadNpyOptions}.
 * @returns An async generator of batches of `batchSize` rows.
 * @throws {@link KdDataError} `CORRUPT_FILE` when the magic is missing, the header is unreadable, the dtype
 *   is not a little-endian float, the array is not 2-D C-ordered, or the data is shorter or longer than the
 *   header says (truncated file); `NON_FINITE_TEACHER_OUTPUT` naming the row and id; `ID_TYPE_MISMATCH`.
 * @throws {@link KdShapeError} `LENGTH_MISMATCH` when the id count differs from the row count.
 *
 * @example
 * ```ts
 * import { parseIdList, readNpyTeacherOutputs } from 'kd-ts/io';
 * const bytes = new Uint8Array(await (await fetch('/teacher.npy')).arrayBuffer());
 * const ids = parseIdList(await (await fetch('/teacher.ids.json')).text());
 * for await (const batch of readNpyTeacherOutputs(bytes, ids, { source: 'teacher.npy' })) {
 *   console.log(batch.ids.length, batch.numClasses);
 * }
 * ```
 */
export function readNpyTeacherOutputs(
  data: ByteSource,
  ids: readonly ExampleId[],
  options: ReadNpyOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  return readNpyTeacherOutputsStream(data, ids, options);
}

async function* readNpyTeacherOutputsStream(
  data: ByteSource,
  ids: readonly ExampleId[],
  options: ReadNpyOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  const source = options.source ?? 'NPY';
  const idsSource = options.idsSource ?? 'the id list';
  const checker = new IdChecker();
  ids.forEach((id, i) => checker.check(id, () => `${idsSource} entry ${i}`));
  const rows = readNpyRows(data, { source, rows: ids.length, idsSource, batchSize: options.batchSize ?? DEFAULT_READ_BATCH_SIZE, kind: 'float' });
  for await (const { header, bytes, firstRow } of rows) {
    const logits = toFloat32(bytes, header.dtype);
    const count = logits.length / header.numClasses;
    for (let r = 0; r < count; r++) {
      assertFiniteRow(logits, r * header.numClasses, header.numClasses, () => `${source} row ${firstRow + r} (id ${formatId(ids[firstRow + r])})`);
    }
    yield {
      ids: ids.slice(firstRow, firstRow + count),
      logits,
      numClasses: header.numClasses,
      locate: (r) => `${source} row ${firstRow + r}`,
    };
  }
}

/** Options of {@link readNpyRows}. */
interface ReadNpyRowsOptions {
  source: string;
  /** The rows expected (one per id). */
  rows: number;
  idsSource: string;
  batchSize: number;
  /** The dtypes accepted: little-endian floats (f2, f4, f8) or integers (i4, i8). */
  kind: 'float' | 'int';
}

/**
 * Streams the rows of a 2-D NPY array as raw little-endian bytes, `batchSize`
 * rows at a time (the last batch shorter), after checking the header.
 *
 * @throws `CORRUPT_FILE` (magic, header, dtype, truncated or overlong data), `LENGTH_MISMATCH` (rows ≠ ids).
 * @internal
 */
export async function* readNpyRows(
  data: ByteSource,
  options: ReadNpyRowsOptions,
): AsyncGenerator<{ header: NpyHeader; bytes: Uint8Array; firstRow: number }> {
  const { source, idsSource } = options;
  let header: NpyHeader | undefined;
  let pending: Uint8Array = new Uint8Array(0); // bytes not yet consumed
  let row = 0;
  let batch: Uint8Array | undefined;
  let batchBytes = 0;
  let rowBytes = 0;

  for await (const chunk of byteChunks(data)) {
    let input = chunk;
    if (header === undefined) {
      pending = concat(pending, input);
      const parsed = tryParseHeader(pending, source, options.kind);
      if (parsed === undefined) continue;
      header = parsed;
      if (header.rows !== options.rows) {
        throw new KdShapeError(
          'LENGTH_MISMATCH',
          `${idsSource} has ${options.rows} ids but ${source} has ${header.rows} rows: give one id per row, in row order`,
        );
      }
      rowBytes = header.numClasses * ITEM_SIZE[header.dtype]!;
      batch = new Uint8Array(Math.max(1, Math.min(options.batchSize, header.rows)) * rowBytes);
      input = pending.subarray(header.dataOffset);
      pending = new Uint8Array(0);
    }
    // Copy into the batch buffer; rows split across chunks are joined there.
    let offset = 0;
    while (offset < input.length) {
      const expectedBytes = (header.rows - row) * rowBytes - batchBytes;
      if (expectedBytes <= 0) {
        throw new KdDataError(
          'CORRUPT_FILE',
          `${source} holds more data than its header says (${header.rows} rows of ${header.numClasses} ${header.descr}): ` +
            'the file is damaged or was written by two writers; write it again',
        );
      }
      const take = Math.min(input.length - offset, batch!.length - batchBytes, expectedBytes);
      batch!.set(input.subarray(offset, offset + take), batchBytes);
      batchBytes += take;
      offset += take;
      if (batchBytes === batch!.length || (header.rows - row) * rowBytes === batchBytes) {
        const firstRow = row;
        row += batchBytes / rowBytes;
        const bytes = batch!.slice(0, batchBytes); // aligned, and owned by the batch
        batchBytes = 0;
        yield { header, bytes, firstRow };
      }
    }
  }
  if (header === undefined) {
    throw new KdDataError(
      'CORRUPT_FILE',
      `${source} ends inside its header (${pending.length} bytes): the file is truncated or is not an NPY file`,
    );
  }
  if (row < header.rows) {
    const missing = (header.rows - row) * rowBytes - batchBytes;
    throw new KdDataError(
      'CORRUPT_FILE',
      `${source}'s header says ${header.rows} rows of ${header.numClasses} ${header.descr} values but the data stops ` +
        `after ${row + Math.floor(batchBytes / rowBytes)} full rows (${missing} bytes short): the file is truncated; write it again`,
    );
  }
}

/** What the NPY header says. @internal */
export interface NpyHeader {
  dtype: 'f2' | 'f4' | 'f8' | 'i4' | 'i8';
  descr: string;
  rows: number;
  numClasses: number;
  dataOffset: number;
}

/** Parses the header once enough bytes are in; undefined while more are needed. */
function tryParseHeader(bytes: Uint8Array, source: string, kind: 'float' | 'int'): NpyHeader | undefined {
  for (let i = 0; i < Math.min(bytes.length, MAGIC.length); i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw new KdDataError('CORRUPT_FILE', `${source} is not an NPY file (the \\x93NUMPY magic is missing): save it with np.save`);
    }
  }
  if (bytes.length < 12) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const lengthBytes = major <= 1 ? 2 : 4;
  const headerLength = lengthBytes === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (bytes.length < dataOffset) return undefined;
  const text = new TextDecoder('latin1').decode(bytes.subarray(8 + lengthBytes, dataOffset));
  const fail = (why: string): never => {
    throw new KdDataError('CORRUPT_FILE', `${source}: ${why} (header ${text.trim()})`);
  };
  const order = /'descr'\s*:\s*'([<>|=]?)/.exec(text)?.[1];
  if (order === '>') fail(`the array is big-endian: save it with .astype('<${kind === 'int' ? 'i4' : 'f4'}')`);
  // npyjs reads the dictionary. Give it a version-1 header padded to 8 bytes so
  // its zero-length typed-array view of the (absent) data stays aligned.
  let dict = text.trimEnd();
  dict += ' '.repeat(7 - ((10 + dict.length) % 8)) + '\n';
  const headerOnly = new Uint8Array(10 + dict.length);
  headerOnly.set(MAGIC);
  headerOnly.set([1, 0, dict.length & 0xff, dict.length >> 8], 6);
  for (let i = 0; i < dict.length; i++) headerOnly[10 + i] = dict.charCodeAt(i);
  let parsed: ReturnType<typeof parseNpy>;
  try {
    parsed = parseNpy(headerOnly.buffer);
  } catch (error) {
    return fail(`unsupported or unreadable header: ${(error as Error).message}; save float32 logits with np.save`);
  }
  const dtype = parsed.dtype;
  if (kind === 'int' && dtype !== 'i4' && dtype !== 'i8') {
    return fail(`dtype ${dtype} is not int32 or int64: save the class ids with top_ids.astype(np.int32)`);
  }
  if (kind === 'float' && dtype !== 'f2' && dtype !== 'f4' && dtype !== 'f8') {
    return fail(`dtype ${dtype} is not a float: save the logits with logits.astype(np.float32)`);
  }
  if (parsed.shape.length !== 2 || parsed.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    return fail(`the array has shape (${parsed.shape.join(', ')}), not (rows, classes): save a 2-D array`);
  }
  const [rows, numClasses] = parsed.shape as [number, number];
  if (numClasses < 1) return fail('the array has 0 classes');
  if (parsed.fortranOrder && rows > 1 && numClasses > 1) {
    fail('the array is in Fortran order: save np.ascontiguousarray(logits) instead');
  }
  return { dtype: dtype as NpyHeader['dtype'], descr: `<${dtype}`, rows, numClasses, dataOffset };
}

/** Little-endian float bytes (any alignment) to float32, rounding to nearest. */
function toFloat32(copy: Uint8Array, dtype: NpyHeader['dtype']): Float32Array {
  if (dtype === 'f4') return new Float32Array(copy.buffer);
  if (dtype === 'f8') return Float32Array.from(new Float64Array(copy.buffer));
  const halves = new Uint16Array(copy.buffer);
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = float16ToFloat32(halves[i]!);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Options of {@link parseIdList}. */
export interface ParseIdListOptions {
  /** A name for messages (the file name). */
  source?: string;
  /**
   * `'json'`: a JSON array of ids; `'lines'`: one id per line. By default, a
   * text starting with `[` is JSON, anything else lines.
   */
  format?: 'json' | 'lines';
  /**
   * For `'lines'`: `'auto'` (default) reads every line as an integer when all
   * are integers in `[0, 2^24)` without leading zeros, else all as strings;
   * `'string'` keeps every line a string; `'number'` requires integers.
   */
  idType?: 'auto' | 'string' | 'number';
}

/**
 * Parses a list of example ids: a JSON array (`["a", "b"]`, `[0, 1, 2]`, as
 * `json.dump(ids, f)` writes it) or one id per line (as
 * `np.savetxt(f, ids, fmt='%d')` or `'\n'.join(ids)` writes it).
 *
 * @param text - The list's text.
 * @param options - See {@link ParseIdListOptions}.
 * @returns The ids, in order.
 * @throws {@link KdDataError} `CORRUPT_FILE` for invalid JSON, not an array, or an empty line;
 *   `ID_TYPE_MISMATCH` for floats, negative or too large integers, or mixed strings and numbers, naming the entry.
 *
 * @example
 * ```ts
 * import { parseIdList } from 'kd-ts/io';
 * parseIdList('[3, 1, 2]'); // [3, 1, 2]
 * parseIdList('s-001\ns-002\n'); // ['s-001', 's-002']
 * parseIdList('7\n8\n'); // [7, 8]
 * ```
 */
export function parseIdList(text: string, options: ParseIdListOptions = {}): ExampleId[] {
  const source = options.source ?? 'the id list';
  const checker = new IdChecker();
  const format = options.format ?? (text.trimStart().startsWith('[') ? 'json' : 'lines');
  if (format === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new KdDataError('CORRUPT_FILE', `${source}: invalid JSON (${(error as Error).message}): the file is truncated or damaged`, {
        cause: error,
      });
    }
    if (!Array.isArray(parsed)) {
      throw new KdDataError('CORRUPT_FILE', `${source}: expected a JSON array of ids, got ${typeof parsed}`);
    }
    return parsed.map((id, i) => checker.check(id, () => `${source} entry ${i}`));
  }
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    if (line === '') {
      throw new KdDataError('CORRUPT_FILE', `${source} line ${i + 1} is empty: write one id per line, with no blank lines`);
    }
  });
  const idType = options.idType ?? 'auto';
  const isInteger = (line: string) => /^(0|[1-9]\d{0,7})$/.test(line) && Number(line) < MAX_NUMERIC_ID;
  const asNumbers = idType === 'number' || (idType === 'auto' && lines.length > 0 && lines.every(isInteger));
  return lines.map((line, i) => {
    const where = () => `${source} line ${i + 1}`;
    if (!asNumbers) return checker.check(line, where);
    if (!isInteger(line)) {
      throw new KdDataError(
        'ID_TYPE_MISMATCH',
        `${where()}: ${JSON.stringify(line)} is not an integer in [0, 2^24): pass idType: 'string' to read the ids as strings`,
      );
    }
    return checker.check(Number(line), where);
  });
}

/**
 * Writes ids as a JSON array, one per line: the id file {@link parseIdList}
 * reads back with the same types.
 *
 * @param ids - The ids.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { encodeIdList } from 'kd-ts/io';
 * encodeIdList([0, 1]); // '[\n0,\n1\n]\n'
 * ```
 */
export function encodeIdList(ids: readonly ExampleId[]): string {
  return ids.length === 0 ? '[]\n' : `[\n${ids.map((id) => JSON.stringify(id)).join(',\n')}\n]\n`;
}

/**
 * An NPY (version 1.0) header for a little-endian float32 `[rows, numClasses]`
 * array, padded with spaces to `length` bytes (default: the next multiple of
 * 64, as numpy pads).
 *
 * @param rows - N.
 * @param numClasses - C.
 * @param length - Total header length to pad to (a multiple of 64, at least the natural length).
 * @param descr - `'<f4'` (default) or `'<i4'` (top-k class ids).
 * @returns The header bytes; the data follows directly.
 *
 * Internal (on no public entry): the NPY encoder and kd-ts/node's file writer
 * use it; `npyHeader(2, 3)` is 64 bytes, `"\x93NUMPY\x01\x00v\x00{'descr': '<f4', ...}"`.
 */
export function npyHeader(rows: number, numClasses: number, length?: number, descr: '<f4' | '<i4' = '<f4'): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${numClasses}), }`;
  const natural = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const total = length ?? natural;
  if (total < natural || total % 64 !== 0 || total - 10 > 0xffff) {
    throw new KdShapeError('LENGTH_MISMATCH', `an NPY header for (${rows}, ${numClasses}) needs ${natural} bytes, got ${total}`);
  }
  const padded = dict + ' '.repeat(total - 10 - dict.length - 1) + '\n';
  const out = new Uint8Array(total);
  out.set(MAGIC);
  out.set([1, 0, (total - 10) & 0xff, (total - 10) >> 8], 6);
  for (let i = 0; i < padded.length; i++) out[10 + i] = padded.charCodeAt(i);
  return out;
}

/**
 * Encodes teacher outputs as an NPY float32 `[rows, C]` array: the header,
 * then each batch's bytes. Write the ids with {@link encodeIdList}.
 *
 * @param batches - The rows, in order.
 * @param shape - `rows` (N, needed up front by the header) and `numClasses`.
 * @returns An async generator of byte chunks (views of the batches' data, no copies).
 * @throws {@link KdShapeError} `LENGTH_MISMATCH` when the batches hold another number of rows, and
 *   `CLASS_COUNT_MISMATCH` for a batch with another class count.
 *
 * @example
 * ```ts
 * import { encodeNpyTeacherOutputs } from 'kd-ts/io';
 * const batch = { ids: ['a', 'b'], logits: new Float32Array([1, 2, 3, 4]), numClasses: 2 };
 * const chunks: Uint8Array[] = [];
 * for await (const chunk of encodeNpyTeacherOutputs([batch], { rows: 2, numClasses: 2 })) chunks.push(chunk);
 * ```
 */
export function encodeNpyTeacherOutputs(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  shape: { rows: number; numClasses: number },
): AsyncGenerator<Uint8Array> {
  return encodeNpyTeacherOutputsStream(batches, shape);
}

async function* encodeNpyTeacherOutputsStream(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  shape: { rows: number; numClasses: number },
): AsyncGenerator<Uint8Array> {
  yield npyHeader(shape.rows, shape.numClasses);
  let rows = 0;
  for await (const batch of batches) {
    assertBatchShape(batch);
    if (batch.topIds !== undefined) {
      throw new KdConfigError('INVALID_TOP_K', 'the batches hold top-k rows: encode them with encodeNpyTopKTeacherOutputs (two arrays)');
    }
    if (batch.numClasses !== shape.numClasses) {
      throw new KdShapeError('CLASS_COUNT_MISMATCH', `a batch has ${batch.numClasses} classes but the NPY header says ${shape.numClasses}`);
    }
    rows += batch.ids.length;
    if (rows > shape.rows) break;
    yield new Uint8Array(batch.logits.buffer, batch.logits.byteOffset, batch.logits.byteLength);
  }
  if (rows !== shape.rows) {
    throw new KdShapeError('LENGTH_MISMATCH', `the NPY header says ${shape.rows} rows but the batches hold ${rows > shape.rows ? 'more' : rows}`);
  }
}
