import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdError, type KdErrorCode } from '../errors.js';
import { validateLabels } from '../losses/distillationLoss.js';
import { assertMaskShape, assertTokenLabelsShape, validateMask, validateTokenLabels } from '../losses/tokenLevel.js';
import { isTopKLogits } from '../losses/topK.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import type { DistillationBatch } from '../inputs/batches.js';
import type { Teacher } from '../teachers/teacher.js';
import type { ValidationData } from './distillerOptions.js';
import type { FeatureDistillation, TeacherFeatures } from './features.js';
import type { StepTeacherOutputs } from './stepData.js';

/** Where in a run a teacher call happens, for its error message. @internal */
export interface TeacherCallPlace {
  /** 0-based epoch; absent outside training. */
  epoch?: number;
  /** 0-based batch within the epoch (or within the evaluation). */
  batch: number;
}

/**
 * Runs the teacher on one batch (`teacher` names it in errors). Whatever the
 * teacher throws or rejects with becomes {@link teacherFailed}'s error naming
 * the epoch, the batch and the teacher, with the original error as its
 * `cause`; nothing about the student has changed at that point. What it returns must be a tensor or
 * top-k outputs `{ ids, logits }`.
 * @internal
 */
export async function callTeacher(
  teacher: unknown,
  run: () => unknown,
  place: TeacherCallPlace,
): Promise<StepTeacherOutputs> {
  let out: unknown;
  try {
    out = await run();
  } catch (error) {
    throw teacherFailed(error, teacher, place);
  }
  if (out instanceof tf.Tensor || isTopKLogits(out)) return out;
  throw new KdConfigError(
    'INVALID_TEACHER',
    `the teacher ${teacherName(teacher)} returned ${describe(out)} at ${placeText(place)}: ` +
      "predict must return a tf.Tensor of logits (or probabilities), or top-k outputs { ids, logits }",
  );
}

/**
 * The teacher's outputs for one batch: one pass for the logits (and, with
 * feature terms, the features), wrapped by {@link callTeacher}.
 * @internal
 */
export async function teacherOutputsFor(
  teacher: Teacher,
  source: unknown,
  features: FeatureDistillation | undefined,
  element: DistillationBatch,
  temperature: number,
  place: TeacherCallPlace,
): Promise<{ teacherLogits: StepTeacherOutputs; teacherFeatures?: TeacherFeatures }> {
  const inputs = element.teacherXs ?? element.xs;
  if (features !== undefined) {
    let outputs: ReturnType<FeatureDistillation['runTeacher']> | undefined;
    await callTeacher(source, () => (outputs = features.runTeacher(inputs)).logits, place);
    const { logits, ...teacherFeatures } = outputs!;
    return { teacherLogits: logits, teacherFeatures };
  }
  const context = { temperature, ...(element.id === undefined ? {} : { ids: element.id }) };
  return { teacherLogits: await callTeacher(source, () => teacher.predict(inputs, context), place) };
}

/** Validation data as `{ x, y?, teacherInputs?, mask? }`. @internal */
export function normalizeValidation(data: ValidationData): { x: ModelInputs; y?: tf.Tensor; teacherInputs?: ModelInputs; mask?: tf.Tensor } {
  if (Array.isArray(data)) return { x: data[0], y: data[1] };
  return data as { x: ModelInputs; y?: tf.Tensor; teacherInputs?: ModelInputs; mask?: tf.Tensor };
}

/**
 * The typed error for a teacher that threw, naming the teacher and the place,
 * with the original as `cause`: a kd-ts error keeps its class and code (a
 * cache's `MISSING_ID` stays `MISSING_ID`); anything else is
 * {@link KdConfigError} `TEACHER_FAILED`.
 * @internal
 */
export function teacherFailed(error: unknown, teacher: unknown, place: TeacherCallPlace): KdError {
  const where = `the teacher ${teacherName(teacher)} failed at ${placeText(place)}`;
  const after = 'The student was not updated with this batch';
  if (error instanceof KdError) {
    const Kind = error.constructor as new (code: KdErrorCode, message: string, options?: { cause?: unknown }) => KdError;
    return new Kind(error.code, `${where}: ${error.message} (${after})`, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new KdConfigError('TEACHER_FAILED', `${where}: ${reason}. ${after}; check the teacher and the inputs it reads (teacherInputs)`, {
    cause: error,
  });
}

function placeText(place: TeacherCallPlace): string {
  return place.epoch === undefined ? `evaluation batch ${place.batch}` : `epoch ${place.epoch}, batch ${place.batch}`;
}

/** The teacher's class name and, when it has one, its `name`. */
export function teacherName(teacher: unknown): string {
  if (teacher === null || typeof teacher !== 'object') return typeof teacher === 'function' ? 'function' : String(teacher);
  const className = (teacher as object).constructor?.name;
  const name = (teacher as { name?: unknown }).name;
  const label = typeof name === 'string' && name !== '' ? `'${name}'` : undefined;
  const kind = className !== undefined && className !== 'Object' ? className : 'object';
  return label === undefined ? `(${kind})` : `${label} (${kind})`;
}

function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return `an array of ${x.length}`;
  return typeof x === 'object' ? `an object with keys ${Object.keys(x).join(', ') || '(none)'}` : typeof x;
}

/** True when the student returns token-level logits `[batch, time, classes]`. @internal */
export function isTokenLevel(student: tfl.LayersModel): boolean {
  return student.outputs[0]?.shape.length === 3;
}

/**
 * Checks a run's labels and mask before training: per-example labels for
 * `[batch, classes]` students; per-token labels `[rows, time]` (any value
 * at masked tokens) and a 0/1 mask `[rows, time]` for token-level students.
 * @internal
 */
export function validateRunLabels(student: tfl.LayersModel, numClasses: number, rows: number, y: tf.Tensor | undefined, mask: tf.Tensor | undefined): void {
  if (!isTokenLevel(student)) {
    if (mask !== undefined) assertMaskShape(mask, [rows, numClasses]);
    if (y !== undefined) validateLabels(y, numClasses, rows);
    return;
  }
  const time = mask?.shape[1] ?? y?.shape[1] ?? student.outputs[0]!.shape[1] ?? 0;
  const shape = [rows, time, numClasses];
  if (mask !== undefined) {
    assertMaskShape(mask, shape);
    validateMask(mask);
  }
  if (y !== undefined) {
    assertTokenLabelsShape(y, shape);
    validateTokenLabels(y, numClasses, mask);
  }
}
