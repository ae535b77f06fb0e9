/**
 * Typed errors. Every error kd-ts throws on bad input is a {@link KdError}
 * with a stable machine-readable `code` and a message that names the problem
 * and the fix.
 *
 * @packageDocumentation
 */

/**
 * Stable codes carried by {@link KdError}s. Match on these, not on messages.
 */
export type KdErrorCode =
  // configuration
  | 'INVALID_TEMPERATURE'
  | 'INVALID_ALPHA'
  | 'INVALID_BETA'
  | 'INVALID_TOP_K'
  | 'INVALID_LEARNING_RATE'
  | 'ALPHA_WITHOUT_LABELS'
  | 'INVALID_OPTION'
  | 'NOT_COMPILED'
  | 'SOFTMAX_STUDENT'
  | 'SHARED_VARIABLES'
  | 'PROBS_TEACHER_WITH_MSE'
  | 'INVALID_TEACHER'
  | 'INVALID_STUDENT'
  | 'TEACHER_FAILED'
  | 'IDS_REQUIRED'
  | 'MISSING_DEPENDENCY'
  | 'PARALLEL_UNSUPPORTED'
  | 'UNKNOWN_LAYER'
  | 'UNSUPPORTED_FEATURE_LAYER'
  | 'CHECKPOINT_MISMATCH'
  | 'CHECKPOINT_UNSUPPORTED'
  // shapes
  | 'RANK_MISMATCH'
  | 'CLASS_COUNT_MISMATCH'
  | 'BATCH_SIZE_MISMATCH'
  | 'LENGTH_MISMATCH'
  | 'MISSING_INPUT'
  | 'INPUT_SHAPE_MISMATCH'
  | 'INPUT_DTYPE_MISMATCH'
  | 'EMBEDDING_SHAPE_MISMATCH'
  | 'FEATURE_SHAPE_MISMATCH'
  // data
  | 'NON_FINITE_TEACHER_OUTPUT'
  | 'NON_FINITE_LOGITS'
  | 'NON_FINITE_LOSS'
  | 'NON_FINITE_WEIGHTS'
  | 'LABEL_OUT_OF_RANGE'
  | 'TOKEN_ID_OUT_OF_RANGE'
  | 'INVALID_SAMPLE_WEIGHTS'
  | 'INVALID_PROBABILITIES'
  | 'INVALID_TOP_K_IDS'
  | 'INVALID_MASK'
  | 'CORRUPT_FILE'
  | 'CHECKPOINT_CORRUPT'
  | 'MISSING_ID'
  | 'EXTRA_ID'
  | 'DUPLICATE_ID'
  | 'ID_TYPE_MISMATCH'
  | 'OUT_OF_ORDER'
  // backend
  | 'BACKEND_UNAVAILABLE'
  | 'UNSUPPORTED_KERNEL_INPUT'
  | 'TFJS_INTERNALS_CHANGED'
  | 'WORKER_CRASHED'
  | 'WORKER_FAILED';

/**
 * Base class of every error kd-ts throws on purpose.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { distillationLoss, KdError } from 'kd-ts';
 * const studentLogits = tf.randomNormal([4, 10]);
 * const teacherLogits = tf.randomNormal([4, 10]);
 * try {
 *   distillationLoss(studentLogits, teacherLogits, { temperature: 0 });
 * } catch (e) {
 *   if (e instanceof KdError && e.code === 'INVALID_TEMPERATURE') console.log(e.message);
 * }
 * ```
 */
export class KdError extends Error {
  /** Stable code: safe to match on across versions. */
  readonly code: KdErrorCode;

  /**
   * @param code - Stable code.
   * @param message - What went wrong and how to fix it.
   * @param options - `cause`: the underlying error, when wrapping one.
   */
  constructor(code: KdErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** The class's name, set explicitly so that minified bundles keep it (a class's own name does not survive). */
  override name = 'KdError';
}

/**
 * Invalid options or an invalid combination of objects (temperature, alpha,
 * a softmax student, a teacher sharing variables with the student, ...).
 *
 * @example
 * ```ts
 * import { KdConfigError } from 'kd-ts';
 * const err = new KdConfigError('INVALID_ALPHA', 'alpha must be in [0, 1], got 2: pass a weight between 0 and 1');
 * console.log(err.code); // 'INVALID_ALPHA'
 * ```
 */
export class KdConfigError extends KdError {
  /** `'KdConfigError'`, kept in minified bundles. */
  override name = 'KdConfigError';
}

/**
 * Tensors whose shapes do not fit together (class counts, batch sizes,
 * dataset lengths, missing inputs).
 *
 * @example
 * ```ts
 * import { KdShapeError } from 'kd-ts';
 * const err = new KdShapeError('CLASS_COUNT_MISMATCH', 'teacher logits have 10 classes but student logits have 9');
 * console.log(err instanceof Error); // true
 * ```
 */
export class KdShapeError extends KdError {
  /** `'KdShapeError'`, kept in minified bundles. */
  override name = 'KdShapeError';
}

/**
 * Bad values in the data: NaN/Inf logits, labels out of range, invalid
 * probabilities, corrupt files.
 *
 * @example
 * ```ts
 * import { KdDataError } from 'kd-ts';
 * const err = new KdDataError('LABEL_OUT_OF_RANGE', 'label 12 at row 3 is outside [0, 10)');
 * console.log(err.name); // 'KdDataError'
 * ```
 */
export class KdDataError extends KdError {
  /** `'KdDataError'`, kept in minified bundles. */
  override name = 'KdDataError';
}

/**
 * A backend that is missing or cannot do what was asked.
 *
 * @example
 * ```ts
 * import { KdBackendError } from 'kd-ts';
 * const err = new KdBackendError('BACKEND_UNAVAILABLE', 'backend "webgpu" is not registered: import @tensorflow/tfjs-backend-webgpu');
 * console.log(err.code);
 * ```
 */
export class KdBackendError extends KdError {
  /** `'KdBackendError'`, kept in minified bundles. */
  override name = 'KdBackendError';
}
