import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { temporaryName, writeAtomic } from './atomicWrite.js';
import { encodeArrowTeacherOutputs } from '../io/arrow.js';
import { encodeJsonlTeacherOutputs } from '../io/jsonl.js';
import { npyHeader } from '../io/npy.js';
import { checkTeacherOutputs, type ExampleId, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { TeacherCache } from '../teachers/TeacherCache.js';
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
 * @param data - A {@link TeacherCache}, or batches from any reader.
 * @param file - The target; its extension picks the format unless `format` is given.
 * @param options - See {@link WriteTeacherFilesOptions}.
 * @returns The rows and files written.
 * @throws `KdConfigError` `INVALID_OPTION` for an unknown extension; `MISSING_DEPENDENCY` for Arrow
 *   without apache-arrow; the checks of the batches (class counts, id types, finite values).
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
  const idsFile = options.idsPath ?? `${file.replace(/\.npy$/, '')}.ids.json`;
  await writeNpyAtomic(counted(), file, idsFile, numClasses);
  return { rows, files: [file, idsFile] };
}

/** NPY data and its id list, each written to a temporary file and renamed; the header is filled in last. */
async function writeNpyAtomic(
  batches: AsyncIterable<TeacherOutputBatch>,
  file: string,
  idsFile: string,
  numClassesHint: number | undefined,
): Promise<void> {
  const temporary = temporaryName(file);
  const temporaryIds = temporaryName(idsFile);
  const data = await fs.open(temporary, 'w');
  const ids = await fs.open(temporaryIds, 'w');
  let completed = false;
  try {
    let rows = 0;
    let numClasses = numClassesHint;
    let position = NPY_HEADER_BYTES;
    await ids.write('[');
    for await (const batch of batches) {
      if (batch.ids.length === 0) continue;
      numClasses = batch.numClasses;
      const bytes = new Uint8Array(batch.logits.buffer, batch.logits.byteOffset, batch.logits.byteLength);
      await writeFully(data, bytes, position);
      position += bytes.byteLength;
      await ids.write(idLines(batch.ids, rows === 0));
      rows += batch.ids.length;
    }
    await ids.write(rows === 0 ? ']\n' : '\n]\n');
    await writeFully(data, npyHeader(rows, numClasses ?? 1, NPY_HEADER_BYTES), 0);
    await Promise.all([data.sync(), ids.sync()]);
    completed = true;
  } finally {
    await data.close();
    await ids.close();
    if (!completed) await Promise.all([fs.rm(temporary, { force: true }), fs.rm(temporaryIds, { force: true })]);
  }
  await fs.rename(temporaryIds, idsFile);
  await fs.rename(temporary, file);
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
