import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { temporaryName, writeAtomic } from './atomicWrite.js';
import { encodeArrowTeacherOutputs } from '../io/arrow.js';
import { encodeJsonlTeacherOutputs } from '../io/jsonl.js';
import { npyHeader } from '../io/npy.js';
import { checkTeacherOutputs, type ExampleId, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { TeacherCache } from '../teachers/TeacherCache.js';
import { KdConfigError } from '../errors.js';
import { formatOf, type TeacherFileFormat } from './teacherFileFormat.js';

/** The fixed NPY header length we write, so a streamed write can fill it in last. */
const NPY_HEADER_BYTES = 128;

/** Options of {@link writeTeacherOutputs} and {@link writeTeacherShards}. */
export interface WriteTeacherFilesOptions {
  /** The format; by default from the file's extension (required for {@link writeTeacherShards}). */
  format?: TeacherFileFormat;
  /** NPY: where the ids go (default `<name>.ids.json`, a JSON array). */
  idsPath?: string;
  /** Arrow: `'file'` (default, with footer: random access) or `'stream'`. */
  arrowFormat?: 'file' | 'stream';
  /** JSONL: the field holding the values (default `'logits'`). */
  field?: string;
  /** The class count to declare when there are no rows (NPY, Arrow). */
  numClasses?: number;
}

/** What a write produced. */
export interface WriteTeacherFilesResult {
  /** Rows written. */
  rows: number;
  /** Files written (data and id lists). */
  files: string[];
}

/**
 * Writes teacher outputs to a file, atomically: to a temporary name, renamed
 * into place once complete, so an interrupted write never leaves a partial
 * file under the final name. Streams batches through (memory holds one), so
 * it also converts formats: `writeTeacherOutputs(readTeacherOutputs('in/'), 'out.npy')`.
 *
 * Formats: JSONL (`{"id":..,"logits":[..]}` lines, values written to read back
 * bit-identical), NPY (float32 `[N, C]` plus `<name>.ids.json`; each of the two
 * files is atomic), Arrow IPC (`id` utf8/int32 + `logits` FixedSizeList<float32>).
 *
 * Top-k rows (a top-k `TeacherCache`, or top-k batches) are written as JSONL
 * `{"id":..,"top_ids":[..],"top_logits":[..]}` lines, or as an NPY pair:
 * `teacher.npy` becomes `teacher.top_logits.npy` (float32 `[N, k]`) +
 * `teacher.top_ids.npy` (int32 `[N, k]`) + `teacher.ids.json`. Arrow holds full rows only.
 *
 * @param data - A {@link TeacherCache}, or batches from any reader.
 * @param file - The target; its extension picks the format unless `format` is given.
 * @param options - See {@link WriteTeacherFilesOptions}.
 * @returns The rows and files written.
 * @throws `KdConfigError` `INVALID_OPTION` for an unknown extension; `MISSING_DEPENDENCY` for Arrow
 *   without apache-arrow; `INVALID_TOP_K` for top-k rows to Arrow, or mixed with full rows; the checks of
 *   the batches (class counts, id types, finite values, top-k class ids).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { TeacherCache } from 'kd-ts';
 * import { writeTeacherOutputs } from 'kd-ts/node';
 * const teacher = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const x = tf.randomNormal([100, 784]);
 * const ids = Array.from({ length: 100 }, (_, i) => `train-${i}`);
 * const cache = await TeacherCache.fromTeacher(teacher, { x, ids });
 * await writeTeacherOutputs(cache, 'teacher.arrow');
 * await writeTeacherOutputs(cache, 'teacher.npy'); // + teacher.ids.json
 * ```
 */
export async function writeTeacherOutputs(
  data: TeacherCache | AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  file: string,
  options: WriteTeacherFilesOptions = {},
): Promise<WriteTeacherFilesResult> {
  const format = formatOf(file, options.format);
  const batches = data instanceof TeacherCache ? data.batches() : data;
  const numClasses = options.numClasses ?? (data instanceof TeacherCache ? data.numClasses : undefined);
  let rows = 0;
  async function* counted(): AsyncGenerator<TeacherOutputBatch> {
    for await (const batch of checkTeacherOutputs(batches)) {
      if (format === 'arrow' && batch.topIds !== undefined) {
        throw new KdConfigError('INVALID_TOP_K', `${file}: Arrow files hold full rows only; write top-k rows as .jsonl or .npy`);
      }
      rows += batch.ids.length;
      yield batch;
    }
  }
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  if (format === 'jsonl') {
    await writeAtomic(file, encodeJsonlTeacherOutputs(counted(), options.field ? { field: options.field } : {}));
    return { rows, files: [file] };
  }
  if (format === 'arrow') {
    await writeAtomic(
      file,
      encodeArrowTeacherOutputs(counted(), {
        format: options.arrowFormat ?? 'file',
        ...(numClasses === undefined ? {} : { numClasses }),
      }),
    );
    return { rows, files: [file] };
  }
  const topK = data instanceof TeacherCache ? data.topK : undefined;
  const files = await writeNpyAtomic(counted(), file, options.idsPath, topK ?? numClasses, topK !== undefined);
  return { rows, files };
}

/** The files of an NPY write: `<base>.npy`, or `<base>.top_logits.npy` + `<base>.top_ids.npy`; the ids default to `<base>.ids.json`. */
export function npyFileNames(file: string, topK: boolean, idsPath: string | undefined): { data: string[]; ids: string } {
  const base = file.replace(/\.npy$/, '').replace(/\.top_(logits|ids)$/, '');
  const fullBase = file.replace(/\.npy$/, '');
  return {
    data: topK ? [`${base}.top_logits.npy`, `${base}.top_ids.npy`] : [file],
    ids: idsPath ?? `${topK ? base : fullBase}.ids.json`,
  };
}

/**
 * NPY data and its id list, each written to a temporary file and renamed; the
 * headers are filled in last. Top-k rows (the first batch, or `topKHint`,
 * says) go to two arrays, `<base>.top_logits.npy` (float32) and
 * `<base>.top_ids.npy` (int32). Returns the files written.
 */
async function writeNpyAtomic(
  batches: AsyncIterable<TeacherOutputBatch>,
  file: string,
  idsPath: string | undefined,
  widthHint: number | undefined,
  topKHint: boolean,
): Promise<string[]> {
  const iterator = batches[Symbol.asyncIterator]();
  let first = await iterator.next();
  while (!first.done && first.value.ids.length === 0) first = await iterator.next();
  const topK = first.done ? topKHint : first.value.topIds !== undefined;
  const names = npyFileNames(file, topK, idsPath);
  const parts = names.data.map((name, i) => ({
    name,
    temporary: temporaryName(name),
    descr: (topK && i === 1 ? '<i4' : '<f4') as '<f4' | '<i4',
    pick: (batch: TeacherOutputBatch): Float32Array | Int32Array => (topK && i === 1 ? batch.topIds! : batch.logits),
  }));
  const temporaryIds = temporaryName(names.ids);
  const handles = await Promise.all(parts.map((part) => fs.open(part.temporary, 'w')));
  const ids = await fs.open(temporaryIds, 'w');
  let completed = false;
  try {
    let rows = 0;
    let width = widthHint;
    let position = NPY_HEADER_BYTES;
    await ids.write('[');
    for (let next = first; !next.done; next = await iterator.next()) {
      const batch = next.value;
      if (batch.ids.length === 0) continue;
      width = batch.numClasses;
      for (const [i, part] of parts.entries()) {
        const values = part.pick(batch);
        await writeFully(handles[i]!, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), position);
      }
      position += batch.logits.byteLength;
      await ids.write(idLines(batch.ids, rows === 0));
      rows += batch.ids.length;
    }
    await ids.write(rows === 0 ? ']\n' : '\n]\n');
    for (const [i, part] of parts.entries()) await writeFully(handles[i]!, npyHeader(rows, width ?? 1, NPY_HEADER_BYTES, part.descr), 0);
    await Promise.all([...handles.map((h) => h.sync()), ids.sync()]);
    completed = true;
  } finally {
    await Promise.all([...handles.map((h) => h.close()), ids.close()]);
    if (!completed) await Promise.all([...parts.map((p) => fs.rm(p.temporary, { force: true })), fs.rm(temporaryIds, { force: true })]);
  }
  await fs.rename(temporaryIds, names.ids);
  for (const part of parts) await fs.rename(part.temporary, part.name);
  return [...names.data, names.ids];
}

function idLines(ids: readonly ExampleId[], first: boolean): string {
  return (first ? '\n' : ',\n') + ids.map((id) => JSON.stringify(id)).join(',\n');
}

async function writeFully(handle: fs.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset, position + offset);
    offset += bytesWritten;
  }
}
