import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError } from '../errors.js';
import { probsToLogits } from '../losses/probsToLogits.js';
import type { TeacherOutputExactness, TeacherOutputForm } from '../losses/teacherCompatibility.js';

export type { TeacherOutputExactness, TeacherOutputForm } from '../losses/teacherCompatibility.js';

/** What a teacher returns, the short way: `'logits'` or `'probs'`, exact either way. */
export type TeacherOutputs = 'logits' | 'probs';

/**
 * What a teacher's `predict` returns and how it depends on the temperature:
 * the one value every part of kd-ts reads (the caches, ensembles, the
 * Distiller and its step, `computeTeacherLogits`, and the loss's
 * compatibility check), got from any teacher by {@link teacherOutputSpec}.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import type { Teacher, TeacherOutputSpec } from 'kd-ts/teachers';
 *
 * // Outputs computed at one temperature as T · log p: exact for a softmax at that T only.
 * const outputs: TeacherOutputSpec = { form: 'logits', exactness: 'temperature-dependent' };
 * const teacher: Teacher = { outputs, predict: (x) => tf.zeros([(x as tf.Tensor).shape[0]!, 3]) };
 * ```
 */
export interface TeacherOutputSpec {
  /** Logits or probabilities. */
  readonly form: TeacherOutputForm;
  /** How exactly they stand for the teacher's logits (see {@link TeacherOutputExactness}). */
  readonly exactness: TeacherOutputExactness;
}

const FORMS: readonly TeacherOutputForm[] = ['logits', 'probs'];
/** Strictest first: combining outputs keeps the loosest exactness among them. */
const EXACTNESS: readonly TeacherOutputExactness[] = ['exact', 'up-to-constant', 'temperature-dependent'];

/**
 * What a teacher returns, read from its `outputs`: the short form
 * (`'logits'`, `'probs'`), a full {@link TeacherOutputSpec}, or nothing
 * (plain logits).
 *
 * @param teacher - Any {@link Teacher} (or anything with an optional `outputs`).
 * @returns The teacher's {@link TeacherOutputSpec}.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { asTeacher, EnsembleTeacher, teacherOutputSpec } from 'kd-ts/teachers';
 *
 * const mlp = () => tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] })] });
 * teacherOutputSpec(asTeacher(mlp())); // { form: 'logits', exactness: 'exact' }
 * teacherOutputSpec(new EnsembleTeacher([mlp(), mlp()], { combine: 'mean-probs' }));
 * // { form: 'logits', exactness: 'temperature-dependent' }
 * ```
 */
export function teacherOutputSpec(teacher: { readonly outputs?: TeacherOutputs | TeacherOutputSpec }): TeacherOutputSpec {
  return outputSpecOf(teacher.outputs);
}

/**
 * A declaration of outputs as a {@link TeacherOutputSpec}. Lenient, as kd-ts
 * has always read a teacher's `outputs`: anything but `'probs'` (or a spec)
 * means plain logits.
 * @internal
 */
export function outputSpecOf(outputs: TeacherOutputs | TeacherOutputSpec | undefined): TeacherOutputSpec {
  if (outputs !== null && typeof outputs === 'object') return { form: outputs.form, exactness: outputs.exactness };
  return { form: outputs === 'probs' ? 'probs' : 'logits', exactness: 'exact' };
}

/**
 * A declaration of outputs given as an option, checked.
 *
 * @param outputs - `'logits'`, `'probs'`, a {@link TeacherOutputSpec}, or undefined (plain logits).
 * @param where - Prefix for the message (e.g. `ensemble member #1: `).
 * @throws {@link KdConfigError} `INVALID_OPTION` for anything else.
 * @internal
 */
export function checkedOutputSpec(outputs: unknown, where = ''): TeacherOutputSpec {
  if (outputs === undefined || outputs === 'logits' || outputs === 'probs') return outputSpecOf(outputs);
  if (outputs !== null && typeof outputs === 'object') {
    const { form, exactness } = outputs as Partial<TeacherOutputSpec>;
    if (FORMS.includes(form!) && EXACTNESS.includes(exactness!)) return { form: form!, exactness: exactness! };
    throw new KdConfigError(
      'INVALID_OPTION',
      `${where}outputs must be 'logits', 'probs' or { form, exactness } with form ${FORMS.map((f) => `'${f}'`).join(' or ')} ` +
        `and exactness ${EXACTNESS.map((e) => `'${e}'`).join(', ')}, got ${JSON.stringify(outputs)}`,
    );
  }
  throw new KdConfigError('INVALID_OPTION', `${where}outputs must be 'logits' or 'probs', got ${String(outputs)}`);
}

/** The loosest of several exactnesses (what a combination of outputs keeps). @internal */
export function loosestExactness(all: readonly TeacherOutputExactness[]): TeacherOutputExactness {
  return EXACTNESS[Math.max(0, ...all.map((e) => EXACTNESS.indexOf(e)))]!;
}

/**
 * The spec of {@link teacherOutputsAsLogits}'s result: probabilities become
 * `log p`, logits only up to a per-row constant.
 * @internal
 */
export function asLogitsSpec(spec: TeacherOutputSpec): TeacherOutputSpec {
  switch (spec.form) {
    case 'logits':
      return spec;
    case 'probs':
      return { form: 'logits', exactness: loosestExactness([spec.exactness, 'up-to-constant']) };
  }
}

/**
 * Teacher outputs as float32 logits: logits as they are, probabilities as
 * `log p` (floored, see `probsToLogits`). Returns `outputs` itself when
 * nothing changes; run inside `tf.tidy` otherwise.
 * @internal
 */
export function teacherOutputsAsLogits(outputs: tf.Tensor, spec: TeacherOutputSpec): tf.Tensor {
  const values = outputs.dtype === 'float32' ? outputs : tf.cast(outputs, 'float32');
  switch (spec.form) {
    case 'logits':
      return values;
    case 'probs':
      return probsToLogits(values);
  }
}

/**
 * A boolean scalar: the outputs are valid for their form (finite; for
 * probabilities also non-negative with rows summing to 1 within 1e-3). Run
 * inside `tf.tidy`; read it together with other values, then throw
 * {@link invalidTeacherOutputs} when false.
 * @internal
 */
export function teacherOutputsValid(outputs: tf.Tensor, spec: TeacherOutputSpec): tf.Tensor {
  const finite = tf.all(tf.isFinite(outputs));
  switch (spec.form) {
    case 'logits':
      return finite;
    case 'probs': {
      const sumsOk = tf.lessEqual(tf.max(tf.abs(tf.sub(tf.sum(outputs, -1), 1))), 1e-3);
      return tf.logicalAnd(finite, tf.logicalAnd(tf.greaterEqual(tf.min(outputs), 0), sumsOk));
    }
  }
}

/**
 * The error for outputs {@link teacherOutputsValid} found invalid.
 *
 * @param spec - What the teacher declared.
 * @param options - `updateSkipped`: say that the student was not updated with this batch.
 * @returns `INVALID_PROBABILITIES` for probabilities, else `NON_FINITE_TEACHER_OUTPUT`.
 * @internal
 */
export function invalidTeacherOutputs(spec: TeacherOutputSpec, options: { updateSkipped?: boolean } = {}): KdDataError {
  switch (spec.form) {
    case 'probs':
      return new KdDataError(
        'INVALID_PROBABILITIES',
        'the teacher outputs are not probabilities (NaN/Inf, negative, or rows not summing to 1): ' +
          "declare outputs: 'logits' if the teacher returns logits, or check its inputs",
      );
    case 'logits':
      return new KdDataError(
        'NON_FINITE_TEACHER_OUTPUT',
        'the teacher outputs contain NaN or Infinity: check the teacher and its inputs' +
          (options.updateSkipped ? ' (the student was not updated with this batch)' : ''),
      );
  }
}
