import { KdConfigError, KdDataError } from '../errors.js';
import type { CheckpointRecord, CheckpointStore } from './store.js';

/** Options of {@link indexedDbCheckpointStore}. */
export interface IndexedDbCheckpointStoreOptions {
  /**
   * How many rolling checkpoints kd-ts keeps (the newest ones; `best` apart).
   * Default 2, so a corrupt newest checkpoint leaves a good one.
   */
  keep?: number;
  /**
   * The IndexedDB factory to use. Default: `globalThis.indexedDB` (a page or
   * a worker). Pass another one to test in Node (e.g. `fake-indexeddb`'s).
   */
  indexedDB?: IDBFactory;
}

/** The store's IndexedDB database: `kd-ts-checkpoints:<name>`, one object store of records. */
const DATABASE_PREFIX = 'kd-ts-checkpoints:';
const RECORDS = 'records';
const VERSION = 1;

/** What one IndexedDB value holds: the manifest and the weights side by side, so one `put` writes both. */
interface StoredRecord {
  format: 1;
  name: string;
  manifest: Record<string, unknown>;
  weights: ArrayBuffer;
  byteLength: number;
}

/**
 * A {@link CheckpointStore} in the browser's IndexedDB, for runs that must
 * survive a reload or a closed tab. Each record is one IndexedDB value
 * (manifest and weights together) written in one `readwrite` transaction
 * with `durability: 'strict'`: a reload or a crash mid-write aborts the
 * transaction and leaves the store as it was, and `write` resolves only once
 * the browser reports the transaction committed. The database is named
 * `kd-ts-checkpoints:<name>` and opened on first use; it is browser-safe
 * (no Node API) and works in pages and workers.
 *
 * @param name - The run's name: one database per name, so two runs in one
 *   origin keep their checkpoints apart.
 * @param options - `keep` (default 2) and, for tests, another `indexedDB` factory.
 * @returns The store, for `fit(..., { checkpoint: { store } })`.
 * @throws {@link KdConfigError} `INVALID_OPTION` for an empty name or a
 *   `keep` that is not a positive integer; `CHECKPOINT_UNSUPPORTED` when the
 *   environment has no IndexedDB (Node: use `fileCheckpointStore` from
 *   `kd-ts/node`). The store's `read` rejects with {@link KdDataError}
 *   `CHECKPOINT_CORRUPT` for a missing or partial record; its methods reject
 *   with `CHECKPOINT_UNSUPPORTED` when the database cannot be opened.
 *
 * @example
 * ```ts
 * import { indexedDbCheckpointStore } from 'kd-ts/distill';
 *
 * // In a page: checkpoints of the run 'mnist-student' survive a reload.
 * if (typeof indexedDB !== 'undefined') {
 *   const store = indexedDbCheckpointStore('mnist-student', { keep: 3 });
 *   const names = await store.list(); // oldest first, e.g. ['step-000000100', 'step-000000200']
 *   console.log(names.length > 0 ? `resuming from ${names.at(-1)}` : 'fresh run');
 * }
 * ```
 */
export function indexedDbCheckpointStore(name: string, options: IndexedDbCheckpointStoreOptions = {}): CheckpointStore {
  if (typeof name !== 'string' || name.length === 0) {
    throw new KdConfigError('INVALID_OPTION', 'indexedDbCheckpointStore needs a non-empty name: pass the run\'s name, e.g. "mnist-student"');
  }
  const keep = options.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1) {
    throw new KdConfigError('INVALID_OPTION', `indexedDbCheckpointStore's keep must be a positive integer, got ${String(options.keep)}: pass e.g. keep: 2`);
  }
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (factory === undefined) {
    throw new KdConfigError(
      'CHECKPOINT_UNSUPPORTED',
      'indexedDbCheckpointStore needs IndexedDB, which this environment lacks (Node has none): in Node use fileCheckpointStore from kd-ts/node',
    );
  }
  const database = DATABASE_PREFIX + name;
  let opened: Promise<IDBDatabase> | undefined;
  const open = (): Promise<IDBDatabase> => {
    opened ??= openDatabase(factory, database).catch((error: unknown) => {
      opened = undefined; // the next call tries again
      throw error;
    });
    return opened;
  };

  return {
    keep,
    async write(record) {
      const stored: StoredRecord = {
        format: 1,
        name: record.name,
        manifest: record.manifest,
        weights: record.weights,
        byteLength: record.weights.byteLength,
      };
      const db = await open();
      await transact(db, 'readwrite', (records) => records.put(stored, record.name));
    },
    async list() {
      const db = await open();
      const keys = await transact(db, 'readonly', (records) => records.getAllKeys());
      return keys.filter((key): key is string => typeof key === 'string').sort();
    },
    async read(recordName) {
      const db = await open();
      const value = await transact(db, 'readonly', (records) => records.get(recordName) as IDBRequest<unknown>);
      return checkedRecord(value, recordName, database);
    },
    async remove(recordName) {
      const db = await open();
      await transact(db, 'readwrite', (records) => records.delete(recordName));
    },
  };
}

/** Opens (and on first use creates) the database; another tab's upgrade closes this connection instead of blocking it. */
function openDatabase(factory: IDBFactory, database: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let request: IDBOpenDBRequest;
    try {
      request = factory.open(database, VERSION);
    } catch (error) {
      reject(unavailable(database, error));
      return;
    }
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(RECORDS)) request.result.createObjectStore(RECORDS);
    };
    request.onsuccess = () => {
      const db = request.result;
      db.onversionchange = () => db.close();
      resolve(db);
    };
    request.onerror = () => reject(unavailable(database, request.error));
    request.onblocked = () =>
      reject(unavailable(database, new Error('another connection (another tab?) holds an older version of the database open')));
  });
}

/**
 * Runs one request in its own transaction and resolves with its result once
 * the transaction has committed (not when the request succeeds: a write is
 * durable only at `complete`).
 */
function transact<T>(db: IDBDatabase, mode: IDBTransactionMode, request: (records: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    let transaction: IDBTransaction;
    try {
      // 'strict': the browser flushes to disk before `complete`, so a crash right after write() resolves keeps the record.
      transaction = db.transaction(RECORDS, mode, { durability: mode === 'readwrite' ? 'strict' : 'default' });
    } catch (error) {
      reject(unavailable(db.name, error));
      return;
    }
    let pending: IDBRequest<T>;
    try {
      pending = request(transaction.objectStore(RECORDS));
    } catch (error) {
      // e.g. DataCloneError: a manifest that is not plain JSON. Nothing was written.
      transaction.abort();
      reject(new KdDataError('CHECKPOINT_CORRUPT', `a checkpoint cannot be stored in IndexedDB database "${db.name}" (${describe(error)}): the manifest must be plain JSON`, { cause: error }));
      return;
    }
    transaction.oncomplete = () => resolve(pending.result);
    transaction.onabort = () => reject(unavailable(db.name, transaction.error ?? pending.error));
    transaction.onerror = (event) => event.preventDefault(); // onabort follows and reports it
  });
}

/** The record as written, or a typed error naming what is missing or partial. */
function checkedRecord(value: unknown, name: string, database: string): CheckpointRecord {
  const where = `checkpoint "${name}" in IndexedDB database "${database}"`;
  if (value === undefined) {
    throw new KdDataError('CHECKPOINT_CORRUPT', `${where} does not exist: list() names the checkpoints the store holds`);
  }
  const stored = value as Partial<StoredRecord>;
  const problem =
    typeof stored !== 'object' || stored === null
      ? 'is not a kd-ts checkpoint record'
      : stored.format !== 1
        ? `has format ${String(stored.format)}, this kd-ts reads format 1`
        : typeof stored.manifest !== 'object' || stored.manifest === null || Array.isArray(stored.manifest)
          ? 'has no manifest'
          : !(stored.weights instanceof ArrayBuffer)
            ? 'has no weights'
            : stored.weights.byteLength !== stored.byteLength
              ? `has ${stored.weights.byteLength} bytes of weights, ${String(stored.byteLength)} were written`
              : undefined;
  if (problem !== undefined) {
    throw new KdDataError('CHECKPOINT_CORRUPT', `${where} ${problem}: resume from an older checkpoint, or remove this one`);
  }
  return { name, manifest: stored.manifest!, weights: stored.weights! };
}

function unavailable(database: string, cause: unknown): KdConfigError {
  return new KdConfigError(
    'CHECKPOINT_UNSUPPORTED',
    `IndexedDB database "${database}" cannot be used (${describe(cause)}): check the browser allows storage for this origin (private mode, quota)`,
    { cause },
  );
}

function describe(error: unknown): string {
  return error instanceof Error || (typeof DOMException !== 'undefined' && error instanceof DOMException) ? error.message : String(error);
}
