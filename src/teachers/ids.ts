import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { MAX_NUMERIC_ID, type ExampleId } from '../io/teacherOutputs.js';
import type { TeacherContext } from './teacher.js';

// Example-id helpers shared by TeacherCache, cachedTeacher and zipTeacherOutputs.

/** The ids of `context.ids`, read asynchronously; throws when absent. */
export async function readContextIds(context: TeacherContext | undefined, who: string): Promise<ExampleId[]> {
  if (context?.ids === undefined) throw idsRequired(who);
  return readIds(context.ids, 'the batch ids');
}

/** The `IDS_REQUIRED` error for a batch without ids, naming who needed them. */
export function idsRequired(who: string): KdConfigError {
  return new KdConfigError(
    'IDS_REQUIRED',
    `${who} looks teacher outputs up by example id, but the batch has no ids: add an \`id\` tensor to the dataset ` +
      'elements ({ xs, ys, id }, strings or integers below 2^24) and train with distiller.fitDataset',
  );
}

/** Reads a 1-D id tensor (string, int32, or float32 holding integers below 2^24). */
export async function readIds(tensor: tf.Tensor, what: string): Promise<ExampleId[]> {
  checkIdTensor(tensor, what);
  return idsOfValues(tensor, (await tensor.data()) as unknown as ArrayLike<unknown>);
}

/** Throws `RANK_MISMATCH` unless `tensor` is 1-D (or `[n, 1]`). */
export function checkIdTensor(tensor: tf.Tensor, what: string): void {
  if (tensor.rank !== 1 && !(tensor.rank === 2 && tensor.shape[1] === 1)) {
    throw new KdShapeError('RANK_MISMATCH', `${what} must be a 1-D tensor (one id per example), got shape [${tensor.shape.join(', ')}]`);
  }
}

/** The ids held in `values` (the data of `tensor`), checked: strings, or integers in `[0, 2^24)`. */
export function idsOfValues(tensor: tf.Tensor, values: ArrayLike<unknown>): ExampleId[] {
  checkIdTensor(tensor, 'the ids');
  const out = new Array<ExampleId>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (tensor.dtype === 'string') {
      out[i] = value as string;
    } else if ((tensor.dtype === 'int32' || tensor.dtype === 'float32') && Number.isInteger(value) && (value as number) >= 0) {
      if ((value as number) >= MAX_NUMERIC_ID) {
        throw new KdDataError(
          'ID_TYPE_MISMATCH',
          `batch row ${i} has id ${value as number}, not below 2^24: tf.data batches numbers as float32, which ` +
            'cannot keep such ids apart (16777217 becomes 16777216); use string ids',
        );
      }
      out[i] = value as number;
    } else {
      throw new KdDataError(
        'ID_TYPE_MISMATCH',
        `batch row ${i} has id ${String(value)} in a ${tensor.dtype} tensor: ids must be strings or integers in [0, 2^24)`,
      );
    }
  }
  return out;
}

/** A 1-D tensor of ids: string, or int32 for numbers. */
export function idTensor(ids: readonly ExampleId[]): tf.Tensor1D {
  return typeof ids[0] === 'string'
    ? tf.tensor1d(ids as string[], 'string')
    : tf.tensor1d(Int32Array.from(ids as number[]), 'int32');
}

/** The `LENGTH_MISMATCH` error for ids and rows of teacher outputs that differ in number. */
export function lengthMismatch(ids: number, rows: number): KdShapeError {
  return new KdShapeError('LENGTH_MISMATCH', `${ids} ids but ${rows} rows of teacher outputs: give one id per row`);
}
