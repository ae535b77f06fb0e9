import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError } from '../errors.js';
import {
  assertBatchShape,
  assertClassCount,
  assertFiniteRow,
  formatId,
  IdChecker,
  type ExampleId,
  type TeacherOutputBatch,
} from '../io/teacherOutputs.js';
import { positiveInteger } from '../inputs/batches.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import { rowValues, type CacheRows } from './cacheRows.js';
import { scoreInto, type TeacherData } from './fillCache.js';
import { idsOfValues, readContextIds } from './ids.js';
import { checkedOutputSpec, teacherOutputSpec, type TeacherOutputs, type TeacherOutputSpec } from './outputSpec.js';
import { asTeacher, type Teacher, type TeacherContext, type TeacherLike } from './teacher.js';

/** Options of the {@link TeacherCache} constructor. */
export interface TeacherCacheOptions {
  /** Values per row; by default taken from the first rows stored. */
  numClasses?: number;
  /**
   * What the stored rows are: `'logits'` (default), `'probs'`, or a full
   * {@link TeacherOutputSpec}, e.g. `{ form: 'logits', exactness: 'temperature-dependent' }`
   * for rows computed at one temperature and exact only there (a `mean-probs`
   * ensemble's outputs): {@link TeacherCache.predict} then refuses another
   * temperature. Set by {@link TeacherCache.fromTeacher}.
   */
  outputs?: TeacherOutputs | TeacherOutputSpec;
  /** Rows to allocate up front (default 1024); the store doubles as needed. */
  initialCapacity?: number;
  /** The temperature the rows were computed at (for temperature-dependent rows). */
  temperature?: number;
}

/** Options of {@link TeacherCache.set}. */
export interface TeacherCacheSetOptions {
  /** Replace rows whose id is already stored (default false: `DUPLICATE_ID`). */
  overwrite?: boolean;
  /** Where row `i` came from, for messages (e.g. `part-00001.jsonl line 17`). */
  locate?: (row: number) => string;
}

/** Options of {@link TeacherCache.fromTeacher}. */
export interface FromTeacherOptions {
  /** Examples per teacher call for `{ x, ids }` data (default 32; a dataset is already batched). */
  batchSize?: number;
  /** Temperature passed to the teacher (default 1); matters only for temperature-dependent teachers. */
  temperature?: number;
  /** Overrides what the teacher returns (see {@link asTeacher}). */
  outputs?: TeacherOutputs | TeacherOutputSpec;
}

const DEFAULT_CAPACITY = 1024;

/**
 * Teacher outputs held in memory, looked up by example id: a {@link Teacher}
 * that returns, for each batch, the rows of the batch's ids. Never by
 * position: a shuffled dataset gets each example's own row (serving rows by
 * position is how shuffling silently misaligns targets, as in KD_Lib's
 * BERT2LSTM).
 *
 * Ids are strings, or integers in `[0, 2^24)` (tf.data turns numbers into
 * float32, which cannot tell 16777217 from 16777216); one kind per cache.
 * Rows are float32, `numClasses` wide, in one growable `Float32Array`.
 *
 * Fill it from a teacher ({@link TeacherCache.fromTeacher}, or
 * {@link cachedTeacher} to fill it during the first epoch), from files
 * ({@link TeacherCache.fromBatches} with any reader; `readTeacherCache` in
 * `kd-ts/node`), or with {@link TeacherCache.set}. Train with it as the
 * Distiller's teacher and `fitDataset` elements that carry `id`.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Distiller, TeacherCache } from 'kd-ts';
 *
 * const cache = new TeacherCache();
 * cache.set(['a', 'b', 'c'], [[2, -1], [0, 1], [-3, 3]]);
 * const batch = cache.get(['c', 'a']); // [[-3, 3], [2, -1]]
 * batch.dispose();
 *
 * // As a teacher: fitDataset elements { xs, id } get the rows of their ids.
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [4] })] });
 * const distiller = new Distiller({ teacher: cache, student });
 * ```
 */
export class TeacherCache implements Teacher {
  /** What the rows are; temperature-dependent rows are exact only at {@link TeacherCache.temperature}. */
  readonly outputs: TeacherOutputSpec;
  private storedTemperature: number | undefined;
  private classes: number | undefined;
  private values: Float32Array;
  private capacity: number;
  private readonly slots = new Map<ExampleId, number>();
  private slotIds: Array<ExampleId | undefined> = [];
  private readonly freeSlots: number[] = [];
  private readonly idChecker = new IdChecker();

  /**
   * @param options - See {@link TeacherCacheOptions}.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a bad class count, capacity or outputs.
   */
  constructor(options: TeacherCacheOptions = {}) {
    this.outputs = checkedOutputSpec(options.outputs);
    this.storedTemperature = options.temperature;
    if (options.numClasses !== undefined) positiveInteger(options.numClasses, 'numClasses');
    this.classes = options.numClasses;
    this.capacity = positiveInteger(options.initialCapacity ?? DEFAULT_CAPACITY, 'initialCapacity');
    this.values = new Float32Array(this.classes === undefined ? 0 : this.capacity * this.classes);
  }

  /** Rows stored. */
  get size(): number {
    return this.slots.size;
  }

  /** Values per row; undefined until the first rows are stored (unless given). */
  get numClasses(): number | undefined {
    return this.classes;
  }

  /** `'string'` or `'number'` once ids are stored. */
  get idKind(): 'string' | 'number' | undefined {
    return this.idChecker.idKind;
  }

  /** The temperature the rows were computed at, when known. */
  get temperature(): number | undefined {
    return this.storedTemperature;
  }

  /**
   * Whether a row is stored for `id`.
   *
   * @param id - An example id.
   * @returns True when stored.
   */
  has(id: ExampleId): boolean {
    return this.slots.has(id);
  }

  /**
   * Stores rows by id.
   *
   * @param ids - One id per row (an array, or a 1-D string/int32/float32 tensor, read synchronously).
   * @param logits - `[rows, numClasses]`: a 2-D tensor, nested arrays, or a flat row-major `Float32Array`.
   * @param options - See {@link TeacherCacheSetOptions}.
   * @throws {@link KdDataError} `DUPLICATE_ID` (an id already stored, or twice in `ids`), `ID_TYPE_MISMATCH`,
   *   `NON_FINITE_TEACHER_OUTPUT`, naming the id; nothing is stored then.
   * @throws {@link KdShapeError} `CLASS_COUNT_MISMATCH`, `LENGTH_MISMATCH`.
   */
  set(
    ids: readonly ExampleId[] | tf.Tensor,
    logits: CacheRows,
    options: TeacherCacheSetOptions = {},
  ): void {
    const idList = ids instanceof tf.Tensor ? idsOfValues(ids, ids.dataSync() as unknown as ArrayLike<unknown>) : ids;
    const rows = idList.length;
    const { values, numClasses } = rowValues(idList, logits, this.classes);
    if (rows === 0) return;
    this.addBatch({ ids: [...idList], logits: values, numClasses, ...(options.locate ? { locate: options.locate } : {}) }, options);
  }

  /**
   * Stores a batch as the readers yield it (see `readJsonlTeacherOutputs`, ...).
   *
   * @param batch - Ids and row-major float32 values.
   * @param options - `overwrite`: replace stored ids instead of failing with `DUPLICATE_ID`.
   * @throws Like {@link TeacherCache.set}, naming the row's file and line when the batch can locate it.
   */
  addBatch(batch: TeacherOutputBatch, options: { overwrite?: boolean } = {}): void {
    assertBatchShape(batch);
    const { ids, logits, numClasses } = batch;
    const where = (row: number) => () => `${batch.locate?.(row) ?? `row ${row}`} (id ${formatId(ids[row])})`;
    if (ids.length === 0) return;
    assertClassCount(numClasses, this.classes, () => `${where(0)()}: the cache holds rows of ${this.classes} classes, this batch`);
    // Check everything first: a failing batch stores nothing.
    const seen = new Set<ExampleId>();
    const kindBefore = this.idChecker.idKind;
    try {
      for (let row = 0; row < ids.length; row++) {
        const id = this.idChecker.check(ids[row], where(row));
        if ((!options.overwrite && this.slots.has(id)) || seen.has(id)) {
          throw new KdDataError(
            'DUPLICATE_ID',
            `${where(row)()}: this id is already ${seen.has(id) ? 'earlier in the same batch' : 'in the cache'}: ` +
              'ids must be unique per example (pass { overwrite: true } to replace rows on purpose)',
          );
        }
        seen.add(id);
        assertFiniteRow(logits, row * numClasses, numClasses, where(row));
      }
    } catch (error) {
      if (kindBefore === undefined && this.size === 0) this.idChecker.reset();
      throw error;
    }
    if (this.classes === undefined) {
      this.classes = numClasses;
      this.values = new Float32Array(this.capacity * numClasses);
    }
    for (let row = 0; row < ids.length; row++) {
      const id = ids[row]!;
      let slot = this.slots.get(id);
      if (slot === undefined) {
        slot = this.freeSlots.pop() ?? this.slotIds.length;
        if (slot === this.slotIds.length) this.slotIds.push(id);
        else this.slotIds[slot] = id;
        this.ensureCapacity(slot + 1);
        this.slots.set(id, slot);
      }
      this.values.set(logits.subarray(row * numClasses, (row + 1) * numClasses), slot * numClasses);
    }
  }

  /**
   * The rows of `ids`, in that order, as a new `[ids.length, numClasses]` tensor (the caller disposes it).
   *
   * @param ids - Ids (an array, or a 1-D tensor, read synchronously).
   * @returns A float32 Tensor2D.
   * @throws {@link KdDataError} `MISSING_ID` naming the first id not stored; `ID_TYPE_MISMATCH`.
   */
  get(ids: readonly ExampleId[] | tf.Tensor): tf.Tensor2D {
    const idList = ids instanceof tf.Tensor ? idsOfValues(ids, ids.dataSync() as unknown as ArrayLike<unknown>) : ids;
    return tf.tensor2d(this.lookup(idList), [idList.length, this.classes ?? 0], 'float32');
  }

  /**
   * The rows of `ids` as a flat row-major `Float32Array` (no tensor).
   *
   * @param ids - Ids.
   * @returns `ids.length × numClasses` values.
   * @throws {@link KdDataError} `MISSING_ID` naming the first id not stored; `ID_TYPE_MISMATCH`.
   */
  lookup(ids: readonly ExampleId[]): Float32Array {
    const C = this.classes ?? 0;
    const out = new Float32Array(ids.length * C);
    ids.forEach((id, row) => {
      const slot = this.slots.get(id);
      if (slot === undefined) throw this.missing(id, row);
      out.set(this.values.subarray(slot * C, (slot + 1) * C), row * C);
    });
    return out;
  }

  /**
   * Removes rows; their room is reused by later rows.
   *
   * @param ids - Ids to remove; ids not stored are ignored.
   */
  delete(ids: readonly ExampleId[]): void {
    for (const id of ids) {
      const slot = this.slots.get(id);
      if (slot === undefined) continue;
      this.slots.delete(id);
      this.slotIds[slot] = undefined;
      this.freeSlots.push(slot);
    }
  }

  /**
   * The teacher interface: the rows of the batch's ids (`context.ids`),
   * whatever the inputs. Reads the ids asynchronously (no webgl stall).
   *
   * @param _inputs - Ignored: the rows are looked up by id.
   * @param context - `ids` (required) and the temperature.
   * @returns A new `[batch, numClasses]` tensor.
   * @throws {@link KdConfigError} `IDS_REQUIRED` without `context.ids`; `INVALID_TEMPERATURE` for
   *   temperature-dependent rows asked at another temperature.
   * @throws {@link KdDataError} `MISSING_ID` naming the id; `ID_TYPE_MISMATCH`.
   */
  async predict(_inputs: ModelInputs, context: TeacherContext): Promise<tf.Tensor2D> {
    this.checkTemperature(context.temperature);
    const ids = await readContextIds(context, 'TeacherCache');
    return this.get(ids);
  }

  /**
   * Every id, in slot order (insertion order unless rows were deleted).
   *
   * @returns An iterator over the ids.
   */
  *ids(): IterableIterator<ExampleId> {
    for (const id of this.slotIds) if (id !== undefined) yield id;
  }

  /**
   * The rows in slot order (insertion order unless rows were deleted), in
   * batches, for the writers (`encodeJsonlTeacherOutputs`, `writeTeacherOutputs`, ...).
   * The values are views of the store: read each batch before changing the cache.
   *
   * @param batchSize - Rows per batch (default 4096).
   * @returns A generator of {@link TeacherOutputBatch}es.
   */
  *batches(batchSize = 4096): Generator<TeacherOutputBatch> {
    positiveInteger(batchSize, 'batchSize');
    const C = this.classes ?? 0;
    const holes = this.freeSlots.length > 0;
    for (let start = 0; start < this.slotIds.length; start += batchSize) {
      const end = Math.min(start + batchSize, this.slotIds.length);
      if (!holes) {
        yield { ids: this.slotIds.slice(start, end) as ExampleId[], logits: this.values.subarray(start * C, end * C), numClasses: C };
        continue;
      }
      const ids: ExampleId[] = [];
      for (let slot = start; slot < end; slot++) if (this.slotIds[slot] !== undefined) ids.push(this.slotIds[slot]!);
      if (ids.length > 0) yield { ids, logits: this.lookup(ids), numClasses: C };
    }
  }

  /**
   * Runs a teacher once over data with ids and stores its outputs.
   *
   * @param teacher - Any teacher (model, function, {@link Teacher}).
   * @param data - `{ x, ids }` (tensors and one id per row; `x` may be an array or map of tensors), or a
   *   dataset of `{ xs, teacherXs?, id }` batches, whose tensors are disposed as they are used.
   * @param options - See {@link FromTeacherOptions}.
   * @returns The filled cache, with the teacher's `outputs` (its {@link TeacherOutputSpec}) and, for
   *   temperature-dependent teachers, the temperature used.
   * @throws {@link KdConfigError} `IDS_REQUIRED` for dataset elements without `id`.
   * @throws {@link KdShapeError} `LENGTH_MISMATCH` when `ids` and `x` differ in rows.
   * @throws {@link KdDataError} `DUPLICATE_ID`, `ID_TYPE_MISMATCH`, `NON_FINITE_TEACHER_OUTPUT`.
   *
   * @example
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import * as tfl from '@tensorflow/tfjs-layers';
   * import { TeacherCache } from 'kd-ts';
   * const teacherModel = tfl.sequential({ layers: [tfl.layers.dense({ units: 5, inputShape: [20] })] });
   * const x = tf.randomNormal([100, 20]);
   * const ids = Array.from({ length: 100 }, (_, i) => i);
   * const cache = await TeacherCache.fromTeacher(teacherModel, { x, ids }, { batchSize: 32 });
   * console.log(cache.size, cache.numClasses);
   * ```
   */
  static async fromTeacher(
    teacher: TeacherLike,
    data: TeacherData,
    options: FromTeacherOptions = {},
  ): Promise<TeacherCache> {
    const adapted = asTeacher(teacher, { outputs: options.outputs });
    const temperature = options.temperature ?? 1;
    const cache = new TeacherCache({ outputs: teacherOutputSpec(adapted), temperature });
    await scoreInto(cache, adapted, data, { ...options, temperature });
    return cache;
  }

  /**
   * Fills a cache from teacher-output batches (any reader's output).
   *
   * @param batches - E.g. `readJsonlTeacherOutputs(text)`, or `readTeacherOutputs(dir)` from `kd-ts/node`.
   * @param options - See {@link TeacherCacheOptions}.
   * @returns The cache.
   * @throws Like {@link TeacherCache.addBatch}: `DUPLICATE_ID` naming the file and line, ...
   *
   * @example
   * ```ts
   * import { TeacherCache } from 'kd-ts';
   * import { readJsonlTeacherOutputs } from 'kd-ts/io';
   * const cache = await TeacherCache.fromBatches(readJsonlTeacherOutputs('{"id":"a","logits":[1,2]}\n'));
   * console.log(cache.size); // 1
   * ```
   */
  static async fromBatches(
    batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>,
    options: TeacherCacheOptions = {},
  ): Promise<TeacherCache> {
    const cache = new TeacherCache(options);
    for await (const batch of batches) cache.addBatch(batch);
    return cache;
  }

  /** @internal Sets the temperature the rows were computed at (used by {@link cachedTeacher}). */
  recordTemperature(temperature: number): void {
    this.storedTemperature ??= temperature;
  }

  /** @internal Throws when temperature-dependent rows are asked at another temperature. */
  checkTemperature(temperature: number): void {
    if (this.outputs.exactness === 'temperature-dependent' && this.storedTemperature !== undefined && temperature !== this.storedTemperature) {
      throw new KdConfigError(
        'INVALID_TEMPERATURE',
        `the cached teacher outputs were computed at temperature ${this.storedTemperature} and are exact only there ` +
          `(the teacher is temperature-dependent), but temperature ${temperature} was asked: distill at ` +
          `${this.storedTemperature}, or fill a new cache at ${temperature}`,
      );
    }
  }

  private ensureCapacity(rows: number): void {
    if (rows <= this.capacity && this.values.length >= rows * (this.classes ?? 0)) return;
    let capacity = Math.max(this.capacity, 1);
    while (capacity < rows) capacity *= 2;
    const grown = new Float32Array(capacity * this.classes!);
    grown.set(this.values);
    this.values = grown;
    this.capacity = capacity;
  }

  private missing(id: ExampleId, row: number): KdDataError {
    const kind = typeof id === 'string' ? 'string' : 'number';
    if (this.idKind !== undefined && kind !== this.idKind) {
      return new KdDataError(
        'ID_TYPE_MISMATCH',
        `batch row ${row} has id ${formatId(id)} (a ${kind}) but the cache holds ${this.idKind} ids: give the dataset ` +
          'ids of the same type as the teacher outputs (17 and "17" are different ids)',
      );
    }
    return new KdDataError(
      'MISSING_ID',
      `no teacher output for id ${formatId(id)} (batch row ${row}; the cache holds ${this.size} rows): compute it, ` +
        'or check that the dataset ids match the ids of the teacher outputs',
    );
  }
}
