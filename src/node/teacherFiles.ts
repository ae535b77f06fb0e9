import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { temporaryName, writeAtomic } from './atomicWrite.js';
import { KdConfigError, KdDataError, KdError } from '../errors.js';
import { encodeArrowTeacherOutputs, readArrowTeacherOutputs } from '../io/arrow.js';
import { encodeJsonlTeacherOutputs, readJsonlTeacherOutputs } from '../io/jsonl.js';
import { npyHeader, parseIdList, readNpyTeacherOutputs } from '../io/npy.js';
import { assertBatchShape, checkTeacherOutputs, type ExampleId, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { TeacherCache, type TeacherCacheOptions } from '../teachers/TeacherCache.js';

/** The file formats of teacher outputs. */
export type TeacherFileFormat = 'jsonl' | 'npy' | 'arrow';

const EXTENSIONS: Record<TeacherFileFormat, string[]> = {
  jsonl: ['.jsonl', '.ndjson', '.json'], // Spark's df.write.json writes JSON Lines as .json
  npy: ['.npy'],
  arrow: ['.arrow', '.arrows', '.feather', '.ipc'],
};
const DEFAULT_EXTENSION: Record<TeacherFileFormat, string> = { jsonl: '.jsonl', npy: '.npy', arrow: '.arrow' };
/** The fixed NPY header length we write, so a streamed write can fill it in last. */
const NPY_HEADER_BYTES = 128;
const READ_CHUNK_BYTES = 1 << 20;

/** Options of {@link readTeacherOutputs} and {@link readTeacherCache}. */
export interface ReadTeacherFilesOptions {
  /** The format; by default from the extension(s). */
  format?: TeacherFileFormat;
  /** Rows per yielded batch for JSONL and NPY (default 1024). */
  batchSize?: number;
  /** The expected class count (JSONL, Arrow); by default the first row's. */
  numClasses?: number;
  /**
   * NPY: the id list of a single `.npy` file (default: `<name>.ids.json`, else
   * `<name>.ids.txt`, next to it). Shards always use their own `<shard>.ids.*`.
   */
  idsPath?: string;
  /** NPY text id lists: how to read the lines (see `parseIdList`). */
  idType?: 'auto' | 'string' | 'number';
  /** JSONL: the field holding the values (default `'logits'`). */
  field?: string;
  /** Arrow: the id column (default `'id'`). */
  idColumn?: string;
  /** Arrow: the values column (default `'logits'`). */
  logitsColumn?: string;
}

/**
 * Reads teacher outputs from a file, or from a directory of shards as Spark,
 * Ray or Beam write them (`part-00000.jsonl`, `part-00001.jsonl`, ...: files
 * of one format, read in name order; names starting with `_` or `.`, such as
 * `_SUCCESS` and `.crc` files, are skipped), as one stream. NPY shards each
 * come with their own `part-00000.ids.json` (or `.ids.txt`).
 *
 * Memory holds one batch (one record batch for Arrow), whatever the total size.
 *
 * @param file - A `.jsonl`/`.ndjson`/`.json` (JSON Lines, as Spark's `df.write.json` writes), `.npy` or `.arrow`/`.arrows`/`.feather`/`.ipc` file, or a directory of them.
 * @param options - See {@link ReadTeacherFilesOptions}.
 * @returns An async generator of batches, checked across shards (one class count, one id type).
 * @throws `KdConfigError` `INVALID_OPTION` for an unknown extension, a directory without shards or
 *   mixing formats; `KdDataError` `CORRUPT_FILE` for unreadable files, and every reader error, naming
 *   the file and line or row.
 *
 * @example
 * ```ts
 * import { readTeacherOutputs } from 'kd-ts/node';
 * let rows = 0;
 * for await (const batch of readTeacherOutputs('teacher-outputs/')) rows += batch.ids.length;
 * ```
 */
export function readTeacherOutputs(
  file: string,
  options: ReadTeacherFilesOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  return readTeacherOutputsStream(file, options);
}

async function* readTeacherOutputsStream(
  file: string,
  options: ReadTeacherFilesOptions = {},
): AsyncGenerator<TeacherOutputBatch> {
  const stat = await statOrThrow(file);
  if (!stat.isDirectory()) {
    yield* readOneFile(file, formatOf(file, options.format), options, options.idsPath);
    return;
  }
  const shards = await listTeacherShards(file, options.format);
  async function* all(): AsyncGenerator<TeacherOutputBatch> {
    for (const shard of shards.files) yield* readOneFile(shard, shards.format, options, undefined);
  }
  yield* checkTeacherOutputs(all());
}

/**
 * Reads teacher outputs (a file or a directory of shards, see
 * {@link readTeacherOutputs}) into a {@link TeacherCache}.
 *
 * @param file - File or directory.
 * @param options - Reader options, plus the cache's (`outputs: 'probs'` for probabilities).
 * @returns The cache.
 * @throws Every reader error, and `DUPLICATE_ID` naming the file and line of the second occurrence.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Distiller } from 'kd-ts';
 * import { readTeacherCache } from 'kd-ts/node';
 * const teacher = await readTeacherCache('teacher.npy'); // + teacher.ids.json
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: teacher.numClasses ?? 10, inputShape: [784] })] });
 * const distiller = new Distiller({ teacher, student });
 * ```
 */
export async function readTeacherCache(
  file: string,
  options: ReadTeacherFilesOptions & TeacherCacheOptions = {},
): Promise<TeacherCache> {
  return TeacherCache.fromBatches(readTeacherOutputs(file, options), options);
}

/**
 * The shard files of a directory, in read order, and their format.
 *
 * @param directory - A directory of `part-*` files.
 * @param format - Only files of this format (default: the one format present).
 * @returns `{ files, format }`.
 * @throws `KdConfigError` `INVALID_OPTION` when there are none, or several formats.
 *
 * @example
 * ```ts
 * import { listTeacherShards } from 'kd-ts/node';
 * const { files, format } = await listTeacherShards('teacher-outputs/');
 * ```
 */
export async function listTeacherShards(
  directory: string,
  format?: TeacherFileFormat,
): Promise<{ files: string[]; format: TeacherFileFormat }> {
  const names = (await fs.readdir(directory)).filter((n) => !n.startsWith('_') && !n.startsWith('.')).sort();
  const byFormat = new Map<TeacherFileFormat, string[]>();
  for (const name of names) {
    if (/\.ids\.(json|txt)$/.test(name)) continue;
    const found = formatOfName(name);
    if (found === undefined || (format !== undefined && found !== format)) continue;
    byFormat.set(found, [...(byFormat.get(found) ?? []), path.join(directory, name)]);
  }
  if (byFormat.size === 0) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `${directory} holds no ${format ?? 'teacher-output'} files (${Object.values(EXTENSIONS).flat().join(', ')})`,
    );
  }
  if (byFormat.size > 1) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `${directory} mixes formats (${[...byFormat.keys()].join(', ')}): pass { format } to pick one, or keep one format per directory`,
    );
  }
  const [[found, files]] = [...byFormat.entries()] as [[TeacherFileFormat, string[]]];
  return { files, format: found };
}

async function* readOneFile(
  file: string,
  format: TeacherFileFormat,
  options: ReadTeacherFilesOptions,
  idsPath: string | undefined,
): AsyncGenerator<TeacherOutputBatch> {
  const common = {
    source: file,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.numClasses === undefined ? {} : { numClasses: options.numClasses }),
  };
  try {
    if (format === 'jsonl') {
      yield* readJsonlTeacherOutputs(readChunks(file), { ...common, ...(options.field ? { field: options.field } : {}) });
    } else if (format === 'npy') {
      const idsFile = idsPath ?? (await findIdsFile(file));
      const ids = parseIdList(await fs.readFile(idsFile, 'utf8'), {
        source: idsFile,
        format: idsFile.endsWith('.json') ? 'json' : 'lines',
        ...(options.idType ? { idType: options.idType } : {}),
      });
      yield* readNpyTeacherOutputs(readChunks(file), ids, { ...common, idsSource: idsFile });
    } else {
      const handle = await fs.open(file, 'r');
      try {
        yield* readArrowTeacherOutputs(handle, {
          source: file,
          ...(options.numClasses === undefined ? {} : { numClasses: options.numClasses }),
          ...(options.idColumn ? { idColumn: options.idColumn } : {}),
          ...(options.logitsColumn ? { logitsColumn: options.logitsColumn } : {}),
        });
      } finally {
        await handle.close();
      }
    }
  } catch (error) {
    if (error instanceof KdError) throw error;
    throw new KdDataError('CORRUPT_FILE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

async function* readChunks(file: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK_BYTES })) yield chunk as Uint8Array;
}

async function findIdsFile(npyFile: string): Promise<string> {
  const base = npyFile.replace(/\.npy$/, '');
  for (const candidate of [`${base}.ids.json`, `${base}.ids.txt`]) {
    if (await exists(candidate)) return candidate;
  }
  throw new KdDataError(
    'CORRUPT_FILE',
    `${npyFile} has no id list: write the ids next to it as ${path.basename(base)}.ids.json (a JSON array) or ` +
      `${path.basename(base)}.ids.txt (one per line), or pass { idsPath }`,
  );
}

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

/**
 * Writes teacher outputs as a directory of shards, `part-00000.<ext>`,
 * `part-00001.<ext>`, ... of `rowsPerShard` rows each (each file atomic), then
 * an empty `_SUCCESS` marker, as Spark does; {@link readTeacherOutputs} reads
 * them back as one stream.
 *
 * @param data - A {@link TeacherCache}, or batches from any reader.
 * @param directory - Created if missing.
 * @param options - `format` (required), `rowsPerShard` (default 100 000), and the {@link WriteTeacherFilesOptions}.
 * @returns The rows and files written.
 *
 * @example
 * ```ts
 * import { TeacherCache } from 'kd-ts';
 * import { readTeacherOutputs, writeTeacherShards } from 'kd-ts/node';
 * const cache = await TeacherCache.fromBatches(readTeacherOutputs('teacher.npy'));
 * await writeTeacherShards(cache, 'teacher-outputs/', { format: 'jsonl', rowsPerShard: 50_000 });
 * ```
 */
export async function writeTeacherShards(
  data: TeacherCache | AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
  directory: string,
  options: WriteTeacherFilesOptions & { format: TeacherFileFormat; rowsPerShard?: number },
): Promise<WriteTeacherFilesResult> {
  const rowsPerShard = options.rowsPerShard ?? 100_000;
  if (!Number.isInteger(rowsPerShard) || rowsPerShard < 1) {
    throw new KdConfigError('INVALID_OPTION', `rowsPerShard must be a positive integer, got ${rowsPerShard}`);
  }
  if (!(options.format in EXTENSIONS)) {
    throw new KdConfigError('INVALID_OPTION', `format must be 'jsonl', 'npy' or 'arrow', got ${String(options.format)}`);
  }
  await fs.mkdir(directory, { recursive: true });
  const source = (data instanceof TeacherCache ? data.batches() : data) as AsyncIterable<TeacherOutputBatch>;
  const rowsIn = new RowSplitter(source);
  const result: WriteTeacherFilesResult = { rows: 0, files: [] };
  for (let shard = 0; await rowsIn.hasMore(); shard++) {
    const file = path.join(directory, `part-${String(shard).padStart(5, '0')}${DEFAULT_EXTENSION[options.format]}`);
    const written = await writeTeacherOutputs(rowsIn.take(rowsPerShard), file, { ...options, idsPath: undefined });
    result.rows += written.rows;
    result.files.push(...written.files);
  }
  await fs.writeFile(path.join(directory, '_SUCCESS'), '');
  return result;
}

/** Hands out a batch stream in pieces of exactly n rows (the last may be shorter). */
class RowSplitter {
  private readonly iterator: AsyncIterator<TeacherOutputBatch>;
  private leftover: TeacherOutputBatch | undefined;
  private done = false;

  constructor(source: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>) {
    this.iterator = (async function* () {
      yield* source;
    })();
  }

  async hasMore(): Promise<boolean> {
    while (!this.done && (this.leftover === undefined || this.leftover.ids.length === 0)) {
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else {
        assertBatchShape(next.value);
        this.leftover = next.value;
      }
    }
    return this.leftover !== undefined && this.leftover.ids.length > 0;
  }

  async *take(rows: number): AsyncGenerator<TeacherOutputBatch> {
    let remaining = rows;
    while (remaining > 0 && (await this.hasMore())) {
      const batch = this.leftover!;
      const n = Math.min(remaining, batch.ids.length);
      const C = batch.numClasses;
      const locate = batch.locate;
      yield { ids: batch.ids.slice(0, n), logits: batch.logits.subarray(0, n * C), numClasses: C, ...(locate ? { locate } : {}) };
      this.leftover =
        n === batch.ids.length
          ? undefined
          : {
              ids: batch.ids.slice(n),
              logits: batch.logits.subarray(n * C),
              numClasses: C,
              ...(locate ? { locate: (r: number) => locate(r + n) } : {}),
            };
      remaining -= n;
    }
  }
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

function formatOf(file: string, format: TeacherFileFormat | undefined): TeacherFileFormat {
  if (format !== undefined) {
    if (!(format in EXTENSIONS)) {
      throw new KdConfigError('INVALID_OPTION', `format must be 'jsonl', 'npy' or 'arrow', got ${String(format)}`);
    }
    return format;
  }
  const found = formatOfName(file);
  if (found === undefined) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `cannot tell the format of ${file} from its extension: use ${Object.values(EXTENSIONS).flat().join(', ')}, or pass { format }`,
    );
  }
  return found;
}

function formatOfName(name: string): TeacherFileFormat | undefined {
  const extension = path.extname(name).toLowerCase();
  return (Object.keys(EXTENSIONS) as TeacherFileFormat[]).find((f) => EXTENSIONS[f].includes(extension));
}

async function statOrThrow(file: string): Promise<import('node:fs').Stats> {
  try {
    return await fs.stat(file);
  } catch (error) {
    throw new KdDataError('CORRUPT_FILE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
