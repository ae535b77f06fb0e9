import * as tf from '@tensorflow/tfjs-core';
import { KdDataError, KdShapeError } from '../errors.js';
import { assertLogits, assertSameLogitsShape } from './validate.js';

/**
 * Token-level logits (`[batch, time, classes]`): how every per-token term
 * becomes one number.
 *
 * Each example's terms are averaged over its unmasked tokens, then those
 * per-example means are averaged over the batch (weighted by `sampleWeights`
 * when given: Σ wᵢ·lᵢ / Σ wᵢ). Every example counts the same whatever its
 * length, as examples do for `[batch, classes]` logits; an example with no
 * unmasked token drops out of the batch mean. (The other reading, one mean
 * over all unmasked tokens of the batch, weights long examples more: it is
 * `sampleWeights` set to each example's token count.)
 */

/**
 * Reduces per-row terms (`[rows]`, rows = batch, or batch·time for
 * token-level logits, in row-major order) to the batch value. Must run inside
 * `tf.tidy` or a gradient closure.
 * @internal
 */
export function batchReducer(
  leadShape: readonly number[],
  sampleWeights: tf.Tensor | undefined,
  mask: tf.Tensor | undefined,
): (perRow: tf.Tensor1D) => tf.Scalar {
  const weights = sampleWeights === undefined ? undefined : tf.reshape(tf.cast(sampleWeights, 'float32'), [-1]);
  if (leadShape.length === 1) {
    return (perRow) =>
      weights === undefined ? tf.mean(perRow) : tf.div(tf.sum(tf.mul(perRow, weights)), tf.sum(weights));
  }
  const [batch, time] = leadShape as [number, number];
  const tokenMask = mask === undefined ? undefined : tf.cast(tf.reshape(mask, [batch, time]), 'float32');
  // Per-example token counts; an example without tokens gets weight 0.
  const counts = tokenMask === undefined ? undefined : tf.sum(tokenMask, -1);
  let exampleWeights = counts === undefined ? weights : tf.cast(tf.greater(counts, 0), 'float32');
  if (counts !== undefined && weights !== undefined) exampleWeights = tf.mul(exampleWeights!, weights);
  return (perRow) => {
    const perToken = tf.reshape(perRow, [batch, time]);
    const perExample =
      tokenMask === undefined
        ? tf.mean(perToken, -1)
        : tf.div(tf.sum(tf.mul(perToken, tokenMask), -1), tf.maximum(counts!, 1));
    return exampleWeights === undefined
      ? tf.mean(perExample)
      : tf.div(tf.sum(tf.mul(perExample, exampleWeights)), tf.sum(exampleWeights));
  };
}

/**
 * Student logits `[batch, classes]` or `[batch, time, classes]`, and teacher
 * logits of the same shape when given (top-k teachers are checked apart).
 * @internal
 */
export function assertLogitsPair(student: unknown, teacher: unknown): asserts student is tf.Tensor {
  if (student instanceof tf.Tensor && student.rank === 3) {
    const what = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;
    if (student.size === 0) {
      throw new KdShapeError('BATCH_SIZE_MISMATCH', `the logits are empty (shape ${what(student)}): pass at least one token and one class`);
    }
    if (teacher === undefined) return;
    if (!(teacher instanceof tf.Tensor) || teacher.rank !== 3) {
      throw new KdShapeError(
        'RANK_MISMATCH',
        `student logits are token-level ${what(student)} [batch, time, classes], so the teacher logits must be too, got ` +
          (teacher instanceof tf.Tensor ? what(teacher) : typeof teacher),
      );
    }
    const [sb, st, sc] = student.shape;
    const [tb, tt, tc] = teacher.shape;
    if (sc !== tc) {
      throw new KdShapeError(
        'CLASS_COUNT_MISMATCH',
        `teacher logits have ${tc} classes but student logits have ${sc}: build the student with ${tc} output units`,
      );
    }
    if (sb !== tb || st !== tt) {
      throw new KdShapeError(
        'BATCH_SIZE_MISMATCH',
        `teacher logits ${what(teacher)} and student logits ${what(student)} differ in batch or time steps: ` +
          'feed the teacher and the student the same padded batch',
      );
    }
    return;
  }
  assertLogits(student, 'student logits');
  if (teacher === undefined) {
    if (student.shape[0] === 0 || student.shape[1] === 0) assertSameLogitsShape(student, student);
    return;
  }
  assertLogits(teacher, 'teacher logits');
  assertSameLogitsShape(student, teacher);
}

/**
 * Shape checks of a token mask against `[batch, time]` (no data read).
 * @internal
 */
export function assertMaskShape(mask: unknown, logitsShape: readonly number[]): asserts mask is tf.Tensor {
  if (logitsShape.length !== 3) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `a mask applies to token-level logits [batch, time, classes], but the logits have shape [${logitsShape.join(', ')}]: ` +
        'remove the mask, or use sampleWeights for per-example weights',
    );
  }
  const [batch, time] = logitsShape as [number, number, number];
  if (!(mask instanceof tf.Tensor) || mask.rank !== 2 || mask.shape[0] !== batch || mask.shape[1] !== time) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `the mask must have shape [batch, time] = [${batch}, ${time}], got ` +
        (mask instanceof tf.Tensor ? `[${mask.shape.join(', ')}]` : typeof mask) +
        ': give one 0/1 entry per token (1 = the token counts)',
    );
  }
}

/**
 * Value checks of a token mask (one synchronous read): entries 0 or 1 (or
 * booleans), at least one unmasked token in the batch.
 * @internal
 */
export function validateMask(mask: tf.Tensor): void {
  const values = mask.dataSync();
  let any = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== 0 && v !== 1) {
      throw new KdDataError(
        'INVALID_MASK',
        `mask entry ${i} is ${v}: a mask holds 0 (padding, ignored) or 1 (a token that counts), or booleans`,
      );
    }
    if (v === 1) any = true;
  }
  if (!any) {
    throw new KdDataError(
      'INVALID_MASK',
      'every token of the batch is masked, so there is nothing to average: drop the batch, or check the mask (1 = the token counts)',
    );
  }
}

/**
 * Shape checks of token-level labels: class ids `[batch, time]` or one-hot /
 * soft labels `[batch, time, classes]` (no data read).
 * @internal
 */
export function assertTokenLabelsShape(labels: unknown, logitsShape: readonly number[]): asserts labels is tf.Tensor {
  const [batch, time, numClasses] = logitsShape as [number, number, number];
  const ok =
    labels instanceof tf.Tensor &&
    labels.shape[0] === batch &&
    labels.shape[1] === time &&
    (labels.rank === 2 || (labels.rank === 3 && labels.shape[2] === numClasses));
  if (!ok) {
    throw new KdShapeError(
      labels instanceof tf.Tensor && labels.rank === 3 && labels.shape[2] !== numClasses ? 'CLASS_COUNT_MISMATCH' : 'BATCH_SIZE_MISMATCH',
      `token-level labels must be class ids [batch, time] = [${batch}, ${time}] or one-hot ` +
        `[${batch}, ${time}, ${numClasses}], got ` +
        (labels instanceof tf.Tensor ? `[${labels.shape.join(', ')}]` : typeof labels) +
        ': give one label per token (any value at masked tokens)',
    );
  }
}

/**
 * Value checks of token-level labels at the unmasked tokens (one synchronous
 * read): ids in [0, classes), or finite non-negative one-hot rows. Labels at
 * masked tokens are ignored (e.g. PyTorch's −100).
 * @internal
 */
export function validateTokenLabels(labels: tf.Tensor, numClasses: number, mask: tf.Tensor | undefined): void {
  const counts = mask?.dataSync();
  const values = labels.dataSync();
  const perToken = labels.rank === 2 ? 1 : numClasses;
  for (let token = 0; token * perToken < values.length; token++) {
    if (counts !== undefined && counts[token] === 0) continue;
    for (let j = token * perToken; j < (token + 1) * perToken; j++) {
      const v = values[j]!;
      const bad = perToken === 1 ? !Number.isInteger(v) || v < 0 || v >= numClasses : !Number.isFinite(v) || v < 0;
      if (bad) {
        throw new KdDataError(
          'LABEL_OUT_OF_RANGE',
          perToken === 1
            ? `label ${v} at token ${token} (row-major [batch, time]) is not a class id in [0, ${numClasses}): ` +
                `labels must be integers 0..${numClasses - 1} at unmasked tokens`
            : `one-hot label rows must be finite and non-negative, token ${token} holds ${v}`,
        );
      }
    }
  }
}
