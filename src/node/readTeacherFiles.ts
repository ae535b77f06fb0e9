import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { KdDataError, KdError } from '../errors.js';
import { readArrowTeacherOutputs } from '../io/arrow.js';
import { readJsonlTeacherOutputs } from '../io/jsonl.js';
import { parseIdList, readNpyTeacherOutputs } from '../io/npy.js';
import { readNpyTopKTeacherOutputs } from '../io/npyTopK.js';
import { checkTeacherOutputs, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { TeacherCache, type TeacherCacheOptions } from '../teachers/TeacherCache.js';
import { formatOf, type TeacherFileFormat } from './teacherFileFormat.js';
import { listTeacherShards } from './teacherShards.js';

const READ_CHUNK_BYTES = 1 << 20;

/** Options of {@link readTeacherOutputs} and {@link readTeacherCache}. */
export interface ReadTeacherFilesOptions {
  /** The format; by default from the extension(s). */
  format?: TeacherFileFormat;
  /** Rows per yielded batch for JSONL and NPY (default 1024). */
  batchSize?: number;
  /**
   * The expected class count (JSONL, Arrow); by default the first row's. For
   * top-k files (JSONL or NPY), the teacher's class count: class ids at or above it are refused.
   */
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
 * Top-k outputs are read as top-k batches: JSONL rows with `top_ids` and
 * `top_logits`, or an NPY pair `<name>.top_logits.npy` + `<name>.top_ids.npy`
 * (pass either name, or `<name>.npy` when only the pair exists) with `<name>.ids.json`.
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
  const stat = (await topKPairOnly(file)) ?? (await statOrThrow(file));
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
      const pair = await topKPair(file);
      const idsFile = idsPath ?? (await findIdsFile(pair?.base ?? file.replace(/\.npy$/, ''), file));
      const ids = parseIdList(await fs.readFile(idsFile, 'utf8'), {
        source: idsFile,
        format: idsFile.endsWith('.json') ? 'json' : 'lines',
        ...(options.idType ? { idType: options.idType } : {}),
      });
      if (pair === undefined) yield* readNpyTeacherOutputs(readChunks(file), ids, { ...common, idsSource: idsFile });
      else {
        yield* readNpyTopKTeacherOutputs(readChunks(pair.logits), readChunks(pair.ids), ids, {
          ...common,
          source: pair.logits,
          topIdsSource: pair.ids,
          idsSource: idsFile,
        });
      }
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

/**
 * The top-k NPY pair of `file` (`<base>.top_logits.npy` + `<base>.top_ids.npy`):
 * when `file` is either of them, or a `<base>.npy` that does not exist while the pair does.
 */
async function topKPair(file: string): Promise<{ base: string; logits: string; ids: string } | undefined> {
  const named = /^(.*)\.top_(logits|ids)\.npy$/.exec(file);
  const base = named?.[1] ?? file.replace(/\.npy$/, '');
  const pair = { base, logits: `${base}.top_logits.npy`, ids: `${base}.top_ids.npy` };
  if (named === null && (await exists(file))) return undefined;
  if (named === null && !(await exists(pair.logits))) return undefined;
  for (const part of [pair.logits, pair.ids]) {
    if (!(await exists(part))) {
      throw new KdDataError(
        'CORRUPT_FILE',
        `${part} is missing: top-k NPY outputs are a pair, ${path.basename(pair.logits)} (float [N, k]) and ` +
          `${path.basename(pair.ids)} (int [N, k]), written side by side`,
      );
    }
  }
  return pair;
}

async function findIdsFile(base: string, npyFile: string): Promise<string> {
  for (const candidate of [`${base}.ids.json`, `${base}.ids.txt`]) {
    if (await exists(candidate)) return candidate;
  }
  throw new KdDataError(
    'CORRUPT_FILE',
    `${npyFile} has no id list: write the ids next to it as ${path.basename(base)}.ids.json (a JSON array) or ` +
      `${path.basename(base)}.ids.txt (one per line), or pass { idsPath }`,
  );
}

/** A `<base>.npy` name whose data is a top-k pair: read as a file. */
async function topKPairOnly(file: string): Promise<{ isDirectory: () => boolean } | undefined> {
  if (!file.endsWith('.npy') || (await exists(file)) || !(await exists(`${file.replace(/\.npy$/, '')}.top_logits.npy`))) return undefined;
  return { isDirectory: () => false };
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
