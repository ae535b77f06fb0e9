/**
 * Top-k teacher outputs as an NPY pair: `[N, k]` logits (float32, float64 or
 * float16) and `[N, k]` class ids (int32 or int64), plus the N ids in a
 * separate list. Browser-safe.
 *
 * @packageDocumentation
 */
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { npyHeader, readNpyTeacherOutputs, readNpyRows, type ByteSource, type ReadNpyOptions } from './npy.js';
import { assertBatchShape, DEFAULT_READ_BATCH_SIZE, formatId, type ExampleId, type TeacherOutputBatch } from './teacherOutputs.js';
import { assertTopKRow } from './topKRows.js';

/** Options of {@link readNpyTopKTeacherOutputs}. */
export interface ReadNpyTopKOptions extends ReadNpyOptions {
  /** A name for the class-id array in messages (e.g. `teacher.top_ids.npy`). */
  topIdsSource?: string;
  /** The teacher's class count: class ids at or above it are refused (`INVALID_TOP_K_IDS`). */
  numClasses?: number;
}

/**
 * Reads top-k teacher outputs from an NPY pair, streaming both arrays in step:
 * `[N, k]` logits (`teacher.top_logits.npy`) and `[N, k]` class ids
 * (`teacher.top_ids.npy`), as `np.save` writes them, e.g. from
 * `torch.topk(logits, k)`'s values and indices; with their N ids given
 * separately (see `parseIdList`). int64 class ids (numpy's and PyTorch's
 * default) are read as int32. Yields top-k batches (`topIds` set,
 * `numClasses` = k).
 *
 * @param topLogits - The logits array's bytes, or an async iterable of byte chunks.
 * @param topIds - The class-id array's bytes, or chunks.
 * @param ids - One example id per row, in row order.
 * @param options - See {@link ReadNpyTopKOptions}.
 * @returns An async generator of top-k batches of `batchSize` rows.
 * @throws {@link KdDataError} `CORRUPT_FILE` for a damaged or truncated array, a float class-id array or
 *   an integer logits array; `INVALID_TOP_K_IDS` for a class id out of range or twice in a row;
 *   `NON_FINITE_TEACHER_OUTPUT`; `ID_TYPE_MISMATCH`. {@link KdShapeError} `LENGTH_MISMATCH` when the two
 *   arrays differ in shape, or the id count differs from the row count. Messages name the file and row.
 *
 * @example
 * ```ts
 * import { parseIdList, readNpyTopKTeacherOutputs } from 'kd-ts/io';
 * const bytes = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());
 * const ids = parseIdList(await (await fetch('/teacher.ids.json')).text());
 * const batches = readNpyTopKTeacherOutputs(await bytes('/teacher.top_logits.npy'), await bytes('/teacher.top_ids.npy'), ids, {
 *   numClasses: 1000,
 * });
 * for await (const batch of batches) console.log(batch.numClasses, batch.topIds); // k, Int32Array
 * ```
 */
export function readNpyTopKTeacherOutputs(
  topLogits: ByteSource,
  topIds: ByteSource,
  ids: readonly ExampleId[],
  options: ReadNpyTopKOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  return readNpyTopKStream(topLogits, topIds, ids, options);
}

async function* readNpyTopKStream(
  topLogits: ByteSource,
  topIds: ByteSource,
  ids: readonly ExampleId[],
  options: ReadNpyTopKOptions,
): AsyncGenerator<TeacherOutputBatch> {
  const source = options.source ?? 'top-k logits NPY';
  const idsSource = options.topIdsSource ?? 'top-k class ids NPY';
  const batchSize = options.batchSize ?? DEFAULT_READ_BATCH_SIZE;
  // Both streams yield the same row ranges (same row count, same batch size).
  const values = readNpyTeacherOutputs(topLogits, ids, { ...options, source, batchSize });
  const classIds = readNpyRows(topIds, { source: idsSource, rows: ids.length, idsSource: options.idsSource ?? 'the id list', batchSize, kind: 'int' });
  for (;;) {
    const [a, b] = await Promise.all([values.next(), classIds.next()]);
    if (a.done || b.done) {
      if (!a.done || !b.done) throw new KdDataError('CORRUPT_FILE', `${source} and ${idsSource} end at different rows: write them again together`);
      return;
    }
    const batch = a.value;
    const { header, bytes, firstRow } = b.value;
    const k = batch.numClasses;
    if (header.numClasses !== k) {
      throw new KdShapeError(
        'LENGTH_MISMATCH',
        `${source} holds ${k} logits a row but ${idsSource} ${header.numClasses} class ids: save both arrays [N, k] with one k`,
      );
    }
    const topIdsOfBatch = toInt32(bytes, header.dtype, () => `${idsSource} row ${firstRow}`);
    for (let r = 0; r < batch.ids.length; r++) {
      assertTopKRow(topIdsOfBatch, r * k, k, options.numClasses, () => `${idsSource} row ${firstRow + r} (id ${formatId(batch.ids[r])})`);
    }
    yield { ...batch, topIds: topIdsOfBatch, ...(options.numClasses === undefined ? {} : { classCount: options.numClasses }) };
  }
}

function toInt32(bytes: Uint8Array, dtype: string, where: () => string): Int32Array {
  if (dtype === 'i4') return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const wide = new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  const out = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    const v = wide[i]!;
    if (v < 0n || v > 0x7fffffffn) {
      throw new KdDataError('INVALID_TOP_K_IDS', `${where()}: class id ${v} is not a class id: write the indices of the largest logits`);
    }
    out[i] = Number(v);
  }
  return out;
}

/**
 * Encodes one array of top-k teacher outputs as NPY: the logits
 * (`'top_logits'`, float32 `[N, k]`) or the class ids (`'top_ids'`, int32
 * `[N, k]`). Call it once for each, on the same batches (e.g.
 * `cache.batches()` of a top-k cache, twice), and write the ids with `encodeIdList`.
 *
 * @param batches - Top-k batches, in order.
 * @param shape - `rows` (N, needed up front by the header) and `k`.
 * @param part - Which array.
 * @returns An async generator of byte chunks.
 * @throws {@link KdConfigError} `INVALID_TOP_K` for full rows (use `encodeNpyTeacherOutputs`);
 *   {@link KdShapeError} `LENGTH_MISMATCH` when the batches hold another number of rows or another k.
 *
 * @example
 * ```ts
 * import { encodeNpyTopKTeacherOutputs } from 'kd-ts/io';
 * const batch = { ids: ['a'], logits: new Float32Array([4, 2]), topIds: new Int32Array([7, 3]), numClasses: 2 };
 * const chunks: Uint8Array[] = [];
 * for await (const chunk of encodeNpyTopKTeacherOutputs([batch], { rows: 1, k: 2 }, 'top_ids')) chunks.push(chunk);
 * ```
 */
export function encodeNpyTopKTeacherOutputs(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  shape: { rows: number; k: number },
  part: 'top_logits' | 'top_ids',
): AsyncGenerator<Uint8Array> {
  return encodeStream(batches, shape, part);
}

async function* encodeStream(
  batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  shape: { rows: number; k: number },
  part: 'top_logits' | 'top_ids',
): AsyncGenerator<Uint8Array> {
  yield npyHeader(shape.rows, shape.k, undefined, part === 'top_ids' ? '<i4' : '<f4');
  let rows = 0;
  for await (const batch of batches) {
    assertBatchShape(batch);
    if (batch.topIds === undefined) {
      throw new KdConfigError('INVALID_TOP_K', 'the batches hold full rows, not top-k rows: encode them with encodeNpyTeacherOutputs');
    }
    if (batch.numClasses !== shape.k) {
      throw new KdShapeError('LENGTH_MISMATCH', `a batch has k = ${batch.numClasses} but the NPY header says ${shape.k}`);
    }
    rows += batch.ids.length;
    if (rows > shape.rows) break;
    const data = part === 'top_ids' ? batch.topIds : batch.logits;
    yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (rows !== shape.rows) {
    throw new KdShapeError('LENGTH_MISMATCH', `the NPY header says ${shape.rows} rows but the batches hold ${rows > shape.rows ? 'more' : rows}`);
  }
}
