/**
 * Writes the transfer set as JSON Lines, one `{"id": 0, "text": "..."}` per
 * row, for a teacher that runs elsewhere (teacher/train_teacher.py) to score.
 *
 * @packageDocumentation
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import * as path from 'node:path';
import type { TransferSet } from './pipeline.js';

/**
 * Writes the rows (atomically: a temporary file renamed into place).
 *
 * @param set - The transfer set.
 * @param file - The `.jsonl` path.
 */
export async function writeTransferSet(set: Pick<TransferSet, 'ids' | 'texts'>, file: string): Promise<void> {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temporary = `${file}.tmp-${process.pid}`;
  const out = createWriteStream(temporary, 'utf8');
  for (let i = 0; i < set.ids.length; i++) {
    if (!out.write(`${JSON.stringify({ id: set.ids[i], text: set.texts[i] })}\n`)) {
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  await rename(temporary, file);
}
