/**
 * One checkpoint as a {@link CheckpointStore} keeps it: a JSON manifest and
 * one binary blob. The store treats both as opaque; kd-ts writes in the
 * manifest everything it needs to check and restore the blob (the run's
 * position and fingerprint, the random streams, the History, the weight specs
 * of the student, optimizer and projections, the blob's length and checksum).
 */
export interface CheckpointRecord {
  /**
   * Unique in the store, and ordered by age when sorted as strings (kd-ts
   * writes e.g. `step-000001200`; the best checkpoint is named `best`).
   */
  name: string;
  /** A JSON-serializable object. */
  manifest: Record<string, unknown>;
  /** The weights, laid out as the manifest's weight specs say. */
  weights: ArrayBuffer;
}

/**
 * Where a run's checkpoints live: four primitives a user can implement for
 * any storage (S3, OPFS, a database). kd-ts decides what to write, when, what
 * to keep (`keep`) and which checkpoint to resume from; a store only writes,
 * lists, reads and removes records.
 *
 * @example
 * ```ts
 * import type { CheckpointRecord, CheckpointStore } from 'kd-ts/distill';
 *
 * // A store in memory (a test double; nothing survives the process).
 * const records = new Map<string, CheckpointRecord>();
 * const memoryStore: CheckpointStore = {
 *   keep: 2,
 *   async write(record) { records.set(record.name, { ...record, weights: record.weights.slice(0) }); },
 *   async list() { return [...records.keys()].sort(); },
 *   async read(name) {
 *     const record = records.get(name);
 *     if (record === undefined) throw new Error(`no checkpoint ${name}`);
 *     return record;
 *   },
 *   async remove(name) { records.delete(name); },
 * };
 * ```
 */
export interface CheckpointStore {
  /**
   * How many rolling checkpoints to keep (the newest ones; `best` is kept
   * apart and not counted). kd-ts removes older ones only after a newer one
   * is written. Default 2, so a corrupt newest checkpoint leaves a good one.
   */
  readonly keep?: number;
  /**
   * Writes a record atomically: after a crash the store holds either the
   * whole record or none of it (a record of the same name is replaced).
   */
  write(record: CheckpointRecord): Promise<void>;
  /** The names of the records the store holds, sorted as strings (oldest first). */
  list(): Promise<string[]>;
  /** Reads a record; rejects when it is missing or cannot be read. */
  read(name: string): Promise<CheckpointRecord>;
  /** Removes a record (no error when it is already gone). */
  remove(name: string): Promise<void>;
}
