import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError, type KdErrorCode } from '../errors.js';

/** Throws unless `temperature` is a finite number > 0. */
export function assertTemperature(temperature: unknown): asserts temperature is number {
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature <= 0) {
    throw new KdConfigError(
      'INVALID_TEMPERATURE',
      `temperature must be a finite number > 0, got ${String(temperature)}: ` +
        'use 1 for plain softmax, 2 to 20 for Hinton-style soft targets',
    );
  }
}

/** Throws unless `alpha` is a number in [0, 1]. */
export function assertAlpha(alpha: unknown): asserts alpha is number {
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < 0 || alpha > 1) {
    throw new KdConfigError(
      'INVALID_ALPHA',
      `alpha must be a number in [0, 1] (the weight of the hard-label term), got ${String(alpha)}: ` +
        'use 0 for distillation alone, 0.1 to 0.5 to mix in the labels',
    );
  }
}

/** Throws unless `x` is a float tensor of rank 2 (`[batch, classes]`). */
export function assertLogits(x: unknown, what: string): asserts x is tf.Tensor2D {
  if (!(x instanceof tf.Tensor)) {
    throw new KdShapeError('RANK_MISMATCH', `${what} must be a tf.Tensor of shape [batch, classes], got ${typeof x}`);
  }
  if (x.rank !== 2) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `${what} must have shape [batch, classes], got [${x.shape.join(', ')}]: ` +
        'reshape to 2-D, or pass logits rather than a single row',
    );
  }
}

/** Throws when two logits tensors disagree in batch size or class count, or are empty. */
export function assertSameLogitsShape(student: tf.Tensor2D, teacher: tf.Tensor2D): void {
  const [sb, sc] = student.shape;
  const [tb, tc] = teacher.shape;
  if (sb === 0 || sc === 0) {
    throw new KdShapeError('BATCH_SIZE_MISMATCH', `the logits are empty (shape [${sb}, ${sc}]): pass at least one example and one class`);
  }
  if (sc !== tc) {
    throw new KdShapeError(
      'CLASS_COUNT_MISMATCH',
      `teacher logits have ${tc} classes but student logits have ${sc}: build the student with ${tc} output units`,
    );
  }
  if (sb !== tb) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `teacher logits have ${tb} rows but student logits have ${sb}: feed the teacher and the student the same batch`,
    );
  }
}

/** Synchronous finiteness check (reads one boolean back). */
export function assertFinite(x: tf.Tensor, code: KdErrorCode, what: string, fix: string): void {
  const ok = tf.tidy(() => tf.all(tf.isFinite(x)).dataSync()[0]);
  if (!ok) throw new KdDataError(code, `${what} contain NaN or Infinity: ${fix}`);
}
