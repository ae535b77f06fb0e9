/**
 * Top-k teacher-output rows (class ids + values): their checks, and the
 * selection of a full row's k largest values. Browser-safe.
 *
 * @packageDocumentation
 */
import { KdConfigError, KdDataError } from '../errors.js';

/**
 * Throws `INVALID_TOP_K_IDS` unless the `k` class ids from `start` are
 * integers in `[0, classCount)` (`[0, 2^31)` when the class count is unknown),
 * distinct.
 *
 * @internal
 */
export function assertTopKRow(
  classIds: ArrayLike<number>,
  start: number,
  k: number,
  classCount: number | undefined,
  where: () => string,
): void {
  for (let j = 0; j < k; j++) {
    const id = classIds[start + j]!;
    if (!Number.isInteger(id) || id < 0 || (classCount !== undefined && id >= classCount) || id > 0x7fffffff) {
      throw new KdDataError(
        'INVALID_TOP_K_IDS',
        `${where()}: top-k class id ${id} (entry ${j}) is not a class id in [0, ${classCount ?? '2^31'}): ` +
          'write the indices of the teacher\'s largest logits (e.g. np.argsort(-logits)[:, :k] or torch.topk(...).indices)',
      );
    }
    for (let i = 0; i < j; i++) {
      if (classIds[start + i] === id) {
        throw new KdDataError(
          'INVALID_TOP_K_IDS',
          `${where()}: top-k class id ${id} appears twice (entries ${i} and ${j}): each row must list k distinct classes`,
        );
      }
    }
  }
}

/**
 * Throws `INVALID_TOP_K` unless `k` (a row's width) equals the `expected` k.
 *
 * @internal
 */
export function assertSameTopK(k: number, expected: number | undefined, where: () => string): void {
  if (expected !== undefined && k !== expected) {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `${where()}: ${k} top-k entries but the rows before have ${expected}: every row must keep the same k ` +
        '(write all rows with one k)',
    );
  }
}

/**
 * The `k` largest values of each `numClasses`-wide row and their class ids,
 * ordered from the largest down (ties: the lower class id first, as
 * `tf.topk` and `topKLogits` order them).
 *
 * @param values - Row-major full rows.
 * @param numClasses - Values per row.
 * @param k - How many to keep, in [1, numClasses).
 * @returns `rows × k` values and class ids.
 * @internal
 */
export function selectTopK(values: Float32Array, numClasses: number, k: number): { values: Float32Array; classIds: Int32Array } {
  const rows = values.length / numClasses;
  const outValues = new Float32Array(rows * k);
  const outIds = new Int32Array(rows * k);
  const order = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const base = r * numClasses;
    // Insertion into a sorted list of k: O(classes · k) worst case, fast for the small k top-k is for.
    let size = 0;
    for (let c = 0; c < numClasses; c++) {
      const v = values[base + c]!;
      if (size === k && !(v > values[base + order[k - 1]!]!)) continue;
      let i = size === k ? k - 1 : size++;
      while (i > 0 && v > values[base + order[i - 1]!]!) {
        order[i] = order[i - 1]!;
        i--;
      }
      order[i] = c;
    }
    for (let j = 0; j < k; j++) {
      outIds[r * k + j] = order[j]!;
      outValues[r * k + j] = values[base + order[j]!]!;
    }
  }
  return { values: outValues, classIds: outIds };
}

/**
 * Throws `INVALID_TOP_K` unless k is an integer in `[1, numClasses)`.
 *
 * @internal
 */
export function assertTopKOption(k: unknown, numClasses: number | undefined): asserts k is number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || (numClasses !== undefined && k >= numClasses)) {
    throw new KdConfigError(
      'INVALID_TOP_K',
      `topK must be an integer in [1, ${numClasses ?? 'classes'}) (how many of the teacher's largest logits to keep per row), ` +
        `got ${String(k)}: e.g. 10 for a 1,000-class teacher, or leave topK out to keep every class`,
    );
  }
}
