import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { KdConfigError } from '../errors.js';
import { assertBatchShape, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { TeacherCache } from '../teachers/TeacherCache.js';
import { DEFAULT_EXTENSION, EXTENSIONS, formatOfName, type TeacherFileFormat } from './teacherFileFormat.js';
import { writeTeacherOutputs, type WriteTeacherFilesOptions, type WriteTeacherFilesResult } from './writeTeacherFiles.js';

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
    if (/\.ids\.(json|txt)$/.test(name) || name.endsWith('.top_ids.npy')) continue; // read with their data file
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
      // Top-k batches keep their class ids (and class count) in step with the values.
      const topK = (from: number, to?: number) =>
        batch.topIds === undefined ? {} : { topIds: batch.topIds.subarray(from * C, to === undefined ? undefined : to * C), ...(batch.classCount === undefined ? {} : { classCount: batch.classCount }) };
      yield { ids: batch.ids.slice(0, n), logits: batch.logits.subarray(0, n * C), numClasses: C, ...topK(0, n), ...(locate ? { locate } : {}) };
      this.leftover =
        n === batch.ids.length
          ? undefined
          : {
              ids: batch.ids.slice(n),
              logits: batch.logits.subarray(n * C),
              numClasses: C,
              ...topK(n),
              ...(locate ? { locate: (r: number) => locate(r + n) } : {}),
            };
      remaining -= n;
    }
  }
}
