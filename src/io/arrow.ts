/**
 * Arrow IPC teacher outputs: columns `id` (utf8 or integer) and `logits`
 * (FixedSizeList or List of float32/float64), as pyarrow writes them.
 * `apache-arrow` is an optional peer dependency, loaded only here, on use.
 * Browser-safe.
 *
 * @packageDocumentation
 */
import type * as Arrow from 'apache-arrow';
import { float16ToFloat32 } from 'npyjs';
import { KdConfigError, KdDataError, KdError, KdShapeError } from '../errors.js';
import {
  assertBatchShape,
  assertClassCount,
  assertFiniteRow,
  byteChunks,
  formatId,
  IdChecker,
  type ExampleId,
  type TeacherOutputBatch,
} from './teacherOutputs.js';

type ArrowModule = typeof Arrow;

/**
 * An open file with random access, as Node's `fs.promises.FileHandle`:
 * with it, Arrow IPC files (not only streams) are read one record batch at a time.
 */
export interface ArrowFileHandle {
  /** The file descriptor. */
  readonly fd: number;
  /** The file's size. */
  stat(): Promise<{ size: number }>;
  /** Reads `length` bytes at `position` into `buffer` at `offset`. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** Closes the file. */
  close(): Promise<void>;
}

/** What {@link readArrowTeacherOutputs} reads. */
export type ArrowSource = Uint8Array | ArrayBuffer | AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ArrowFileHandle;

/** Options of {@link readArrowTeacherOutputs}. */
export interface ReadArrowOptions {
  /** A name for messages (the file name). */
  source?: string;
  /** The id column (default `'id'`). */
  idColumn?: string;
  /** The values column (default `'logits'`). */
  logitsColumn?: string;
  /** The expected class count; by default the first row's length. */
  numClasses?: number;
}

const ARROW_MAGIC = 'ARROW1';

/**
 * Loads `apache-arrow`, the optional peer dependency behind the Arrow reader
 * and writer.
 *
 * @returns The module.
 * @throws {@link KdConfigError} `MISSING_DEPENDENCY` naming `npm install apache-arrow` when it is not installed.
 *
 * Internal (on no public entry): the Arrow reader and writer call it, e.g.
 * `const arrow = await loadArrow(); arrow.tableFromIPC(bytes)`.
 */
export async function loadArrow(): Promise<ArrowModule> {
  try {
    return await import('apache-arrow');
  } catch (error) {
    throw new KdConfigError(
      'MISSING_DEPENDENCY',
      'reading or writing Arrow IPC files needs the apache-arrow package: npm install apache-arrow',
      { cause: error },
    );
  }
}

/**
 * Reads Arrow IPC teacher outputs (the file format, `ARROW1` magic, as
 * `pa.ipc.new_file` / Feather v2 write it, or the stream format, as
 * `pa.ipc.new_stream` writes it), one record batch at a time. Columns: `id`
 * (utf8, large utf8, or integers in `[0, 2^24)`) and `logits`
 * (`FixedSizeList` or `List` of float32, float64 or float16; float64 is
 * rounded to float32).
 *
 * Memory holds one record batch: write files with several (pyarrow's
 * `write_table(table, max_chunksize=...)`). Streams and file handles are read
 * batch by batch; a file format passed as bytes or as a chunk stream is read
 * whole first (Arrow's footer is at the end).
 *
 * @param data - The bytes, an async iterable of byte chunks, or an open file handle (Node's `fs.promises.open`).
 * @param options - See {@link ReadArrowOptions}.
 * @returns An async generator of batches, one per record batch.
 * @throws {@link KdConfigError} `MISSING_DEPENDENCY` without `apache-arrow`.
 * @throws {@link KdDataError} `CORRUPT_FILE` when the magic or the end-of-stream marker is missing
 *   (a truncated file), Arrow cannot decode it, or a column is missing or of another type;
 *   `MISSING_ID` for a null id; `ID_TYPE_MISMATCH`; `NON_FINITE_TEACHER_OUTPUT` for NaN/Inf or null values,
 *   naming the row and id.
 * @throws {@link KdShapeError} `CLASS_COUNT_MISMATCH` for rows of different lengths.
 *
 * @example
 * ```ts
 * import { readArrowTeacherOutputs } from 'kd-ts/io';
 * const bytes = new Uint8Array(await (await fetch('/teacher.arrow')).arrayBuffer());
 * for await (const batch of readArrowTeacherOutputs(bytes, { source: 'teacher.arrow' })) {
 *   console.log(batch.ids.length, batch.numClasses);
 * }
 * ```
 */
export function readArrowTeacherOutputs(
  data: ArrowSource,
  options: ReadArrowOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  return readArrowTeacherOutputsStream(data, options);
}

async function* readArrowTeacherOutputsStream(
  data: ArrowSource,
  options: ReadArrowOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  const source = options.source ?? 'Arrow IPC';
  const idColumn = options.idColumn ?? 'id';
  const logitsColumn = options.logitsColumn ?? 'logits';
  const arrow = await loadArrow();
  const ids = new IdChecker();
  let numClasses = options.numClasses;
  let firstRow = 0;
  let batchIndex = 0;

  const { input, checkEnd } = await framed(data, source);
  let reader: Arrow.RecordBatchReader;
  try {
    reader = (await arrow.RecordBatchReader.from(input as Uint8Array)) as Arrow.RecordBatchReader;
    await reader.open();
  } catch (error) {
    throw corrupt(error, `${source}: Arrow cannot read the schema`);
  }
  const fields = reader.schema.fields;
  const idField = fields.find((f) => f.name === idColumn);
  const logitsField = fields.find((f) => f.name === logitsColumn);
  const columns = fields.map((f) => f.name).join(', ');
  if (idField === undefined || logitsField === undefined) {
    throw new KdDataError(
      'CORRUPT_FILE',
      `${source} has no column "${idField === undefined ? idColumn : logitsColumn}" (columns: ${columns}): ` +
        'write the ids as "id" and the outputs as "logits", or pass { idColumn, logitsColumn }',
    );
  }
  checkIdType(arrow, idField.type, source, idColumn);
  checkLogitsType(arrow, logitsField.type, source, logitsColumn);

  const iterator = (reader as AsyncIterable<Arrow.RecordBatch>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Arrow.RecordBatch>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw corrupt(error, `${source}: record batch ${batchIndex} cannot be read (after row ${firstRow})`);
      }
      if (next.done) break;
      const recordBatch = next.value;
      const rows = recordBatch.numRows;
      const rowOffset = firstRow;
      const locate = (row: number) => `${source} row ${rowOffset + row}`;
      const batchIds = readIds(recordBatch.getChild(idColumn)!, ids, locate);
      const where = (row: number) => () => `${locate(row)} (id ${formatId(batchIds[row])})`;
      const vector = recordBatch.getChild(logitsColumn)!;
      if (rows > 0) {
        const width = rowWidth(vector, 0);
        assertClassCount(width, numClasses, where(0));
        numClasses = width;
      }
      const logits = readLogits(vector, numClasses ?? 0, where);
      for (let row = 0; row < rows; row++) assertFiniteRow(logits, row * numClasses!, numClasses!, where(row));
      firstRow += rows;
      batchIndex++;
      if (rows > 0) yield { ids: batchIds, logits, numClasses: numClasses!, locate };
    }
  } finally {
    await iterator.return?.();
  }
  checkEnd();
}

/** Checks the magic up front and, after the last batch, the trailer Arrow itself does not check. */
async function framed(data: ArrowSource, source: string): Promise<{ input: unknown; checkEnd: () => void }> {
  const missing = (what: string) =>
    new KdDataError('CORRUPT_FILE', `${source}: ${what}: the file is truncated or is not Arrow IPC; write it again`);
  const kindOf = (head: Uint8Array): 'file' | 'stream' => {
    if (decodeAscii(head.subarray(0, 6)) === ARROW_MAGIC) return 'file';
    if (head.length >= 4 && head[0] === 0xff && head[1] === 0xff && head[2] === 0xff && head[3] === 0xff) return 'stream';
    throw missing('the Arrow magic is missing (no ARROW1 file header, no stream continuation marker)');
  };
  // The stream format ends with an end-of-stream marker whose last 4 bytes are 0;
  // without it, a stream cut at a batch boundary would read as complete.
  const checkTail = (kind: 'file' | 'stream', tail: Uint8Array) => {
    if (kind === 'file' && decodeAscii(tail.subarray(tail.length - 6)) !== ARROW_MAGIC) {
      throw missing('the ARROW1 magic at the end of the file is missing');
    }
    if (kind === 'stream' && (tail.length < 8 || tail.subarray(tail.length - 4).some((b) => b !== 0))) {
      throw missing('the end-of-stream marker is missing');
    }
  };
  if (isFileHandle(data)) {
    const { size } = await data.stat();
    const head = new Uint8Array(Math.min(8, size));
    const tail = new Uint8Array(Math.min(8, size));
    await data.read(head, 0, head.length, 0);
    await data.read(tail, 0, tail.length, size - tail.length);
    const kind = kindOf(head);
    checkTail(kind, tail);
    return { input: data, checkEnd: () => undefined };
  }
  if (data instanceof ArrayBuffer || data instanceof Uint8Array) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    checkTail(kindOf(bytes.subarray(0, 8)), bytes.subarray(Math.max(0, bytes.length - 8)));
    return { input: bytes, checkEnd: () => undefined };
  }
  // A chunk stream: check the head as it comes, remember the last bytes.
  let kind: 'file' | 'stream' | undefined;
  let tail = new Uint8Array(0);
  async function* watched(): AsyncGenerator<Uint8Array> {
    for await (const chunk of byteChunks(data as AsyncIterable<Uint8Array>)) {
      if (chunk.length === 0) continue;
      const joined = new Uint8Array(Math.min(8, tail.length + chunk.length));
      const keep = joined.length - Math.min(chunk.length, joined.length);
      joined.set(tail.subarray(tail.length - keep));
      joined.set(chunk.subarray(chunk.length - (joined.length - keep)), keep);
      if (kind === undefined && tail.length + chunk.length >= 8) {
        kind = kindOf(tail.length === 0 ? chunk : concatHead(tail, chunk));
      }
      tail = joined;
      yield chunk;
    }
  }
  return {
    input: watched(),
    checkEnd: () => checkTail(kind ?? kindOf(tail), tail),
  };
}

function concatHead(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + Math.min(b.length, 8));
  out.set(a);
  out.set(b.subarray(0, 8), a.length);
  return out;
}

function decodeAscii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function isFileHandle(value: unknown): value is ArrowFileHandle {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as ArrowFileHandle).fd === 'number' &&
    typeof (value as ArrowFileHandle).stat === 'function'
  );
}

function corrupt(error: unknown, what: string): KdError {
  if (error instanceof KdError) return error;
  return new KdDataError('CORRUPT_FILE', `${what}: ${(error as Error).message ?? String(error)}; the file is truncated or damaged`, {
    cause: error,
  });
}

function checkIdType(arrow: ArrowModule, type: Arrow.DataType, source: string, column: string): void {
  const value = arrow.DataType.isDictionary(type) ? type.dictionary : type;
  if (arrow.DataType.isUtf8(value) || arrow.DataType.isLargeUtf8(value) || arrow.DataType.isInt(value)) return;
  throw new KdDataError(
    'ID_TYPE_MISMATCH',
    `${source}: column "${column}" is ${String(type)}: ids must be strings (utf8) or integers in [0, 2^24); ` +
      "cast it, e.g. pa.array(ids, pa.string()) or pa.array(ids, pa.int32())",
  );
}

function checkLogitsType(arrow: ArrowModule, type: Arrow.DataType, source: string, column: string): void {
  const isList = arrow.DataType.isFixedSizeList(type) || arrow.DataType.isList(type);
  const child = isList ? (type as Arrow.FixedSizeList | Arrow.List).children[0]?.type : undefined;
  if (child !== undefined && arrow.DataType.isFloat(child)) return;
  throw new KdDataError(
    'CORRUPT_FILE',
    `${source}: column "${column}" is ${String(type)}, not a list of floats: write it as ` +
      'pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel(), pa.float32()), num_classes)',
  );
}

function readIds(vector: Arrow.Vector, checker: IdChecker, locate: (row: number) => string): ExampleId[] {
  const out = new Array<ExampleId>(vector.length);
  let row = 0;
  for (const value of vector as Iterable<unknown>) {
    const at = row;
    if (value === null || value === undefined) {
      throw new KdDataError('MISSING_ID', `${locate(at)}: the id is null: every row needs an id`);
    }
    out[row++] = checker.check(value, () => locate(at));
  }
  return out;
}

/** The value count of row `row` (same for every row of a FixedSizeList). */
function rowWidth(vector: Arrow.Vector, row: number): number {
  const data = vector.data[0]!;
  if ('listSize' in data.type) return (data.type as Arrow.FixedSizeList).listSize;
  return data.valueOffsets[row + 1]! - data.valueOffsets[row]!;
}

/** Copies a list column into float32 rows, checking nulls and row lengths. */
function readLogits(vector: Arrow.Vector, numClasses: number, where: (row: number) => () => string): Float32Array {
  const out = new Float32Array(vector.length * numClasses);
  let firstRow = 0;
  for (const data of vector.data) {
    const child = data.children[0]!;
    const isFixed = 'listSize' in data.type;
    for (let row = 0; row < data.length; row++) {
      const at = where(firstRow + row);
      if (data.nullCount > 0 && !data.getValid(row)) {
        throw new KdDataError('NON_FINITE_TEACHER_OUTPUT', `${at()}: the outputs are null: every row needs its values`);
      }
      // Arrow slices a FixedSizeList's child with it; a List's child stays whole, addressed by the offsets.
      const start = isFixed ? row * numClasses : data.valueOffsets[row]! - child.offset;
      const width = isFixed ? numClasses : data.valueOffsets[row + 1]! - data.valueOffsets[row]!;
      assertClassCount(width, numClasses, at);
      if (child.nullCount > 0) {
        for (let c = 0; c < width; c++) {
          if (!child.getValid(start + c)) {
            throw new KdDataError('NON_FINITE_TEACHER_OUTPUT', `${at()}: class ${c} is null: teacher outputs must be finite numbers`);
          }
        }
      }
      const target = (firstRow + row) * numClasses;
      const values = child.values as Float32Array | Float64Array | Uint16Array;
      if (values instanceof Uint16Array) {
        for (let c = 0; c < width; c++) out[target + c] = float16ToFloat32(values[start + c]!);
      } else {
        out.set(values.subarray(start, start + width), target);
      }
    }
    firstRow += data.length;
  }
  return out;
}

/** Options of {@link encodeArrowTeacherOutputs}. */
export interface EncodeArrowOptions {
  /** `'file'` (default: `ARROW1` magic and footer, random access) or `'stream'`. */
  format?: 'file' | 'stream';
  /** The class count to declare when there are no rows at all (default 1). */
  numClasses?: number;
}

/**
 * Encodes teacher outputs as Arrow IPC, one record batch per input batch:
 * column `id` (utf8 for string ids, int32 for numbers) and `logits`
 * (`FixedSizeList<float32>[numClasses]`), which pyarrow reads as it is.
 *
 * @param batches - The rows, in order; every batch with the same class count and id type.
 * @param options - See {@link EncodeArrowOptions}.
 * @returns An async generator of byte chunks.
 * @throws {@link KdConfigError} `MISSING_DEPENDENCY` without `apache-arrow`.
 * @throws {@link KdShapeError} `CLASS_COUNT_MISMATCH`; {@link KdDataError} `ID_TYPE_MISMATCH`.
 *
 * @example
 * ```ts
 * import { encodeArrowTeacherOutputs } from 'kd-ts/io';
 * const batch = { ids: ['a', 'b'], logits: new Float32Array([1, 2, 3, 4]), numClasses: 2 };
 * const chunks: Uint8Array[] = [];
 * for await (const chunk of encodeArrowTeacherOutputs([batch])) chunks.push(chunk);
 * ```
 */
export function encodeArrowTeacherOutputs(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: EncodeArrowOptions = {},
): AsyncGenerator<Uint8Array> {
  return encodeArrowTeacherOutputsStream(batches, options);
}

async function* encodeArrowTeacherOutputsStream(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  options: EncodeArrowOptions = {},
): AsyncGenerator<Uint8Array> {
  const arrow = await loadArrow();
  const writer = options.format === 'stream' ? new arrow.RecordBatchStreamWriter() : new arrow.RecordBatchFileWriter();
  // Collect what the writer emits synchronously, so each batch's bytes can be
  // handed on (and freed) before the next is encoded.
  let chunks: Uint8Array[] = [];
  const sink = new arrow.AsyncByteQueue();
  sink.write = (value) => {
    // The writer hands over Uint8Arrays (views of the batch's own buffers).
    if ((value as Uint8Array).byteLength > 0) chunks.push(value as Uint8Array);
  };
  writer.reset(sink);
  const take = () => {
    const out = chunks;
    chunks = [];
    return out;
  };
  const checker = new IdChecker();
  let numClasses: number | undefined;
  let schema: Arrow.Schema | undefined;
  for await (const batch of batches) {
    assertBatchShape(batch);
    if (batch.ids.length === 0) continue;
    assertClassCount(batch.numClasses, numClasses, () => 'a batch to encode');
    numClasses = batch.numClasses;
    batch.ids.forEach((id, row) => checker.check(id, () => batch.locate?.(row) ?? `row ${row}`));
    const isString = checker.idKind === 'string';
    const listType = new arrow.FixedSizeList(numClasses, new arrow.Field('item', new arrow.Float32(), false));
    schema ??= new arrow.Schema([
      new arrow.Field('id', isString ? new arrow.Utf8() : new arrow.Int32(), false),
      new arrow.Field('logits', listType, false),
    ]);
    const rows = batch.ids.length;
    const idData = isString
      ? arrow.vectorFromArray(batch.ids as string[], new arrow.Utf8()).data[0]!
      : arrow.makeData({ type: new arrow.Int32(), length: rows, data: Int32Array.from(batch.ids as number[]) });
    const values = arrow.makeData({ type: new arrow.Float32(), length: rows * numClasses, data: batch.logits });
    const logits = arrow.makeData({ type: listType, length: rows, nullCount: 0, child: values });
    const struct = arrow.makeData({
      type: new arrow.Struct(schema.fields),
      length: rows,
      nullCount: 0,
      children: [idData, logits],
    });
    writer.write(new arrow.RecordBatch(schema, struct));
    yield* take();
  }
  if (schema === undefined) {
    // No rows: a schema-only file, so that readers still find the columns.
    const listType = new arrow.FixedSizeList(options.numClasses ?? 1, new arrow.Field('item', new arrow.Float32(), false));
    schema = new arrow.Schema([new arrow.Field('id', new arrow.Utf8(), false), new arrow.Field('logits', listType, false)]);
    writer.write(new arrow.Table(schema));
  }
  writer.close();
  yield* take();
}
