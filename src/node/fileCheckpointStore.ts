import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { CheckpointRecord, CheckpointStore } from '../checkpoints/store.js';
import { KdConfigError, KdDataError } from '../errors.js';
import { writeAtomic } from './atomicWrite.js';

/** Options of {@link fileCheckpointStore}. */
export interface FileCheckpointStoreOptions {
  /**
   * How many rolling checkpoints kd-ts keeps (the newest ones; `best` apart).
   * Default 2, so a corrupt newest checkpoint leaves a good one.
   */
  keep?: number;
}

/** What `<name>.json` holds: the record's manifest and the file its weights are in. */
interface StoredManifest {
  kdCheckpointFile: 1;
  weightsFile: string;
  byteLength: number;
  manifest: Record<string, unknown>;
}

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * A {@link CheckpointStore} in a directory, for Node. Each checkpoint is two
 * files: `<name>.<uuid>.bin` (the weights) and `<name>.json` (the manifest
 * and the weights file's name). Both are written to temporary names, synced
 * and renamed into place, the manifest last: a crash at any moment leaves
 * either the old checkpoint or the new one under a name, never half of one,
 * and `list` names only checkpoints whose manifest is in place. Replacing a
 * checkpoint (e.g. `best`) removes its old weights file only after the new
 * manifest is in place. Temporary names come from `crypto.randomUUID`, never
 * from `Math.random` (which a seeded run replaces). What a write killed mid-way
 * left (temporary files, a weights file no manifest names) goes at the next
 * write or removal of that name.
 *
 * @param directory - Where the checkpoints live (created when missing).
 * @param options - `keep`: rolling checkpoints kept (default 2).
 * @returns The store, for `fit`'s `checkpoint: { store }`.
 * @throws {@link KdConfigError} `INVALID_OPTION` for a `keep` that is not an integer ≥ 1.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import type { Distiller } from 'kd-ts';
 * import { fileCheckpointStore } from 'kd-ts/node';
 *
 * declare const distiller: Distiller;
 * declare const x: tf.Tensor;
 * declare const y: tf.Tensor;
 * // Killed and started again, the same command resumes where the run stopped.
 * const history = await distiller.fit(x, y, {
 *   epochs: 10,
 *   seed: 42,
 *   checkpoint: { store: fileCheckpointStore('runs/mnist', { keep: 2 }), everySteps: 200 },
 *   resume: true,
 * });
 * ```
 */
export function fileCheckpointStore(directory: string, options: FileCheckpointStoreOptions = {}): CheckpointStore {
  const keep = options.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1) {
    throw new KdConfigError('INVALID_OPTION', `fileCheckpointStore: keep must be an integer >= 1, got ${String(options.keep)}: keep at least 1 (2, the default, leaves a fallback)`);
  }
  const manifestPath = (name: string) => path.join(directory, `${checkName(name)}.json`);

  const readStored = async (name: string): Promise<StoredManifest> => {
    const text = await fs.readFile(manifestPath(name), 'utf8');
    let stored: StoredManifest;
    try {
      stored = JSON.parse(text) as StoredManifest;
    } catch (error) {
      throw new KdDataError('CHECKPOINT_CORRUPT', `checkpoint ${name} in ${directory}: its manifest is not JSON (${(error as Error).message}): the file is damaged; resume from an older checkpoint`, { cause: error });
    }
    if (stored === null || typeof stored !== 'object' || stored.kdCheckpointFile !== 1 || typeof stored.weightsFile !== 'string' || !NAME.test(stored.weightsFile)) {
      throw new KdDataError('CHECKPOINT_CORRUPT', `checkpoint ${name} in ${directory}: its manifest file is not one fileCheckpointStore wrote: the file is damaged; resume from an older checkpoint`);
    }
    return stored;
  };

  return {
    keep,
    async write(record: CheckpointRecord) {
      const name = checkName(record.name);
      await fs.mkdir(directory, { recursive: true });
      const weightsFile = `${name}.${randomUUID()}.bin`;
      await writeAtomic(path.join(directory, weightsFile), [new Uint8Array(record.weights)]);
      const stored: StoredManifest = { kdCheckpointFile: 1, weightsFile, byteLength: record.weights.byteLength, manifest: record.manifest };
      await writeAtomic(manifestPath(name), [JSON.stringify(stored)]);
      await syncDirectory(directory);
      // Only now that the new manifest is in place: the replaced checkpoint's weights, and what killed writes left.
      await removeOtherFiles(directory, name, weightsFile);
    },
    async list() {
      const entries = await fs.readdir(directory).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [] as string[];
        throw error;
      });
      return entries
        .filter((f) => f.endsWith('.json') && NAME.test(f))
        .map((f) => f.slice(0, -'.json'.length))
        .sort();
    },
    async read(name: string) {
      const stored = await readStored(name);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(path.join(directory, stored.weightsFile));
      } catch (error) {
        throw new KdDataError('CHECKPOINT_CORRUPT', `checkpoint ${name} in ${directory}: its weights file ${stored.weightsFile} cannot be read (${(error as Error).message}): resume from an older checkpoint`, { cause: error });
      }
      const weights = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      return { name, manifest: stored.manifest, weights };
    },
    async remove(name: string) {
      await fs.rm(manifestPath(name), { force: true });
      await removeOtherFiles(directory, name, undefined);
    },
  };
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/**
 * Removes the files of checkpoint `name` other than `keepWeights`: weights files (the replaced checkpoint's,
 * or one a kill between the two renames left without a manifest) and temporary files of killed writes.
 * Only the exact `<name>.<uuid>.bin` and `<name>.(json|<uuid>.bin).<uuid>.tmp` names this store writes.
 */
async function removeOtherFiles(directory: string, name: string, keepWeights: string | undefined): Promise<void> {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const stray = new RegExp(`^${escaped}\\.(?:json\\.${UUID}\\.tmp|${UUID}\\.bin(?:\\.${UUID}\\.tmp)?)$`);
  for (const file of await fs.readdir(directory)) {
    if (file !== keepWeights && stray.test(file)) await fs.rm(path.join(directory, file), { force: true });
  }
}

function checkName(name: string): string {
  if (!NAME.test(name) || name.endsWith('.json') || name.endsWith('.tmp')) {
    throw new KdConfigError('INVALID_OPTION', `checkpoint name ${JSON.stringify(name)} is not a plain file name (letters, digits, ., _, -; no leading dot): use names like step-000000100`);
  }
  return name;
}

/** Makes the renames durable (a no-op where directories cannot be opened, e.g. Windows). */
async function syncDirectory(directory: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(directory, 'r');
    await handle.sync();
  } catch {
    // Directory fsync is not supported everywhere; the files themselves were synced.
  } finally {
    await handle?.close();
  }
}
