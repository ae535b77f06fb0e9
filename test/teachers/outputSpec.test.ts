import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  asTeacher,
  cachedTeacher,
  Distiller,
  EnsembleTeacher,
  TeacherCache,
  type Teacher,
} from '../../src/index.js';
import { teacherOutputSpec } from '../../src/teachers/index.js';
import {
  asLogitsSpec,
  checkedOutputSpec,
  invalidTeacherOutputs,
  loosestExactness,
  teacherOutputsAsLogits,
  teacherOutputsValid,
} from '../../src/teachers/outputSpec.js';
import { teacherModels } from '../../src/teachers/teacher.js';
import { mlp } from '../distill/helpers.js';

const EXACT_LOGITS = { form: 'logits', exactness: 'exact' };

describe('teacherOutputSpec: one value for what a teacher returns', () => {
  const fn = (x: unknown) => tf.tidy(() => tf.zeros([(x as tf.Tensor).shape[0]!, 3]));

  it('reads the short form, a full spec, or nothing (plain logits)', () => {
    expect(teacherOutputSpec({})).toEqual(EXACT_LOGITS);
    expect(teacherOutputSpec({ outputs: 'logits' })).toEqual(EXACT_LOGITS);
    expect(teacherOutputSpec({ outputs: 'probs' })).toEqual({ form: 'probs', exactness: 'exact' });
    const spec = { form: 'logits', exactness: 'up-to-constant' } as const;
    expect(teacherOutputSpec({ outputs: spec })).toEqual(spec);
  });

  it('comes from every adapter and teacher kd-ts makes', () => {
    const softmax = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4], activation: 'softmax' })] });
    expect(teacherOutputSpec(asTeacher(softmax))).toEqual({ form: 'probs', exactness: 'exact' });
    expect(teacherOutputSpec(asTeacher(fn))).toEqual(EXACT_LOGITS);
    expect(teacherOutputSpec(asTeacher(fn, { outputs: 'probs' }))).toEqual({ form: 'probs', exactness: 'exact' });
    const meanProbs = new EnsembleTeacher([fn, fn], { combine: 'mean-probs' });
    const temperatureDependent = { form: 'logits', exactness: 'temperature-dependent' };
    expect(teacherOutputSpec(meanProbs)).toEqual(temperatureDependent);
    expect(teacherOutputSpec(cachedTeacher(meanProbs))).toEqual(temperatureDependent);
    expect(new TeacherCache({ outputs: 'probs' }).outputs).toEqual({ form: 'probs', exactness: 'exact' });
    expect(new TeacherCache().outputs).toEqual(EXACT_LOGITS);
  });

  it('keeps a user-written teacher as given unless an override changes what it says', () => {
    const custom: Teacher = { outputs: 'logits', predict: fn };
    expect(asTeacher(custom)).toBe(custom);
    expect(asTeacher(custom, { outputs: 'logits' })).toBe(custom);
    const overridden = asTeacher(custom, { outputs: 'probs' });
    expect(overridden).not.toBe(custom);
    expect(teacherOutputSpec(overridden)).toEqual({ form: 'probs', exactness: 'exact' });
    const full = { form: 'logits', exactness: 'up-to-constant' } as const;
    expect(teacherOutputSpec(asTeacher(custom, { outputs: full }))).toEqual(full);
  });

  it('refuses a malformed declaration where it is given as an option', () => {
    expect(() => new TeacherCache({ outputs: 'logit' as 'logits' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: "outputs must be 'logits' or 'probs', got logit" }),
    );
    expect(() => checkedOutputSpec({ form: 'logits', exactness: 'roughly' }, 'member #0: ')).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/^member #0: outputs must be/) }),
    );
    expect(() => new EnsembleTeacher([{ teacher: fn, outputs: 'raw' as 'logits' }])).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: "ensemble member #0: outputs must be 'logits' or 'probs', got raw" }),
    );
  });

  it('combines exactness loosest-first, and probabilities read as logits are up to a constant', () => {
    expect(loosestExactness([])).toBe('exact');
    expect(loosestExactness(['exact', 'up-to-constant'])).toBe('up-to-constant');
    expect(loosestExactness(['temperature-dependent', 'up-to-constant'])).toBe('temperature-dependent');
    expect(asLogitsSpec({ form: 'probs', exactness: 'exact' })).toEqual({ form: 'logits', exactness: 'up-to-constant' });
    expect(asLogitsSpec({ form: 'probs', exactness: 'temperature-dependent' })).toEqual({
      form: 'logits',
      exactness: 'temperature-dependent',
    });
    expect(asLogitsSpec({ form: 'logits', exactness: 'exact' })).toEqual(EXACT_LOGITS);
  });

  it('turns outputs into float32 logits and checks them by their form, without leaks', async () => {
    const before = tf.memory().numTensors;
    const probs = tf.tensor2d([[0.25, 0.75, 0]]);
    const logits = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const [fromProbs, fromLogits, valid, invalid] = tf.tidy(() => [
      teacherOutputsAsLogits(probs, { form: 'probs', exactness: 'exact' }),
      teacherOutputsAsLogits(logits, EXACT_LOGITS as never),
      teacherOutputsValid(probs, { form: 'probs', exactness: 'exact' }),
      teacherOutputsValid(tf.tensor2d([[0.5, 0.6]]), { form: 'probs', exactness: 'exact' }),
    ]);
    expect(Array.from(await fromProbs!.data())).toEqual([Math.fround(Math.log(0.25)), Math.fround(Math.log(0.75)), Math.fround(Math.log(1e-30))]);
    expect(fromLogits!.dtype).toBe('float32');
    expect(Array.from(await fromLogits!.data())).toEqual([1, 2, 3]);
    expect((await valid!.data())[0]).toBe(1);
    expect((await invalid!.data())[0]).toBe(0);
    const plain = tf.tensor2d([[1, 2]]);
    expect(teacherOutputsAsLogits(plain, EXACT_LOGITS as never)).toBe(plain);
    tf.dispose([probs, logits, plain, fromProbs!, fromLogits!, valid!, invalid!]);
    expect(tf.memory().numTensors).toBe(before);
    expect(invalidTeacherOutputs({ form: 'probs', exactness: 'exact' }).code).toBe('INVALID_PROBABILITIES');
    expect(invalidTeacherOutputs(EXACT_LOGITS as never, { updateSkipped: true }).message).toMatch(
      /NaN or Infinity.*\(the student was not updated with this batch\)$/,
    );
  });
});

describe('Teacher.models(): the models a teacher holds, listed explicitly', () => {
  const fn = (x: unknown) => tf.tidy(() => tf.zeros([(x as tf.Tensor).shape[0]!, 3]));

  it('is listed by the LayersModel adapter, ensembles (recursively) and cachedTeacher', () => {
    const a = mlp(4, 8, 3, 1);
    const b = mlp(4, 8, 3, 2);
    expect(asTeacher(a).models!()).toEqual({ models: [a] });
    expect(teacherModels(a)).toEqual({ models: [a], complete: true });
    const nested = new EnsembleTeacher([a, new EnsembleTeacher([b, a]), cachedTeacher(b)]);
    expect(teacherModels(nested)).toEqual({ models: [a, b], complete: true });
    // A function holds no model kd-ts can see: the list is partial, the size unknown.
    expect(teacherModels(fn)).toEqual({ models: [], complete: false });
    expect(teacherModels(new EnsembleTeacher([a, fn]))).toEqual({ models: [a], complete: false });
    expect(teacherModels(cachedTeacher(fn))).toEqual({ models: [], complete: false });
    expect(teacherModels(new TeacherCache())).toEqual({ models: [], complete: false });
    a.dispose();
    b.dispose();
  });

  it('is what the Distiller checks for shared weights, partial lists included', () => {
    const student = mlp(4, 8, 3, 3);
    const listing: Teacher = { predict: fn, models: () => ({ models: [student], complete: false }) };
    expect(() => new Distiller({ teacher: listing, student })).toThrow(expect.objectContaining({ code: 'SHARED_VARIABLES' }));
    // A partial list is still checked: an ensemble of the student's model and a function.
    expect(() => new Distiller({ teacher: new EnsembleTeacher([student, fn]), student })).toThrow(
      expect.objectContaining({ code: 'SHARED_VARIABLES' }),
    );
    student.dispose();
  });
});
