import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';

// Files other programs read (teacher outputs, transfer sets) are written to a
// temporary name and renamed into place once complete and synced, so a reader
// never sees half a file and a failed write leaves nothing under the name.

/** Writes chunks to a temporary file, syncs it and renames it into place; removes it on failure. */
export async function writeAtomic(file: string, chunks: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): Promise<void> {
  const temporary = temporaryName(file);
  const handle = await fs.open(temporary, 'w');
  let completed = false;
  try {
    for await (const chunk of chunks) {
      if (typeof chunk === 'string') await handle.write(chunk);
      else {
        for (let offset = 0; offset < chunk.byteLength; ) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
          offset += bytesWritten;
        }
      }
    }
    await handle.sync();
    completed = true;
  } finally {
    await handle.close();
    if (!completed) await fs.rm(temporary, { force: true });
  }
  await fs.rename(temporary, file);
}

/**
 * A unique temporary name beside `file` (same directory, so the rename stays on one filesystem):
 * `<file>.<uuid>.tmp`. `crypto.randomUUID`, never `Math.random`, which a seeded run may have replaced.
 */
export function temporaryName(file: string): string {
  return `${file}.${randomUUID()}.tmp`;
}
