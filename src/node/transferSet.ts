import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeAtomic } from './atomicWrite.js';
import { parseTransferSetJsonl, transferSetToJsonl, type TransferSetEntry } from '../io/transferSet.js';

/**
 * Writes a transfer set as JSON Lines (see `transferSetToJsonl`), atomically:
 * to a temporary name, renamed into place once complete, so a teacher script
 * never reads a half-written file. Lines are written as they are made, so the
 * entries can come from a generator. Creates the directory if needed.
 *
 * @param file - The target, e.g. `transfer.jsonl`.
 * @param entries - `{ id, text }` or `{ id, a, b }` examples.
 * @returns The number of entries written.
 * @throws `KdDataError` `DUPLICATE_ID`, `ID_TYPE_MISMATCH`, `CORRUPT_FILE` for bad entries (nothing is left under `file`).
 *
 * @example
 * ```ts
 * import { writeTransferSet } from 'kd-ts/node';
 * const texts = ['a gorgeous , witty , seductive movie .', 'contains no wit , only labored gags'];
 * await writeTransferSet('sst2/transfer.jsonl', texts.map((text, id) => ({ id, text })));
 * ```
 */
export async function writeTransferSet(file: string, entries: Iterable<TransferSetEntry>): Promise<number> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  let rows = 0;
  // Lines go out in chunks as they are made, so the entries can come from a generator.
  function* chunks(): Generator<string> {
    let pending: string[] = [];
    for (const line of transferSetToJsonl(entries)) {
      pending.push(line);
      rows++;
      if (pending.length === 4096) {
        yield pending.join('');
        pending = [];
      }
    }
    yield pending.join('');
  }
  await writeAtomic(file, chunks());
  return rows;
}

/**
 * Reads a transfer set written by {@link writeTransferSet} (or by your own
 * code in the same format).
 *
 * @param file - A `.jsonl` transfer set.
 * @returns The entries, in file order.
 * @throws `KdDataError` `CORRUPT_FILE`, `DUPLICATE_ID`, `ID_TYPE_MISMATCH`, naming the file and line.
 *
 * @example
 * ```ts
 * import { readTransferSet } from 'kd-ts/node';
 * const entries = await readTransferSet('sst2/transfer.jsonl');
 * ```
 */
export async function readTransferSet(file: string): Promise<TransferSetEntry[]> {
  return parseTransferSetJsonl(await fs.readFile(file, 'utf8'), { source: file });
}
