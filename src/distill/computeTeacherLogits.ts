import * as tf from '@tensorflow/tfjs-core';
import { KdShapeError } from '../errors.js';
import type { DistillationKind } from '../losses/distillationLoss.js';
import { assertTeacherOutputsFit } from '../losses/teacherCompatibility.js';
import { assertLogits, assertTemperature } from '../losses/validate.js';
import { positiveInteger } from '../inputs/batches.js';
import { countRows, mapInputs, tensorsOf, type ModelInputs } from '../inputs/modelInputs.js';
import {
  invalidTeacherOutputs,
  teacherOutputsAsLogits,
  teacherOutputSpec,
  teacherOutputsValid,
  type TeacherOutputs,
  type TeacherOutputSpec,
} from '../teachers/outputSpec.js';
import { asTeacher, type TeacherLike } from '../teachers/teacher.js';

/** Options of {@link computeTeacherLogits}. */
export interface ComputeTeacherLogitsOptions {
  /** Rows per teacher call (default 256). */
  batchSize?: number;
  /**
   * The temperature you will distil at (default 1). Plain models ignore it;
   * teachers whose outputs depend on it (an `EnsembleTeacher` with
   * `combine: 'mean-probs'`) are exact only at this temperature.
   */
  temperature?: number;
  /** What the teacher returns, when `asTeacher`'s detection should be overridden. */
  outputs?: TeacherOutputs | TeacherOutputSpec;
  /** The distillation kind you will use: `'mse'` rejects teachers whose outputs are not plain logits. */
  kind?: DistillationKind;
}

/**
 * Runs a teacher over all rows of `x`, in batches and in inference mode, and
 * returns its logits, `[rows, classes]` float32: the second target of
 * `wrapped.fit(x, [labels, teacherLogits])` (see `withDistillationHead`).
 * A teacher that returns probabilities (ending in softmax, or declared
 * `outputs: 'probs'`) gives `log p`, the logits up to a per-row constant,
 * exactly what the `Distiller` feeds its KL term.
 *
 * Computing the teacher once, before training, costs memory (`rows × classes`
 * floats) but no teacher pass per epoch; with random augmentation that changes
 * every epoch, recompute them per epoch or use the `Distiller`.
 *
 * @param teacher - Any teacher kd-ts accepts: a LayersModel, a GraphModel-like object, a function, a `Teacher`.
 * @param x - The teacher's inputs: a tensor, an array (multi-input teachers) or a map by input name.
 * @param options - See {@link ComputeTeacherLogitsOptions}.
 * @returns A new tensor the caller owns (and disposes).
 * @throws {@link KdConfigError} `INVALID_TEMPERATURE`, `INVALID_OPTION` for bad options;
 *   `PROBS_TEACHER_WITH_MSE` for `kind: 'mse'` with a teacher whose outputs are not plain logits.
 * @throws {@link KdShapeError} when the teacher returns anything but `[batch, classes]`, or classes change between batches.
 * @throws {@link KdDataError} `NON_FINITE_TEACHER_OUTPUT` / `INVALID_PROBABILITIES` for NaN/Inf outputs or invalid probabilities.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { computeTeacherLogits } from 'kd-ts';
 *
 * const teacher = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const x = tf.randomNormal([2000, 784]);
 * const teacherLogits = await computeTeacherLogits(teacher, x, { batchSize: 512 });
 * console.log(teacherLogits.shape); // [rows, classes]
 * ```
 */
export async function computeTeacherLogits(
  teacher: TeacherLike,
  x: ModelInputs,
  options: ComputeTeacherLogitsOptions = {},
): Promise<tf.Tensor2D> {
  const batchSize = positiveInteger(options.batchSize ?? 256, 'batchSize');
  const temperature = options.temperature ?? 1;
  assertTemperature(temperature);
  const adapted = asTeacher(teacher, { outputs: options.outputs });
  const outputs = teacherOutputSpec(adapted);
  if (options.kind !== undefined) assertTeacherOutputsFit(options.kind, outputs);
  const rows = countRows([['x', x]]);

  const parts: tf.Tensor2D[] = [];
  try {
    for (let start = 0; start < rows; start += batchSize) {
      const size = Math.min(batchSize, rows - start);
      const batch = mapInputs(x, (t) => tf.slice(t, [start], [size]));
      let out: tf.Tensor | undefined;
      try {
        out = await adapted.predict(batch, { temperature });
        if (out instanceof tf.Tensor) parts.push(out as tf.Tensor2D); // owned from here: disposed on any throw
        assertLogits(out, 'teacher outputs');
        if (out.shape[0] !== size) {
          throw new KdShapeError(
            'BATCH_SIZE_MISMATCH',
            `the teacher returned ${out.shape[0]} rows for a batch of ${size}: it must return one row per example`,
          );
        }
        if (out.shape[1] !== parts[0]!.shape[1]) {
          throw new KdShapeError(
            'CLASS_COUNT_MISMATCH',
            `the teacher returned ${parts[0]!.shape[1]} classes, then ${out.shape[1]}: it must return the same classes for every batch`,
          );
        }
      } finally {
        // A teacher may return its input itself (a pass-through function): that tensor is now in parts.
        tf.dispose(tensorsOf(batch).filter((t) => t !== out));
      }
    }
    const all = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
    if (all !== parts[0]) tf.dispose(parts);
    parts.length = 0;
    parts.push(all);
    await assertValid(all, outputs);
    const logits = tf.tidy(() => teacherOutputsAsLogits(all, outputs)) as tf.Tensor2D;
    if (logits !== all) all.dispose();
    return logits;
  } catch (error) {
    tf.dispose(parts);
    throw error;
  }
}

/** One read of the whole result: finite, and for probabilities non-negative rows summing to 1. */
async function assertValid(outputs: tf.Tensor2D, spec: TeacherOutputSpec): Promise<void> {
  const ok = tf.tidy(() => teacherOutputsValid(outputs, spec));
  const value = (await ok.data())[0];
  ok.dispose();
  if (!value) throw invalidTeacherOutputs(spec);
}
