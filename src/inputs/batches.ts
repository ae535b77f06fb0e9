import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError } from '../errors.js';
import { tensorsOf, type ModelInputs } from './modelInputs.js';

/**
 * Examples per batch when none is given: per step of `Distiller.fit`, per
 * teacher call of `TeacherCache.fromTeacher`, per batch of `alignTeacherOutputs`
 * (and so the window of `zipTeacherOutputs`).
 */
export const DEFAULT_BATCH_SIZE = 32;

/** One element of a dataset for `Distiller.fitDataset` (and `TeacherCache.fromTeacher`): a batch. */
export interface DistillationBatch {
  /** Student inputs. */
  xs: ModelInputs;
  /** Labels (class ids or one-hot). */
  ys?: tf.Tensor;
  /** Teacher inputs, when they differ from `xs`. */
  teacherXs?: ModelInputs;
  /**
   * Example ids, passed to the teacher (caches look outputs up by id): a
   * string tensor, or int32/float32 integers below 2^24.
   */
  id?: tf.Tensor;
  /**
   * Token-level students only: `[batch, time]`, 1 for a token that counts
   * (its loss, agreement and accuracy), 0 for padding.
   */
  mask?: tf.Tensor;
}

/** A dataset of batches, as `Distiller.fitDataset` sees it: `tf.data.Dataset` fits. */
export interface DatasetLike<T> {
  /** A fresh pass over the elements. */
  iterator(): Promise<{
    /** The next element, or `done`. */
    next(): Promise<IteratorResult<T>>;
  }>;
}

/** True for anything with an `iterator()` method (a `tf.data.Dataset`, a {@link DatasetLike}). */
export function isDatasetLike<T>(value: unknown): value is DatasetLike<T> {
  return value !== null && typeof value === 'object' && typeof (value as DatasetLike<unknown>).iterator === 'function';
}

/** Disposes every tensor of a dataset element once it has been used. */
export function disposeBatch(element: DistillationBatch): void {
  tf.dispose([...tensorsOf(element.xs), ...tensorsOf(element.teacherXs)]);
  tf.dispose([element.ys, element.id, element.mask].filter((t): t is tf.Tensor => t instanceof tf.Tensor));
}

/**
 * Returns `value` when it is a positive integer.
 *
 * @throws {@link KdConfigError} `INVALID_OPTION` naming the option otherwise.
 */
export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new KdConfigError('INVALID_OPTION', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}
