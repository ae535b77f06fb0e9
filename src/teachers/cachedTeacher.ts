import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdDataError, KdShapeError } from '../errors.js';
import { formatId, type ExampleId } from '../io/teacherOutputs.js';
import { readContextIds } from './ids.js';
import { TeacherCache } from './TeacherCache.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import { teacherOutputSpec, type TeacherOutputs, type TeacherOutputSpec } from './outputSpec.js';
import {
  asTeacher,
  teacherModels,
  type GraphModelLike,
  type Teacher,
  type TeacherContext,
  type TeacherFunction,
  type TeacherLike,
  type TeacherModels,
  type TeacherPrediction,
} from './teacher.js';
import { isTopKLogits, type TopKLogits } from '../losses/topK.js';

/**
 * A teacher that fills a {@link TeacherCache} as it goes; see {@link cachedTeacher}.
 * `Output` is what `predict` serves: tensors, or `TopKLogits` for a cache made with `topK`.
 */
export interface CachedTeacher<Output extends TeacherPrediction = tf.Tensor> extends Teacher<Output> {
  /** The rows computed so far. */
  readonly cache: TeacherCache;
  /** The wrapped teacher, adapted to the {@link Teacher} interface. */
  readonly teacher: Teacher;
  /** The original object passed to {@link cachedTeacher} (a model, function or {@link Teacher}), as given. */
  readonly source: TeacherLike;
  /** What the wrapped teacher returns, and so what the cache holds. */
  readonly outputs: TeacherOutputSpec;
  /** How many times the wrapped teacher has run. */
  readonly teacherCalls: number;
}

/**
 * Wraps a teacher so that it runs only on ids it has not seen: the first
 * time a batch's ids come by (the first epoch of `fitDataset`), the teacher
 * scores the batch and its rows are stored by id; afterwards the rows come
 * from the cache and the teacher never runs again.
 *
 * Ids must be unique per example: two examples with one id get the row of
 * whichever came first. (Within one batch, an id whose rows differ is
 * refused with `DUPLICATE_ID`.)
 *
 * With `topK: k`, the cache keeps each row's k largest logits and their class
 * ids (k·8 bytes a row) and every batch is served as `TopKLogits` (for
 * `kind: 'kl'`), the first epoch included.
 *
 * @param teacher - Any teacher (model, function, {@link Teacher}).
 * @param options - `outputs` overrides what the teacher returns; `initialCapacity` sizes the store; `topK`
 *   keeps the top k of each row (see `TeacherCacheOptions.topK`).
 * @returns A {@link CachedTeacher} (its `source` is `teacher`): use it as the Distiller's teacher, with `fitDataset` elements carrying `id`.
 * @throws {@link KdConfigError} `INVALID_TOP_K` for a `topK` that is not a positive integer; (from `predict`)
 *   `IDS_REQUIRED` when a batch has no ids, `INVALID_TOP_K` when topK is not below the teacher's class count.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { cachedTeacher, Distiller } from 'kd-ts';
 *
 * const bigModel = tfl.sequential({ layers: [
 *   tfl.layers.dense({ units: 256, activation: 'relu', inputShape: [20] }),
 *   tfl.layers.dense({ units: 5 }),
 * ] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 5, inputShape: [20] })] });
 * const teacher = cachedTeacher(bigModel);
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: 'adam', temperature: 4 });
 * // Elements { xs, id } (a tf.data.Dataset fits too); fresh tensors each pass: fitDataset disposes them.
 * const x = tf.randomNormal([256, 20]);
 * const datasetWithIds = {
 *   iterator: async () => (async function* () {
 *     for (let start = 0; start < 256; start += 64) {
 *       yield { xs: tf.slice(x, start, 64), id: tf.range(start, start + 64, 1, 'int32') };
 *     }
 *   })(),
 * };
 * // The teacher runs in epoch 1 only.
 * await distiller.fitDataset(datasetWithIds, { epochs: 5 });
 * console.log(teacher.teacherCalls, teacher.cache.size);
 * ```
 */
export function cachedTeacher(
  teacher: TeacherLike,
  options: CachedTeacherOptions & { topK: number },
): CachedTeacher<TopKLogits>;
export function cachedTeacher(
  teacher: Teacher | tfl.LayersModel | GraphModelLike | TeacherFunction,
  options?: CachedTeacherOptions & { topK?: undefined },
): CachedTeacher;
export function cachedTeacher(teacher: TeacherLike, options?: CachedTeacherOptions): CachedTeacher<TeacherPrediction>;
export function cachedTeacher(teacher: TeacherLike, options: CachedTeacherOptions = {}): CachedTeacher<TeacherPrediction> {
  return new CachingTeacher(asTeacher(teacher, { outputs: options.outputs }), teacher, options);
}

/** Options of {@link cachedTeacher}. */
export interface CachedTeacherOptions {
  /** Overrides what the teacher returns (`'logits'`, `'probs'` or a full {@link TeacherOutputSpec}). */
  outputs?: TeacherOutputs | TeacherOutputSpec;
  /** Rows to allocate room for at first (the store grows as needed). */
  initialCapacity?: number;
  /** Keep only the k largest logits of each row and serve `TopKLogits` (see `TeacherCacheOptions.topK`). */
  topK?: number;
}

class CachingTeacher implements CachedTeacher<TeacherPrediction> {
  readonly cache: TeacherCache;
  readonly outputs: TeacherOutputSpec;
  teacherCalls = 0;

  constructor(
    readonly teacher: Teacher,
    readonly source: TeacherLike,
    options: { initialCapacity?: number; topK?: number },
  ) {
    this.outputs = teacherOutputSpec(teacher);
    const { initialCapacity, topK } = options;
    this.cache = new TeacherCache({
      outputs: this.outputs,
      ...(initialCapacity === undefined ? {} : { initialCapacity }),
      ...(topK === undefined ? {} : { topK }),
    });
  }

  /** The wrapped teacher's LayersModels: the Distiller checks the student shares none of their weights. */
  models(): TeacherModels {
    return teacherModels(this.teacher);
  }

  async predict(inputs: ModelInputs, context: TeacherContext): Promise<TeacherPrediction> {
    this.cache.checkTemperature(context.temperature);
    const ids = await readContextIds(context, 'cachedTeacher');
    const serve = () => (this.cache.topK === undefined ? this.cache.get(ids) : this.cache.getTopK(ids));
    const unseen = ids.filter((id) => !this.cache.has(id));
    if (unseen.length === 0) return serve();
    this.teacherCalls++;
    const out = (await this.teacher.predict(inputs, context)) as TeacherPrediction;
    let keep = false;
    try {
      const rows = await predictionRows(out, ids.length);
      const { values, classIds, width: C } = rows;
      const newRows = new Map<ExampleId, number>();
      ids.forEach((id, row) => {
        if (this.cache.has(id)) return;
        const first = newRows.get(id);
        if (first === undefined) newRows.set(id, row);
        else if (!sameRow(values, first, row, C) || (classIds !== undefined && !sameRow(classIds, first, row, C))) {
          throw new KdDataError(
            'DUPLICATE_ID',
            `batch rows ${first} and ${row} share id ${formatId(id)} but the teacher scores them differently: ` +
              'ids must be unique per example',
          );
        }
      });
      const newIds = [...newRows.keys()];
      const pick = <T extends Float32Array | Int32Array>(from: T, into: T): T => {
        newIds.forEach((id, k) => into.set(from.subarray(newRows.get(id)! * C, (newRows.get(id)! + 1) * C), k * C));
        return into;
      };
      const batch = { ids: newIds, logits: pick(values, new Float32Array(newIds.length * C)), numClasses: C };
      this.cache.addBatch(classIds === undefined ? batch : { ...batch, topIds: pick(classIds, new Int32Array(newIds.length * C)) });
      this.cache.recordTemperature(context.temperature);
      // All rows new and stored as given: the teacher's own tensor is the answer. Otherwise serve
      // every row from the cache, so repeated ids get the row stored first.
      if (out instanceof tf.Tensor && this.cache.topK === undefined && unseen.length === ids.length && newIds.length === ids.length) {
        keep = true;
        return out.dtype === 'float32' ? out : tf.cast(out, 'float32');
      }
      return serve();
    } finally {
      if (isTopKLogits(out)) tf.dispose([out.ids, out.logits]);
      else if (!keep || out.dtype !== 'float32') out.dispose();
    }
  }
}

/** A teacher's output for `rows` ids as flat rows: full rows, or top-k rows with their class ids. */
async function predictionRows(
  out: TeacherPrediction,
  rows: number,
): Promise<{ values: Float32Array; classIds?: Int32Array; width: number }> {
  const shape = isTopKLogits(out) ? out.logits.shape : out.shape;
  if (shape.length !== 2 || shape[0] !== rows || (isTopKLogits(out) && out.ids.shape.join() !== shape.join())) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `the teacher returned [${shape.join(', ')}] for a batch of ${rows} ids: it must return [batch, classes] ` +
        '(or top-k ids and logits, both [batch, k])',
    );
  }
  if (!isTopKLogits(out)) return { values: Float32Array.from((await out.data()) as Float32Array), width: shape[1]! };
  const top: TopKLogits = out;
  return {
    values: Float32Array.from((await top.logits.data()) as Float32Array),
    classIds: Int32Array.from((await top.ids.data()) as Int32Array),
    width: shape[1]!,
  };
}

function sameRow(values: Float32Array | Int32Array, a: number, b: number, C: number): boolean {
  for (let c = 0; c < C; c++) if (!Object.is(values[a * C + c], values[b * C + c])) return false;
  return true;
}
