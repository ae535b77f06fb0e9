import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { assertLabelsShape, isIdLabels, type ResolvedLossConfig } from '../losses/distillationLoss.js';
import { probsToLogits } from '../losses/probsToLogits.js';
import { assertMaskShape, assertTokenLabelsShape } from '../losses/tokenLevel.js';
import { assertTopK, assertTopKTeacherShape, isTopKLogits, validateTopKTeacher, type TopKLogits } from '../losses/topK.js';
import { firstTensor, type ModelInputs } from '../inputs/modelInputs.js';
import { invalidTeacherOutputs, teacherOutputsAsLogits, teacherOutputsValid, type TeacherOutputSpec } from '../teachers/outputSpec.js';

/**
 * What a training step takes as teacher outputs: a `[batch, classes]` or
 * `[batch, time, classes]` tensor, or top-k outputs (`{ ids, logits }`, the k
 * largest logits of each row and their class ids).
 */
export type StepTeacherOutputs = tf.Tensor | TopKLogits;

/** What the step's checks read of a batch (a subset of `StepBatch`). @internal */
export interface StepData {
  inputs: ModelInputs;
  teacherLogits: StepTeacherOutputs;
  labels?: tf.Tensor;
  mask?: tf.Tensor;
}

/** The tensors of teacher outputs, for disposal. @internal */
export function teacherOutputTensors(outputs: StepTeacherOutputs | undefined): tf.Tensor[] {
  if (outputs === undefined) return [];
  return isTopKLogits(outputs) ? [outputs.ids, outputs.logits] : [outputs];
}

/**
 * Teacher outputs as logits (probabilities as `log p`; top-k values the same
 * way, since the loss renormalizes over the k classes). Returns `outputs`
 * itself when nothing changes; run inside `tf.tidy` otherwise.
 * @internal
 */
export function stepTeacherAsLogits(outputs: StepTeacherOutputs, spec: TeacherOutputSpec): StepTeacherOutputs {
  if (!isTopKLogits(outputs)) return teacherOutputsAsLogits(outputs, spec);
  if (spec.form !== 'probs' && outputs.logits.dtype === 'float32') return outputs;
  const values = tf.cast(outputs.logits, 'float32');
  return { ids: outputs.ids, logits: spec.form === 'probs' ? probsToLogits(values) : values };
}

/** Disposes what {@link stepTeacherAsLogits} made, keeping the caller's tensors. @internal */
export function disposeConverted(converted: StepTeacherOutputs, original: StepTeacherOutputs): void {
  const keep = new Set(teacherOutputTensors(original));
  tf.dispose(teacherOutputTensors(converted).filter((t) => !keep.has(t)));
}

/**
 * Shape checks of one batch before the gradient closure (a throw inside
 * `tf.variableGrads` leaks its tensors): teacher outputs of rank 2 or 3 (or
 * top-k outputs, whose ids are also checked by value: one small read, since
 * an id out of range would fail inside the loss), the student's class count,
 * rows, labels, mask, alpha without labels.
 * @internal
 */
export function checkStepData(batch: StepData, config: ResolvedLossConfig, alpha: number, studentShape: readonly (number | null)[], logitTerm: boolean): void {
  const teacher = batch.teacherLogits;
  const topK = isTopKLogits(teacher);
  const lead = topK ? leadShape(teacher.ids, 'top-k teacher ids') : leadShape(teacher, 'teacher outputs');
  const studentClasses = studentShape[studentShape.length - 1];
  if (studentShape.length !== lead.length + 1) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `the student outputs [${studentShape.map((d) => d ?? 'batch').join(', ')}] but the teacher outputs are ` +
        `[${(topK ? teacher.ids : (teacher as tf.Tensor)).shape.join(', ')}]: both must be [batch, classes], or [batch, time, classes] ` +
        'for token-level logits',
    );
  }
  const teacherClasses = topK ? undefined : (teacher as tf.Tensor).shape[lead.length]!;
  const classes = typeof studentClasses === 'number' ? studentClasses : teacherClasses;
  if (teacherClasses !== undefined && typeof studentClasses === 'number' && teacherClasses !== studentClasses) {
    throw new KdShapeError(
      'CLASS_COUNT_MISMATCH',
      `teacher logits have ${teacherClasses} classes but student logits have ${studentClasses}: ` +
        `build the student with ${teacherClasses} output units`,
    );
  }
  const inputRows = firstTensor(batch.inputs).shape[0];
  if (inputRows !== lead[0]) {
    throw new KdShapeError(
      'BATCH_SIZE_MISMATCH',
      `teacher outputs have ${lead[0]} rows but the student's batch has ${inputRows}: ` +
        'the teacher must return one row per example of the batch',
    );
  }
  const logitsShape = [...lead, classes ?? 0];
  if (topK) {
    if (!logitsShape.includes(0)) {
      if (logitTerm) assertTopK(teacher.ids.shape[lead.length], config.kind);
      assertTopKTeacherShape(teacher, logitsShape, config.topK);
      validateTopKTeacher(teacher, classes!);
    }
  }
  if (batch.mask !== undefined) assertMaskShape(batch.mask, logitsShape);
  if (batch.labels !== undefined) {
    if (lead.length === 2) assertTokenLabelsShape(batch.labels, logitsShape);
    else assertLabelsShape(batch.labels, logitsShape);
  }
  if (alpha > 0 && batch.labels === undefined) {
    throw new KdConfigError('ALPHA_WITHOUT_LABELS', `alpha is ${alpha} but the batch has no labels: pass labels (y), or set alpha to 0`);
  }
}

/** `[batch]` or `[batch, time]` of a `[..., classes]` tensor. */
function leadShape(x: unknown, what: string): number[] {
  if (!(x instanceof tf.Tensor) || x.rank < 2 || x.rank > 3) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `${what} must have shape [batch, classes] or [batch, time, classes], got ` +
        (x instanceof tf.Tensor ? `[${x.shape.join(', ')}]` : typeof x) +
        ': reshape to 2-D (or 3-D for token-level logits)',
    );
  }
  return x.shape.slice(0, -1);
}

/**
 * Throws when the student's logits do not match the teacher outputs (rows,
 * time steps, classes); called where the student's output is known.
 * @internal
 */
export function assertStudentMatches(student: tf.Tensor, teacher: StepTeacherOutputs): void {
  const reference = isTopKLogits(teacher) ? teacher.ids : teacher;
  const lead = reference.shape.slice(0, -1);
  const studentLead = student.shape.slice(0, -1);
  if (student.size === 0) {
    throw new KdShapeError('BATCH_SIZE_MISMATCH', `the student logits are empty (shape [${student.shape.join(', ')}]): pass at least one example`);
  }
  if (studentLead.length !== lead.length || studentLead.some((d, i) => d !== lead[i])) {
    throw new KdShapeError(
      lead.length === studentLead.length ? 'BATCH_SIZE_MISMATCH' : 'RANK_MISMATCH',
      `student logits [${student.shape.join(', ')}] do not match the teacher outputs [${reference.shape.join(', ')}]: ` +
        'both must be [batch, classes], or [batch, time, classes] for token-level logits, on the same batch',
    );
  }
  if (!isTopKLogits(teacher) && student.shape[student.rank - 1] !== teacher.shape[teacher.rank - 1]) {
    throw new KdShapeError(
      'CLASS_COUNT_MISMATCH',
      `teacher logits have ${teacher.shape[teacher.rank - 1]} classes but student logits have ${student.shape[student.rank - 1]}: ` +
        `build the student with ${teacher.shape[teacher.rank - 1]} output units`,
    );
  }
}

// Layout of the stats vector read back once per batch.
const LOSS = 0;
const DISTILLATION = 1;
const STUDENT_LOSS = 2;
const CORRECT = 3;
const AGREE = 4;
const TEACHER_OK = 5;
const LABELS_OK = 6;
const FEATURE = 7;
const COUNT = 8;
const MASK_OK = 9;

/**
 * The teacher's class per row: the argmax of its logits, or for top-k outputs
 * the id holding the largest of the k logits (ids need not be sorted).
 */
function teacherClasses(teacher: StepTeacherOutputs): tf.Tensor {
  if (!isTopKLogits(teacher)) return tf.argMax(teacher, -1);
  const k = teacher.ids.shape[teacher.ids.rank - 1]!;
  const best = tf.oneHot(tf.argMax(teacher.logits, -1), k, 1, 0, 'int32');
  return tf.sum(tf.mul(best, tf.cast(teacher.ids, 'int32')), -1);
}

/**
 * Everything read back per batch, stacked so a single `data()` call fetches
 * it. Agreement and accuracy count rows, or unmasked tokens for token-level
 * logits. Run inside `tf.tidy` or a gradient closure.
 * @internal
 */
export function batchStats(
  loss: tf.Scalar,
  terms: { distillation: tf.Scalar; studentLoss?: tf.Scalar; featureLoss?: tf.Scalar },
  studentLogits: tf.Tensor,
  batch: StepData,
  teacherOutputs: TeacherOutputSpec,
): tf.Tensor1D {
  const numClasses = studentLogits.shape[studentLogits.rank - 1]!;
  const predicted = tf.argMax(studentLogits, -1);
  const weights = batch.mask === undefined ? tf.cast(tf.onesLike(predicted), 'float32') : tf.cast(batch.mask, 'float32');
  const counted = (hits: tf.Tensor) => tf.sum(tf.mul(tf.cast(hits, 'float32'), weights));
  const agree = counted(tf.equal(predicted, teacherClasses(batch.teacherLogits)));
  let correct: tf.Tensor = tf.scalar(0);
  let labelsOk: tf.Tensor = tf.scalar(1);
  if (batch.labels !== undefined) {
    const idLabels = studentLogits.rank === 3 ? batch.labels.rank === 2 : isIdLabels(batch.labels);
    const labelIds = idLabels ? tf.cast(tf.reshape(batch.labels, predicted.shape), 'int32') : tf.argMax(batch.labels, -1);
    correct = counted(tf.equal(predicted, labelIds));
    if (idLabels) {
      // Out-of-range ids would one-hot to an all-zero row and silently drop out of the loss (masked tokens may hold anything).
      const inRange = tf.logicalAnd(tf.greaterEqual(labelIds, 0), tf.less(labelIds, numClasses));
      labelsOk = tf.cast(tf.all(tf.logicalOr(inRange, tf.equal(weights, 0))), 'float32');
    }
  }
  // Top-k outputs were checked by value before the step.
  const teacherOk = isTopKLogits(batch.teacherLogits) ? tf.scalar(1) : tf.cast(teacherOutputsValid(batch.teacherLogits, teacherOutputs), 'float32');
  const maskOk =
    batch.mask === undefined
      ? tf.scalar(1)
      : tf.cast(tf.logicalAnd(tf.all(tf.logicalOr(tf.equal(weights, 0), tf.equal(weights, 1))), tf.greater(tf.sum(weights), 0)), 'float32');
  return tf.stack([
    loss,
    terms.distillation,
    terms.studentLoss ?? tf.scalar(0),
    correct,
    agree,
    teacherOk,
    labelsOk,
    terms.featureLoss ?? tf.scalar(0),
    tf.sum(weights),
    maskOk,
  ]) as tf.Tensor1D;
}

/** Logs from the values {@link batchStats} stacked, or the batch's typed error. @internal */
export function readStats(values: ArrayLike<number>, batch: StepData & { teacherFeatures?: unknown }, teacherOutputs: TeacherOutputSpec, numClasses: number): Record<string, number> & { loss: number; distillation_loss: number; agreement: number } {
  if (values[MASK_OK] !== 1) {
    throw new KdDataError(
      'INVALID_MASK',
      'the mask holds values other than 0 and 1, or masks every token of the batch: a mask holds 0 (padding, ignored) ' +
        'or 1 (a token that counts); the student was not updated with this batch',
    );
  }
  if (values[TEACHER_OK] !== 1) throw invalidTeacherOutputs(teacherOutputs, { updateSkipped: true });
  if (values[LABELS_OK] !== 1) {
    throw new KdDataError(
      'LABEL_OUT_OF_RANGE',
      `a label in this batch is outside [0, ${numClasses}): labels must be class ids 0..${numClasses - 1}` +
        (batch.mask === undefined ? '' : ' at unmasked tokens'),
    );
  }
  const loss = values[LOSS]!;
  if (!Number.isFinite(loss)) {
    throw new KdDataError(
      'NON_FINITE_LOSS',
      `the loss is ${loss}: the student diverged or its inputs hold NaN/Inf; ` +
        'the update was skipped, so the student keeps its last good weights: lower the learning rate or check the inputs',
    );
  }
  const count = values[COUNT]!;
  const logs: Record<string, number> & { loss: number; distillation_loss: number; agreement: number } = {
    loss,
    distillation_loss: values[DISTILLATION]!,
    agreement: values[AGREE]! / count,
  };
  if (batch.teacherFeatures !== undefined) logs.feature_loss = values[FEATURE]!;
  if (batch.labels !== undefined) {
    logs.student_loss = values[STUDENT_LOSS]!;
    logs.acc = values[CORRECT]! / count;
  }
  return logs;
}
