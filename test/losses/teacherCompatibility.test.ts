import { describe, expect, it } from 'vitest';
import {
  assertTeacherOutputsFit,
  teacherOutputsProblem,
  type TeacherOutputExactness,
  type TeacherOutputForm,
} from '../../src/losses/teacherCompatibility.js';
import { KdConfigError } from '../../src/index.js';

const FORMS: TeacherOutputForm[] = ['logits', 'probs'];
const EXACTNESS: TeacherOutputExactness[] = ['exact', 'up-to-constant', 'temperature-dependent'];
const EVERY_OUTPUT = FORMS.flatMap((form) => EXACTNESS.map((exactness) => ({ form, exactness })));

describe('which loss kinds accept which teacher outputs', () => {
  it.each(EVERY_OUTPUT)("kind 'kl' accepts $form ($exactness)", (outputs) => {
    expect(teacherOutputsProblem('kl', outputs)).toBeUndefined();
    expect(() => assertTeacherOutputsFit('kl', outputs)).not.toThrow();
  });

  it("kind 'mse' accepts plain logits only", () => {
    const accepted = EVERY_OUTPUT.filter((outputs) => teacherOutputsProblem('mse', outputs) === undefined);
    expect(accepted).toEqual([{ form: 'logits', exactness: 'exact' }]);
  });

  it.each([
    [
      { form: 'probs', exactness: 'exact' },
      "kind 'mse' matches logits, but the teacher outputs probabilities: use kind 'kl', or give a teacher that returns logits",
    ],
    [
      { form: 'logits', exactness: 'up-to-constant' },
      "kind 'mse' matches logits, but this teacher's outputs are logits only up to a per-row constant " +
        "(e.g. a mean-logits ensemble with a member that returns probabilities): use kind 'kl'",
    ],
    [
      { form: 'logits', exactness: 'temperature-dependent' },
      "kind 'mse' matches logits, but this teacher's outputs depend on the temperature " +
        "(e.g. an EnsembleTeacher with combine: 'mean-probs'): use kind 'kl', or combine: 'mean-logits'",
    ],
    // The deeper reason is named first: temperature dependence before the form.
    [
      { form: 'probs', exactness: 'temperature-dependent' },
      "kind 'mse' matches logits, but this teacher's outputs depend on the temperature " +
        "(e.g. an EnsembleTeacher with combine: 'mean-probs'): use kind 'kl', or combine: 'mean-logits'",
    ],
  ] as const)("kind 'mse' refuses %j with PROBS_TEACHER_WITH_MSE, saying why and what to use", (outputs, message) => {
    expect(teacherOutputsProblem('mse', outputs)).toEqual({ code: 'PROBS_TEACHER_WITH_MSE', message });
    let thrown: unknown;
    try {
      assertTeacherOutputsFit('mse', outputs);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KdConfigError);
    expect(thrown).toMatchObject({ code: 'PROBS_TEACHER_WITH_MSE', message });
  });

  it('leaves an unknown kind to the loss options check', () => {
    expect(teacherOutputsProblem('nope' as 'kl', { form: 'probs', exactness: 'exact' })).toBeUndefined();
  });
});
