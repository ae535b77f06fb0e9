import * as tf from '@tensorflow/tfjs-core';
import { KdShapeError } from '../errors.js';
import { assertClassCount, formatId, type ExampleId } from '../io/teacherOutputs.js';
import { lengthMismatch } from './ids.js';

/** Rows as `TeacherCache.set` accepts them: a 2-D tensor, nested arrays, or a flat row-major `Float32Array`. */
export type CacheRows = tf.Tensor | readonly (readonly number[])[] | Float32Array;

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
): { values: Float32Array; numClasses: number } {
  const rows = ids.length;
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
