import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { assertClassCount, assertFiniteRow, formatId, type ExampleId, type IdChecker, type TeacherOutputBatch } from '../io/teacherOutputs.js';
import { assertSameTopK, assertTopKOption, assertTopKRow, selectTopK } from '../io/topKRows.js';
import { isTopKLogits, type TopKLogits } from '../losses/topK.js';
import { lengthMismatch } from './ids.js';

/**
 * Rows as `TeacherCache.set` accepts them: a 2-D tensor, nested arrays, or a
 * flat row-major `Float32Array` of full rows; or top-k rows as `TopKLogits`.
 */
export type CacheRows = tf.Tensor | readonly (readonly number[])[] | Float32Array | TopKLogits;

/**
 * One row-major `Float32Array` of `ids.length` rows, and their width, from
 * any {@link CacheRows} (a tensor is read synchronously). A flat array's
 * width is `knownClasses` when the cache already has one.
 *
 * @throws {@link KdShapeError} `RANK_MISMATCH`, `LENGTH_MISMATCH`, `CLASS_COUNT_MISMATCH`.
 * @internal
 */
export function rowValues(
  ids: readonly ExampleId[],
  logits: CacheRows,
  knownClasses: number | undefined,
): { values: Float32Array; numClasses: number; topIds?: Int32Array } {
  const rows = ids.length;
  if (isTopKLogits(logits)) {
    const { ids: classIds, logits: values } = logits;
    if (classIds.rank !== 2 || values.rank !== 2 || classIds.shape.some((d, i) => d !== values.shape[i])) {
      throw new KdShapeError(
        'RANK_MISMATCH',
        `top-k rows need ids and logits of one shape [rows, k], got [${classIds.shape.join(', ')}] and [${values.shape.join(', ')}]`,
      );
    }
    if (classIds.shape[0] !== rows) throw lengthMismatch(rows, classIds.shape[0]!);
    return {
      values: Float32Array.from(values.dataSync() as ArrayLike<number>),
      numClasses: values.shape[1]!,
      topIds: Int32Array.from(classIds.dataSync() as ArrayLike<number>),
    };
  }
  if (logits instanceof tf.Tensor) {
    if (logits.rank !== 2) {
      throw new KdShapeError('RANK_MISMATCH', `teacher outputs must be [rows, classes], got [${logits.shape.join(', ')}]`);
    }
    const values = Float32Array.from(logits.dataSync() as ArrayLike<number>);
    if (logits.shape[0] !== rows) throw lengthMismatch(rows, logits.shape[0]!);
    return { values, numClasses: logits.shape[1]! };
  }
  if (logits instanceof Float32Array) {
    const numClasses = knownClasses ?? (rows === 0 ? 0 : logits.length / rows);
    if (!Number.isInteger(numClasses) || logits.length !== rows * numClasses) {
      throw new KdShapeError(
        'LENGTH_MISMATCH',
        `${logits.length} values do not make ${rows} rows${knownClasses === undefined ? '' : ` of ${knownClasses}`}: ` +
          'pass ids.length × numClasses values, row after row',
      );
    }
    return { values: logits, numClasses };
  }
  if (logits.length !== rows) throw lengthMismatch(rows, logits.length);
  const numClasses = logits[0]?.length ?? knownClasses ?? 0;
  const values = new Float32Array(rows * numClasses);
  logits.forEach((row, r) => {
    assertClassCount(row.length, numClasses, () => `row ${r} (id ${formatId(ids[r])})`);
    values.set(row, r * numClasses);
  });
  return { values, numClasses };
}

/** What a cache stores from one batch: its rows in the cache's form, and the form after it. */
interface CacheForm {
  form: 'full' | 'top-k';
  k: number | undefined;
  classes: number | undefined;
  /** Values per stored row. */
  width: number;
  values: Float32Array;
  classIds?: Int32Array;
}

/**
 * Checks a batch against a cache's form and returns its rows as the cache
 * stores them: full rows as they are; top-k rows checked (one k, class ids in
 * range and distinct); full rows in a top-k cache cut to their k largest.
 * Every value is checked finite.
 *
 * @throws `CLASS_COUNT_MISMATCH`, `NON_FINITE_TEACHER_OUTPUT`, `INVALID_TOP_K_IDS`, `INVALID_TOP_K`.
 * @internal
 */
export function cacheForm(
  batch: TeacherOutputBatch,
  cache: { form: 'full' | 'top-k' | undefined; k: number | undefined; classes: number | undefined },
  where: (row: number) => () => string,
): CacheForm {
  const rows = batch.ids.length;
  const width = batch.numClasses;
  for (let row = 0; row < rows; row++) assertFiniteRow(batch.logits, row * width, width, where(row));
  const form = cache.form ?? (batch.topIds !== undefined ? 'top-k' : 'full');
  const classCount = () => `${where(0)()}: the cache holds rows of ${cache.classes} classes, this batch`;
  if (form === 'full') {
    if (batch.topIds !== undefined) {
      throw new KdConfigError(
        'INVALID_TOP_K',
        `${where(0)()}: top-k rows (class ids and values) cannot join a cache of full rows: read them into a cache of their own`,
      );
    }
    assertClassCount(width, cache.classes, classCount);
    return { form, k: undefined, classes: width, width, values: batch.logits };
  }
  if (batch.topIds !== undefined) {
    assertSameTopK(width, cache.k, where(0));
    let classes = cache.classes;
    if (batch.classCount !== undefined) {
      assertClassCount(batch.classCount, classes, classCount);
      classes = batch.classCount;
    }
    if (classes !== undefined) assertTopKOption(width, classes);
    for (let row = 0; row < rows; row++) assertTopKRow(batch.topIds, row * width, width, classes, where(row));
    return { form, k: width, classes, width, values: batch.logits, classIds: batch.topIds };
  }
  assertClassCount(width, cache.classes, classCount);
  const k = cache.k!;
  assertTopKOption(k, width);
  const top = selectTopK(batch.logits, width, k);
  return { form, k, classes: width, width: k, values: top.values, classIds: top.classIds };
}

/** @internal */
export function topKCacheAsFull(method: string): KdConfigError {
  return new KdConfigError(
    'INVALID_TOP_K',
    `${method}() serves full rows, but this cache holds top-k rows (class ids and values): use getTopK(), or fill a cache without topK`,
  );
}

/** @internal */
export function fullCacheAsTopK(): KdConfigError {
  return new KdConfigError(
    'INVALID_TOP_K',
    'this cache holds full rows, not top-k rows: use get(), or fill a cache with { topK: k } (topKLogits cuts full logits per batch)',
  );
}

/** @internal */
export function temperatureMismatch(stored: number, asked: number): KdConfigError {
  return new KdConfigError(
    'INVALID_TEMPERATURE',
    `the cached teacher outputs were computed at temperature ${stored} and are exact only there ` +
      `(the teacher is temperature-dependent), but temperature ${asked} was asked: distill at ` +
      `${stored}, or fill a new cache at ${asked}`,
  );
}

/** `MISSING_ID` for an id a cache lacks, or `ID_TYPE_MISMATCH` when its type differs from the cache's ids. @internal */
export function missingId(id: ExampleId, row: number, idKind: 'string' | 'number' | undefined, size: number): KdDataError {
  const kind = typeof id === 'string' ? 'string' : 'number';
  if (idKind !== undefined && kind !== idKind) {
    return new KdDataError(
      'ID_TYPE_MISMATCH',
      `batch row ${row} has id ${formatId(id)} (a ${kind}) but the cache holds ${idKind} ids: give the dataset ` +
        'ids of the same type as the teacher outputs (17 and "17" are different ids)',
    );
  }
  return new KdDataError(
    'MISSING_ID',
    `no teacher output for id ${formatId(id)} (batch row ${row}; the cache holds ${size} rows): compute it, ` +
      'or check that the dataset ids match the ids of the teacher outputs',
  );
}

/**
 * Checks a batch's ids before anything is stored: valid, one kind, none twice
 * in the batch, none `stored` already. When the cache was empty, a failure
 * forgets the id kind the batch set.
 *
 * @throws `ID_TYPE_MISMATCH`, `DUPLICATE_ID`, naming the row.
 * @internal
 */
export function checkNewIds(
  ids: readonly ExampleId[],
  checker: IdChecker,
  stored: (id: ExampleId) => boolean,
  empty: boolean,
  where: (row: number) => () => string,
): void {
  const seen = new Set<ExampleId>();
  const kindBefore = checker.idKind;
  try {
    for (let row = 0; row < ids.length; row++) {
      const id = checker.check(ids[row], where(row));
      if (stored(id) || seen.has(id)) {
        throw new KdDataError(
          'DUPLICATE_ID',
          `${where(row)()}: this id is already ${seen.has(id) ? 'earlier in the same batch' : 'in the cache'}: ` +
            'ids must be unique per example (pass { overwrite: true } to replace rows on purpose)',
        );
      }
      seen.add(id);
    }
  } catch (error) {
    if (kindBefore === undefined && empty) checker.reset();
    throw error;
  }
}
