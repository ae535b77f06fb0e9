import * as tf from '@tensorflow/tfjs-core';
import type { KdConfigError, KdDataError } from '../errors.js';
import { assertBatchShape, formatId, IdChecker, type ExampleId, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { positiveInteger } from '../inputs/batches.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import { assertTopKOption } from '../io/topKRows.js';
import type { TopKLogits } from '../losses/topK.js';
import { cacheForm, checkNewIds, fullCacheAsTopK, missingId, rowValues, temperatureMismatch, topKCacheAsFull, type CacheRows } from './cacheRows.js';
import { scoreInto, type TeacherData } from './fillCache.js';
import { idsOfValues, readContextIds } from './ids.js';
import { checkedOutputSpec, teacherOutputSpec, type TeacherOutputs, type TeacherOutputSpec } from './outputSpec.js';
import { asTeacher, type Teacher, type TeacherContext, type TeacherLike, type TeacherPrediction } from './teacher.js';

/** Options of the {@link TeacherCache} constructor. */
export interface TeacherCacheOptions {
  /**
   * The teacher's class count (values per full row); by default taken from
   * the first rows stored. For a top-k cache, class ids at or above it are refused.
   */
  numClasses?: number;
  /**
   * Keep each row as the teacher's k largest logits and their class ids
   * (k·8 bytes a row instead of classes·4): full rows stored into the cache
   * are cut to their top k, and {@link TeacherCache.predict} serves
   * `TopKLogits` (`{ ids, logits }`, `[batch, k]`) for `kind: 'kl'`. By
   * default a cache holds what it is first given: full rows, or top-k rows
   * (from a top-k file).
   */
  topK?: number;
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
  /** Store the teacher's k largest logits per row and their class ids (see {@link TeacherCacheOptions.topK}). */
  topK?: number;
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
 * Rows are float32, `numClasses` wide, in one growable `Float32Array`; a
 * top-k cache (`{ topK: k }`, or filled from top-k files) keeps k values and
 * k int32 class ids a row and serves `TopKLogits`.
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
export class TeacherCache implements Teacher<TeacherPrediction> {
  /** What the rows are; temperature-dependent rows are exact only at {@link TeacherCache.temperature}. */
  readonly outputs: TeacherOutputSpec;
  private storedTemperature: number | undefined;
  private classes: number | undefined;
  private k: number | undefined; // for a top-k cache
  private form: 'full' | 'top-k' | undefined; // undefined until the option or the first rows say
  private values = new Float32Array(0);
  private classIds = new Int32Array(0);
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
    if (options.topK !== undefined) {
      assertTopKOption(options.topK, this.classes);
      this.k = options.topK;
      this.form = 'top-k';
    }
    this.capacity = positiveInteger(options.initialCapacity ?? DEFAULT_CAPACITY, 'initialCapacity');
  }

  /** Rows stored. */
  get size(): number {
    return this.slots.size;
  }

  /** The teacher's class count (values per full row); undefined until known. */
  get numClasses(): number | undefined {
    return this.classes;
  }

  /** k for a top-k cache (values and class ids per row); undefined for full rows. */
  get topK(): number | undefined {
    return this.k;
  }

  private get width(): number {
    return (this.form === 'top-k' ? this.k : this.classes) ?? 0; // values per stored row
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
   * @param logits - `[rows, numClasses]`: a 2-D tensor, nested arrays, or a flat row-major `Float32Array`
   *   (cut to the top k in a top-k cache); or top-k rows as `TopKLogits` (`{ ids, logits }` tensors, `[rows, k]`).
   * @param options - See {@link TeacherCacheSetOptions}.
   * @throws {@link KdDataError} `DUPLICATE_ID` (an id already stored, or twice in `ids`), `ID_TYPE_MISMATCH`,
   *   `NON_FINITE_TEACHER_OUTPUT`, `INVALID_TOP_K_IDS`, naming the id; nothing is stored then.
   * @throws {@link KdShapeError} `CLASS_COUNT_MISMATCH`, `LENGTH_MISMATCH`.
   * @throws {@link KdConfigError} `INVALID_TOP_K`: top-k rows in a full cache, another k, or k ≥ the class count.
   */
  set(ids: readonly ExampleId[] | tf.Tensor, logits: CacheRows, options: TeacherCacheSetOptions = {}): void {
    const idList = ids instanceof tf.Tensor ? idsOfValues(ids, ids.dataSync() as unknown as ArrayLike<unknown>) : ids;
    const rows = idList.length;
    const { values, numClasses, topIds } = rowValues(idList, logits, this.classes);
    if (rows === 0) return;
    const batch: TeacherOutputBatch = { ids: [...idList], logits: values, numClasses, ...(topIds ? { topIds } : {}) };
    this.addBatch(options.locate ? { ...batch, locate: options.locate } : batch, options);
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
    const { ids } = batch;
    const where = (row: number) => () => `${batch.locate?.(row) ?? `row ${row}`} (id ${formatId(ids[row])})`;
    if (ids.length === 0) return;
    const rows = cacheForm(batch, { form: this.form, k: this.k, classes: this.classes }, where);
    const { values: logits, width: numClasses } = rows;
    // Check everything first: a failing batch stores nothing.
    checkNewIds(ids, this.idChecker, (id) => !options.overwrite && this.slots.has(id), this.size === 0, where);
    this.form = rows.form;
    this.k = rows.k;
    this.classes = rows.classes;
    if (this.values.length === 0) {
      this.values = new Float32Array(this.capacity * numClasses);
      if (rows.classIds !== undefined) this.classIds = new Int32Array(this.capacity * numClasses);
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
      if (rows.classIds !== undefined) this.classIds.set(rows.classIds.subarray(row * numClasses, (row + 1) * numClasses), slot * numClasses);
    }
  }

  /**
   * The rows of `ids`, in that order, as a new `[ids.length, numClasses]` tensor (the caller disposes it).
   *
   * @param ids - Ids (an array, or a 1-D tensor, read synchronously).
   * @returns A float32 Tensor2D.
   * @throws {@link KdDataError} `MISSING_ID` naming the first id not stored; `ID_TYPE_MISMATCH`.
   * @throws {@link KdConfigError} `INVALID_TOP_K` for a top-k cache: use {@link TeacherCache.getTopK}.
   */
  get(ids: readonly ExampleId[] | tf.Tensor): tf.Tensor2D {
    if (this.form === 'top-k') throw topKCacheAsFull('get');
    const idList = ids instanceof tf.Tensor ? idsOfValues(ids, ids.dataSync() as unknown as ArrayLike<unknown>) : ids;
    return tf.tensor2d(this.lookup(idList), [idList.length, this.classes ?? 0], 'float32');
  }

  /**
   * The top-k rows of `ids`, in that order (a top-k cache only): new tensors the caller disposes.
   *
   * @param ids - Ids (an array, or a 1-D tensor, read synchronously).
   * @returns `TopKLogits`: int32 class ids and float32 logits, both `[ids.length, k]`.
   * @throws {@link KdDataError} `MISSING_ID` naming the first id not stored; `ID_TYPE_MISMATCH`.
   * @throws {@link KdConfigError} `INVALID_TOP_K` for a cache of full rows: use {@link TeacherCache.get}.
   */
  getTopK(ids: readonly ExampleId[] | tf.Tensor): TopKLogits {
    if (this.form !== 'top-k') throw fullCacheAsTopK();
    const idList = ids instanceof tf.Tensor ? idsOfValues(ids, ids.dataSync() as unknown as ArrayLike<unknown>) : ids;
    const values = this.lookup(idList);
    const classIds = this.lookupClassIds(idList);
    return { ids: tf.tensor2d(classIds, [idList.length, this.k!], 'int32'), logits: tf.tensor2d(values, [idList.length, this.k!], 'float32') };
  }

  /**
   * The rows of `ids` as a flat row-major `Float32Array` (no tensor); a top-k cache's k values a row.
   *
   * @param ids - Ids.
   * @returns `ids.length × numClasses` values (`× k` in a top-k cache).
   * @throws {@link KdDataError} `MISSING_ID` naming the first id not stored; `ID_TYPE_MISMATCH`.
   */
  lookup(ids: readonly ExampleId[]): Float32Array {
    return this.gather(ids, this.values, new Float32Array(ids.length * this.width));
  }

  /**
   * A top-k cache's class ids of `ids`, row-major (no tensor).
   *
   * @param ids - Ids.
   * @returns `ids.length × k` class ids, in the order of {@link TeacherCache.lookup}'s values.
   * @throws {@link KdDataError} `MISSING_ID`; {@link KdConfigError} `INVALID_TOP_K` for a cache of full rows.
   */
  lookupClassIds(ids: readonly ExampleId[]): Int32Array {
    if (this.form !== 'top-k') throw fullCacheAsTopK();
    return this.gather(ids, this.classIds, new Int32Array(ids.length * this.width));
  }

  private gather<T extends Float32Array | Int32Array>(ids: readonly ExampleId[], store: T, out: T): T {
    const C = this.width;
    ids.forEach((id, row) => {
      const slot = this.slots.get(id);
      if (slot === undefined) throw missingId(id, row, this.idKind, this.size);
      out.set(store.subarray(slot * C, (slot + 1) * C), row * C);
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
   * @returns A new `[batch, numClasses]` tensor; for a top-k cache, `TopKLogits` (`[batch, k]` int32 class
   *   ids and logits), which `distillationLoss` (`kind: 'kl'`) takes in place of full logits.
   * @throws {@link KdConfigError} `IDS_REQUIRED` without `context.ids`; `INVALID_TEMPERATURE` for
   *   temperature-dependent rows asked at another temperature.
   * @throws {@link KdDataError} `MISSING_ID` naming the id; `ID_TYPE_MISMATCH`.
   */
  async predict(_inputs: ModelInputs, context: TeacherContext): Promise<tf.Tensor2D | TopKLogits> {
    this.checkTemperature(context.temperature);
    const ids = await readContextIds(context, 'TeacherCache');
    return this.form === 'top-k' ? this.getTopK(ids) : this.get(ids);
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
    const C = this.width;
    const top = this.form === 'top-k' ? (this.classes === undefined ? {} : { classCount: this.classes }) : undefined;
    for (let start = 0; start < this.slotIds.length; start += batchSize) {
      const end = Math.min(start + batchSize, this.slotIds.length);
      const ids = this.slotIds.slice(start, end).filter((id) => id !== undefined);
      if (ids.length === 0) continue;
      const whole = ids.length === end - start; // no deleted rows here: views of the store
      const logits = whole ? this.values.subarray(start * C, end * C) : this.lookup(ids);
      if (top === undefined) yield { ids, logits, numClasses: C };
      else yield { ids, logits, numClasses: C, topIds: whole ? this.classIds.subarray(start * C, end * C) : this.lookupClassIds(ids), ...top };
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
    const cache = new TeacherCache({
      outputs: teacherOutputSpec(adapted),
      temperature,
      ...(options.topK === undefined ? {} : { topK: options.topK }),
    });
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
      throw temperatureMismatch(this.storedTemperature, temperature);
    }
  }

  private ensureCapacity(rows: number): void {
    if (rows <= this.capacity && this.values.length >= rows * this.width) return;
    let capacity = Math.max(this.capacity, 1);
    while (capacity < rows) capacity *= 2;
    const grown = new Float32Array(capacity * this.width);
    grown.set(this.values);
    this.values = grown;
    if (this.form === 'top-k') {
      const grownIds = new Int32Array(capacity * this.width);
      grownIds.set(this.classIds);
      this.classIds = grownIds;
    }
    this.capacity = capacity;
  }
}
