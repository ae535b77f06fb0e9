import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdShapeError } from '../errors.js';
import { orderInputs, type ModelInputs } from '../inputs/modelInputs.js';
import type { TeacherOutputs } from '../teachers/outputSpec.js';
import { endsWithSoftmax, isLayersModel, teacherModels, type TeacherLike } from '../teachers/teacher.js';

// What every student must be, checked once here for the Distiller, the
// training step, the fit wrapper and the compression report.

/**
 * Throws unless `student` is a tfjs LayersModel.
 *
 * @throws {@link KdConfigError} `INVALID_STUDENT`.
 */
export function assertStudentModel(student: unknown): asserts student is tfl.LayersModel {
  if (!isLayersModel(student)) {
    throw new KdConfigError('INVALID_STUDENT', 'the student must be a tf.LayersModel (tf.sequential or tf.model)');
  }
}

/**
 * Throws unless the student has inputs (a first layer with an `inputShape`,
 * or a `tf.model` built on `tf.input`).
 *
 * @param student - The student.
 * @param before - What needs them, ending the message: `'distilling'`, `'wrapping it'`.
 * @throws {@link KdConfigError} `INVALID_STUDENT`.
 */
export function assertStudentHasInputs(student: tfl.LayersModel, before: string): void {
  if (student.inputs.length === 0) {
    throw new KdConfigError(
      'INVALID_STUDENT',
      `the student has no input shape: give its first layer an inputShape (or use tf.model with tf.input) before ${before}`,
    );
  }
}

/**
 * A tf.sequential builds lazily; until built, its stopTraining throws and its
 * calculateLosses() returns [] (regularizers silently dropped). Build it now.
 *
 * @throws {@link KdConfigError} `INVALID_STUDENT` for a student without inputs.
 */
export function ensureBuilt(student: tfl.LayersModel): void {
  assertStudentHasInputs(student, 'distilling');
  if (!student.built) student.build(student.inputs.map((input) => input.shape));
}

/**
 * Throws when the student ends in a softmax but is declared to return logits.
 *
 * @throws {@link KdConfigError} `SOFTMAX_STUDENT`.
 */
export function assertStudentOutputs(student: tfl.LayersModel, studentOutputs: TeacherOutputs): void {
  if (studentOutputs === 'logits' && endsWithSoftmax(student)) {
    throw new KdConfigError(
      'SOFTMAX_STUDENT',
      "the student's last layer applies a softmax, but distillation needs its logits: " +
        "remove the softmax (activation: 'linear') and apply it at inference, or pass studentOutputs: 'probs'",
    );
  }
}

/**
 * Throws when the teacher is the student, or runs a model that shares
 * weights with it (as the teacher lists them with `Teacher.models()`):
 * training the student would change the teacher.
 *
 * @throws {@link KdConfigError} `SHARED_VARIABLES`.
 */
export function assertNoSharedVariables(teacher: TeacherLike, student: tfl.LayersModel): void {
  if ((teacher as unknown) === student) {
    throw new KdConfigError('SHARED_VARIABLES', 'the teacher and the student are the same model: pass a separate student');
  }
  const studentIds = new Set(student.weights.map((w) => w.read().id));
  const shared = teacherModels(teacher).models.flatMap((model) => model.weights.filter((w) => studentIds.has(w.read().id)));
  if (shared.length > 0) {
    throw new KdConfigError(
      'SHARED_VARIABLES',
      `the teacher and the student share ${shared.length} weight(s) (e.g. ${shared[0]!.name}): training the student would ` +
        'change the teacher; build the student from new layers, or clone the shared layers',
    );
  }
}

/**
 * Checks the student gets as many inputs as it has (by name for maps), each
 * of the shape it expects: a mismatch would otherwise throw inside the
 * gradient tape.
 *
 * @throws {@link KdShapeError} `MISSING_INPUT`, `INPUT_SHAPE_MISMATCH`.
 */
export function assertStudentInputs(student: tfl.LayersModel, x: ModelInputs): void {
  const given = orderInputs(student, x);
  const tensors = given instanceof tf.Tensor ? [given] : given;
  if (tensors.length !== student.inputs.length) {
    throw new KdShapeError(
      'MISSING_INPUT',
      `the student has ${student.inputs.length} input(s) (${student.inputNames.join(', ')}) but x holds ${tensors.length}: ` +
        'pass one tensor per student input, in order, or a map by input name',
    );
  }
  tensors.forEach((tensor, i) => {
    const expected = student.inputs[i]!.shape;
    const fits =
      tensor.rank === expected.length && expected.every((dim, d) => d === 0 || dim === null || dim === tensor.shape[d]);
    if (!fits) {
      throw new KdShapeError(
        'INPUT_SHAPE_MISMATCH',
        `student input "${student.inputNames[i]}" expects shape [${expected.map((d) => d ?? 'batch').join(', ')}] ` +
          `but got [${tensor.shape.join(', ')}]: reshape the data or build the student with inputShape ` +
          `[${tensor.shape.slice(1).join(', ')}]`,
      );
    }
  });
}
