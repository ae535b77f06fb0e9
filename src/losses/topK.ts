import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import type { DistillationKind } from './divergences.js';
import { shiftAndScale } from './shiftAndScale.js';

/**
 * Teacher outputs kept as the k largest entries of each row: the class ids and
 * the teacher's logits there (or its log-probabilities: the loss renormalizes
 * over the k entries, so a per-row constant does not matter). This is what a
 * top-k cache or file row holds (`top_ids`, `top_logits`), and
 * `distillationLoss` takes it in place of full teacher logits.
 */
export interface TopKLogits {
  /** Class ids, int32, `[batch, k]` (or `[batch, time, k]` for token-level logits), distinct within a row. */
  ids: tf.Tensor;
  /** The teacher's logits at those ids, float, the same shape as `ids`. */
  logits: tf.Tensor;
}

/**
 * The k largest teacher logits of every row, with their class ids, as
 * {@link distillationLoss} takes them: what to store in place of full logits
 * when a teacher has many classes (a 1,000-class row with k = 10 is 100×
 * smaller).
 *
 * @param teacherLogits - `[batch, classes]` or `[batch, time, classes]` teacher logits (or log-probabilities).
 * @param k - How many classes to keep per row: an integer in [1, classes).
 * @returns `{ ids, logits }`, both `[..., k]`, ordered from the largest logit down
 *   (ties: the lower class id first). The caller owns both tensors.
 * @throws {@link KdConfigError} `INVALID_TOP_K` when k is not an integer in [1, classes).
 * @throws {@link KdShapeError} `RANK_MISMATCH` when the logits are not of rank 2 or 3.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { distillationLoss, topKLogits } from 'kd-ts/losses';
 *
 * const teacherLogits = tf.randomNormal([8, 1000]);
 * const studentLogits = tf.randomNormal([8, 1000]);
 * const top = topKLogits(teacherLogits, 10); // { ids: int32 [8, 10], logits: [8, 10] }
 * const loss = distillationLoss(studentLogits, top, { temperature: 2 });
 * loss.print();
 * ```
 */
export function topKLogits(teacherLogits: tf.Tensor, k: number): TopKLogits {
  if (!(teacherLogits instanceof tf.Tensor) || teacherLogits.rank < 2 || teacherLogits.rank > 3) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      'teacher logits must be a tf.Tensor of shape [batch, classes] or [batch, time, classes], got ' +
        (teacherLogits instanceof tf.Tensor ? `[${teacherLogits.shape.join(', ')}]` : typeof teacherLogits),
    );
  }
  const numClasses = teacherLogits.shape[teacherLogits.rank - 1]!;
  assertTopK(k, 'kl');
  assertTopKBelowClasses(k, numClasses);
  const { values, indices } = tf.topk(teacherLogits, k, true);
  return { ids: indices, logits: values };
}

/** True for a `{ ids, logits }` pair of tensors (teacher outputs given as top-k only). */
export function isTopKLogits(x: unknown): x is TopKLogits {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof tf.Tensor) &&
    (x as TopKLogits).ids instanceof tf.Tensor &&
    (x as TopKLogits).logits instanceof tf.Tensor
  );
}

/**
 * Throws unless `topK` is an integer ≥ 1 used with `kind: 'kl'`.
 * @internal
 */
export function assertTopK(topK: unknown, kind: DistillationKind): asserts topK is number {
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1) {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `topK must be an integer ≥ 1 (how many of the teacher's largest logits to keep), got ${String(topK)}: ` +
        'e.g. 10 for a 1,000-class teacher, or leave it out to use every class',
    );
  }
  if (kind !== 'kl') {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `top-k teacher outputs work with kind 'kl' only, but kind is '${kind}': ` +
        "use kind: 'kl', or give the teacher's full logits without topK",
    );
  }
}

/** @internal */
export function assertTopKBelowClasses(topK: number, numClasses: number): void {
  if (topK >= numClasses) {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `topK is ${topK} but the logits have ${numClasses} classes: topK must be below the class count ` +
        `(1 to ${numClasses - 1}); to use every class, leave topK out and give the full logits`,
    );
  }
}

/**
 * Shape checks of top-k teacher outputs against the student's logits shape
 * (no data read); returns k.
 * @internal
 */
export function assertTopKTeacherShape(teacher: TopKLogits, studentShape: readonly number[], topK: number | undefined): number {
  const { ids, logits } = teacher;
  const lead = studentShape.slice(0, -1);
  const numClasses = studentShape[studentShape.length - 1]!;
  const expected = `[${[...lead, 'k'].join(', ')}]`;
  for (const [what, t] of [
    ['ids', ids],
    ['logits', logits],
  ] as const) {
    if (t.rank !== studentShape.length) {
      throw new KdShapeError(
        'RANK_MISMATCH',
        `top-k teacher ${what} must have shape ${expected} to match student logits ` +
          `[${studentShape.join(', ')}], got [${t.shape.join(', ')}]`,
      );
    }
  }
  if (ids.shape.some((d, i) => d !== logits.shape[i])) {
    throw new KdShapeError(
      'LENGTH_MISMATCH',
      `top-k teacher ids [${ids.shape.join(', ')}] and logits [${logits.shape.join(', ')}] differ in shape: ` +
        'give one logit per class id',
    );
  }
  if (lead.some((d, i) => d !== ids.shape[i])) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `top-k teacher outputs have shape [${ids.shape.join(', ')}] but the student logits [${studentShape.join(', ')}]: ` +
        'feed the teacher and the student the same batch (and time steps)',
    );
  }
  if (ids.dtype !== 'int32') {
    throw new KdDataError('INVALID_TOP_K_IDS', `top-k teacher ids must be int32 class ids, got dtype ${ids.dtype}: cast them with tf.cast(ids, 'int32')`);
  }
  const k = ids.shape[ids.rank - 1]!;
  if (topK !== undefined && topK !== k) {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `topK is ${topK} but the teacher outputs hold ${k} classes per row: ` + `set topK to ${k}, or leave it out`,
    );
  }
  assertTopK(k, 'kl');
  assertTopKBelowClasses(k, numClasses);
  return k;
}

/**
 * Value checks of top-k teacher outputs (one synchronous read): ids in
 * [0, classes) and distinct within each row, logits finite.
 * @internal
 */
export function validateTopKTeacher(teacher: TopKLogits, numClasses: number): void {
  const k = teacher.ids.shape[teacher.ids.rank - 1]!;
  const ids = teacher.ids.dataSync();
  for (let row = 0; row * k < ids.length; row++) {
    const seen = new Set<number>();
    for (let j = row * k; j < (row + 1) * k; j++) {
      const id = ids[j]!;
      if (id < 0 || id >= numClasses) {
        throw new KdDataError(
          'INVALID_TOP_K_IDS',
          `top-k teacher id ${id} in row ${row} is not a class id in [0, ${numClasses}): ` +
            'the ids must index the student\'s classes',
        );
      }
      if (seen.has(id)) {
        throw new KdDataError(
          'INVALID_TOP_K_IDS',
          `top-k teacher row ${row} holds class id ${id} twice: each row must list k distinct classes`,
        );
      }
      seen.add(id);
    }
  }
  const finite = tf.tidy(() => tf.all(tf.isFinite(teacher.logits)).dataSync()[0]);
  if (!finite) {
    throw new KdDataError('NON_FINITE_TEACHER_OUTPUT', 'top-k teacher logits contain NaN or Infinity: check the teacher and its inputs');
  }
}

/**
 * Per-row top-k KL, `[rows]`: p̃ = softmax(teacher's k largest logits / T),
 * renormalized over those k classes; q = the student's full softmax at T;
 * Σ over the k classes of p̃·(log p̃ − log q), × T² when asked. The student's
 * mass outside the k classes is penalized through log q (DistillKit's
 * "missing mass as zero"). Must run inside `tf.tidy` or a gradient closure.
 * @internal
 */
export function perRowTopKKl(
  studentLogits: tf.Tensor2D,
  teacher: tf.Tensor2D | { ids: tf.Tensor2D; logits: tf.Tensor2D },
  k: number,
  temperature: number,
  scaleByTemperatureSquared: boolean,
): tf.Tensor1D {
  const [rows, numClasses] = studentLogits.shape;
  const top = teacher instanceof tf.Tensor ? tf.topk(teacher, k, true) : { values: teacher.logits, indices: teacher.ids };
  const logPTilde = tf.logSoftmax(shiftAndScale(top.values, temperature));
  const pTilde = tf.exp(logPTilde);
  // p̃ spread over the full class axis (0 outside the k classes), so the
  // student side is a dense product: no gather, whose gradient would need
  // UnsortedSegmentSum (slow on stock cpu).
  const rowIds = tf.tile(tf.reshape(tf.range(0, rows, 1, 'int32'), [rows, 1]), [1, k]);
  const dense = tf.scatterND(tf.stack([rowIds, top.indices], -1), pTilde, [rows, numClasses]);
  const logQ = tf.logSoftmax(shiftAndScale(studentLogits, temperature));
  const negEntropy = tf.sum(tf.mul(pTilde, logPTilde), -1);
  const perRow = tf.sub(negEntropy, tf.sum(tf.mul(dense, logQ), -1)) as tf.Tensor1D;
  return scaleByTemperatureSquared && temperature !== 1 ? tf.mul(perRow, temperature * temperature) : perRow;
}
