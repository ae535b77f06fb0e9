/**
 * Feature distillation's building blocks (src/distill/features.ts): the
 * teacher and student models with extra outputs, projections, masks, and the
 * typed errors of bad `features` entries.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { withSeed } from '../../src/index.js';
import type { KdError } from '../../src/errors.js';
import { buildFeatureDistillation, type FeatureSpec } from '../../src/distill/features.js';

function mlp(seed: number, widths: number[], names: string[]) {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: widths.map((units, i) =>
        tfl.layers.dense({ units, activation: i < widths.length - 1 ? 'relu' : undefined, name: names[i], ...(i === 0 ? { inputShape: [6] } : {}) }),
      ),
    }),
  );
}

function codeOf(fn: () => unknown): { code?: string; message?: string } {
  try {
    fn();
  } catch (e) {
    return { code: (e as KdError).code, message: (e as Error).message };
  }
  return {};
}

describe('models with extra outputs', () => {
  test('one teacher pass gives its logits and features; the student runs its own layers, no new weights', () => {
    const teacher = mlp(1, [16, 12, 3], ['t1', 't2', 't_out']);
    const student = mlp(2, [8, 8, 3], ['s1', 's2', 's_out']);
    const params = student.countParams();
    const weightsBefore = student.weights.length;
    const fd = buildFeatureDistillation({ teacher, student, features: [{ teacherLayer: 't2', studentLayer: 's1' }] });
    const x = tf.randomNormal([5, 6]);
    const middle = tfl.model({ inputs: teacher.inputs, outputs: teacher.getLayer('t2').output as tfl.SymbolicTensor });
    const expected = tf.tidy(() => [teacher.predict(x), middle.predict(x), student.predict(x)].map((t) => Array.from((t as tf.Tensor).dataSync())));
    const before = tf.memory().numTensors;
    const t = fd.runTeacher(x);
    expect(t.logits.shape).toEqual([5, 3]);
    expect(t.features[0]!.shape).toEqual([5, 12]);
    expect(Array.from(t.logits.dataSync())).toEqual(expected[0]);
    expect(Array.from(t.features[0]!.dataSync())).toEqual(expected[1]);
    const s = tf.tidy(() => {
      const out = fd.runStudent(x, false);
      return [out.logits, ...out.features];
    });
    expect(s[0]!.shape).toEqual([5, 3]);
    expect(s[1]!.shape).toEqual([5, 12]); // projected 8 → 12
    expect(Array.from(s[0]!.dataSync())).toEqual(expected[2]);
    expect(fd.projectionVariables.map((v) => v.shape)).toEqual([[8, 12], [12]]);
    expect(student.countParams()).toBe(params);
    expect(student.weights.length).toBe(weightsBefore);
    tf.dispose([t.logits, ...t.features, ...s]);
    // Everything made by the passes is gone; the extra models hold no tensors of their own.
    expect(tf.memory().numTensors).toBe(before);
    fd.dispose();
  });

  test("projection: 'auto' only when the widths differ, 'linear' always, 'none' never", () => {
    const teacher = mlp(1, [8, 12, 3], ['t1', 't2', 't_out']);
    const student = mlp(2, [8, 5, 3], ['s1', 's2', 's_out']);
    const build = (features: FeatureSpec[]) => buildFeatureDistillation({ teacher, student, features });
    expect(build([{ teacherLayer: 't1', studentLayer: 's1' }]).projectionVariables).toHaveLength(0);
    expect(build([{ teacherLayer: 't1', studentLayer: 's1', projection: 'linear' }]).projectionVariables).toHaveLength(2);
    expect(build([{ teacherLayer: 't2', studentLayer: 's2' }]).features[0]!.projection).not.toBeNull();
    expect(codeOf(() => build([{ teacherLayer: 't2', studentLayer: 's2', projection: 'none' }])).code).toBe('FEATURE_SHAPE_MISMATCH');
  });

  test('a 1×1 convolution projects [batch, h, w, channels] maps; attention takes none', () => {
    const conv = (seed: number, filters: number[], names: string[]) =>
      withSeed(seed, () =>
        tfl.sequential({
          layers: [
            ...filters.map((f, i) =>
              tfl.layers.conv2d({ filters: f, kernelSize: 3, padding: 'same', activation: 'relu', name: names[i], ...(i === 0 ? { inputShape: [6, 6, 1] } : {}) }),
            ),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
    const teacher = conv(1, [8, 16], ['tc1', 'tc2']);
    const student = conv(2, [4], ['sc1']);
    const fd = buildFeatureDistillation({
      teacher,
      student,
      features: [
        { teacherLayer: 'tc2', studentLayer: 'sc1' },
        { teacherLayer: 'tc2', studentLayer: 'sc1', loss: 'attention' },
      ],
    });
    expect(fd.projectionVariables.map((v) => v.shape)).toEqual([[1, 1, 4, 16], [16]]);
    const x = tf.randomNormal([2, 6, 6, 1]);
    const t = fd.runTeacher(x);
    const loss = tf.tidy(() => fd.loss(fd.runStudent(x, false), t, [1, 0.5]));
    expect(Number.isFinite(loss.dataSync()[0]!)).toBe(true);
    tf.dispose([loss, t.logits, ...t.features]);
    expect(
      codeOf(() => buildFeatureDistillation({ teacher, student, features: [{ teacherLayer: 'tc2', studentLayer: 'sc1', loss: 'attention', projection: 'linear' }] })).code,
    ).toBe('INVALID_OPTION');
  });
});

describe('masks', () => {
  test('the padding mask of a sequence layer comes from the token ids; padded positions do not count', () => {
    const tagger = (seed: number, units: number, prefix: string) =>
      withSeed(seed, () => {
        const tokens = tfl.input({ shape: [null], dtype: 'int32' });
        const embedded = tfl.layers.embedding({ inputDim: 20, outputDim: 6, maskZero: true, name: `${prefix}_emb` }).apply(tokens);
        const hidden = tfl.layers.lstm({ units, returnSequences: true, recurrentInitializer: 'glorotUniform', name: `${prefix}_lstm` }).apply(embedded) as tfl.SymbolicTensor;
        const pooled = tfl.layers.globalAveragePooling1d().apply(hidden);
        return tfl.model({ inputs: tokens, outputs: tfl.layers.dense({ units: 2 }).apply(pooled) as tfl.SymbolicTensor });
      });
    const teacher = tagger(1, 5, 't');
    const student = tagger(2, 5, 's');
    const fd = buildFeatureDistillation({ teacher, student, features: [{ teacherLayer: 't_lstm', studentLayer: 's_lstm' }] });
    const tokens = tf.tensor2d([[3, 4, 0, 0], [5, 0, 0, 0]], undefined, 'int32');
    const t = fd.runTeacher(tokens);
    expect(Array.from(t.masks[0]!.dataSync())).toEqual([1, 1, 0, 0, 1, 0, 0, 0]);
    const s = fd.runStudent(tokens, false);
    expect(Array.from(s.masks[0]!.dataSync())).toEqual([1, 1, 0, 0, 1, 0, 0, 0]);
    // The same value with other tokens in the padded positions' place is impossible to build directly
    // (padding is the mask), so compare with the loss computed by hand over unmasked positions.
    const sf = s.features[0]!.arraySync() as number[][][];
    const tfe = t.features[0]!.arraySync() as number[][][];
    let total = 0;
    let count = 0;
    [[0, 0], [0, 1], [1, 0]].forEach(([b, i]) => {
      for (let u = 0; u < 5; u++) total += (sf[b!]![i!]![u]! - tfe[b!]![i!]![u]!) ** 2;
      count += 5;
    });
    const loss = fd.loss(s, t, [1]);
    expect(loss.dataSync()[0]).toBeCloseTo(total / count, 5);
  });
});

describe('typed errors at build time', () => {
  const teacher = mlp(1, [16, 12, 3], ['t1', 't2', 't_out']);
  const student = mlp(2, [8, 8, 3], ['s1', 's2', 's_out']);
  const build = (features: FeatureSpec[], t: unknown = teacher, s: tfl.LayersModel = student) =>
    codeOf(() => buildFeatureDistillation({ teacher: t as tfl.LayersModel, student: s, features }));

  test('a teacher that is not a LayersModel says which teachers support features', () => {
    const r = build([{ teacherLayer: 't1', studentLayer: 's1' }], (x: tf.Tensor) => x);
    expect(r.code).toBe('INVALID_TEACHER');
    expect(r.message).toMatch(/LayersModel/);
  });

  test('an unknown layer lists the model\'s layer names', () => {
    const r = build([{ teacherLayer: 't1', studentLayer: 'nope' }]);
    expect(r.code).toBe('UNKNOWN_LAYER');
    expect(r.message).toContain('"s1", "s2", "s_out"');
    expect(build([{ teacherLayer: 'nope', studentLayer: 's1' }]).code).toBe('UNKNOWN_LAYER');
  });

  test('layers inside nested models, shared layers', () => {
    const inner = mlp(3, [8, 8], ['inner1', 'inner2']);
    const nested = tfl.sequential({ layers: [inner, tfl.layers.dense({ units: 3, name: 'nested_out' })] });
    const r = build([{ teacherLayer: 't1', studentLayer: 'inner1' }], teacher, nested);
    expect(r.code).toBe('UNSUPPORTED_FEATURE_LAYER');
    expect(r.message).toMatch(/nested/);
    const x = tfl.input({ shape: [6] });
    const shared = tfl.layers.dense({ units: 6, name: 'shared' });
    const twice = shared.apply(shared.apply(x)) as tfl.SymbolicTensor;
    const sharedModel = tfl.model({ inputs: x, outputs: tfl.layers.dense({ units: 3 }).apply(twice) as tfl.SymbolicTensor });
    const s = build([{ teacherLayer: 't1', studentLayer: 'shared' }], teacher, sharedModel);
    expect(s.code).toBe('UNSUPPORTED_FEATURE_LAYER');
    expect(s.message).toMatch(/shared/);
  });

  test('rank mismatch, attention on non-maps, bad options', () => {
    const seqStudent = withSeed(4, () => {
      const x = tfl.input({ shape: [6] });
      const seq = tfl.layers.reshape({ targetShape: [3, 2], name: 'seq' }).apply(x) as tfl.SymbolicTensor;
      const flat = tfl.layers.flatten().apply(seq) as tfl.SymbolicTensor;
      return tfl.model({ inputs: x, outputs: tfl.layers.dense({ units: 3 }).apply(flat) as tfl.SymbolicTensor });
    });
    expect(build([{ teacherLayer: 't1', studentLayer: 'seq' }], teacher, seqStudent).code).toBe('RANK_MISMATCH');
    expect(build([{ teacherLayer: 't1', studentLayer: 's1', loss: 'attention' }]).code).toBe('FEATURE_SHAPE_MISMATCH');
    expect(build([{ teacherLayer: 't1', studentLayer: 's1', loss: 'hint' as never }]).code).toBe('INVALID_OPTION');
    expect(build([{ teacherLayer: 't1', studentLayer: 's1', weight: -1 }]).code).toBe('INVALID_OPTION');
    expect(build([{ teacherLayer: 't1', studentLayer: 's1', projection: 'conv' as never }]).code).toBe('INVALID_OPTION');
    expect(build([]).code).toBe('INVALID_OPTION');
  });
});

describe('the BiLSTM student', () => {
  test("its 'bilstm' layer (pooling 'max') gives [batch, time, 2h] features with the token mask", async () => {
    const { buildBiLstmStudent } = await import('../../src/index.js');
    const make = (seed: number, hiddenUnits: number) =>
      withSeed(seed, () => buildBiLstmStudent({ vocabSize: 30, numClasses: 2, embeddingDim: 8, hiddenUnits, fcUnits: 8, pooling: 'max' }));
    const teacher = make(1, 12);
    const student = make(2, 4);
    const params = student.countParams();
    const fd = buildFeatureDistillation({ teacher, student, features: [{ teacherLayer: 'bilstm', studentLayer: 'bilstm', loss: 'cosine' }] });
    const tokens = tf.tensor2d([[3, 4, 5, 0], [6, 0, 0, 0]], undefined, 'int32');
    const t = fd.runTeacher(tokens);
    expect(t.features[0]!.shape).toEqual([2, 4, 24]);
    expect(Array.from(t.masks[0]!.dataSync())).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
    const s = fd.runStudent(tokens, false);
    expect(s.features[0]!.shape).toEqual([2, 4, 24]); // 8 → 24, projected
    expect(Number.isFinite(fd.loss(s, t, [1]).dataSync()[0]!)).toBe(true);
    expect(student.countParams()).toBe(params);
  });
});

describe('feature weights', () => {
  const teacher = mlp(1, [16, 12, 3], ['t1', 't2', 't_out']);
  const student = mlp(2, [8, 8, 3], ['s1', 's2', 's_out']);
  test('featureWeightsAt evaluates schedules and checks what they return', async () => {
    const { featureWeightsAt } = await import('../../src/distill/features.js');
    const schedule = ({ epoch }: { epoch: number }) => 1 / (1 + epoch);
    expect(buildFeatureDistillation({ teacher, student, features: [{ teacherLayer: 't1', studentLayer: 's1', weight: schedule }] }).features[0]!.weight).toBe(schedule);
    const resolved = [{ teacherLayer: 't1', studentLayer: 's1', loss: 'mse' as const, weight: schedule, projection: null }, { teacherLayer: 't1', studentLayer: 's1', loss: 'mse' as const, weight: 2, projection: null }];
    expect(featureWeightsAt(resolved, { epoch: 3, step: 30, epochs: 5, stepsPerEpoch: 10 })).toEqual([0.25, 2]);
    const nan = [{ ...resolved[0]!, weight: () => Number.NaN }];
    const r = codeOf(() => featureWeightsAt(nan, { epoch: 1, step: 12, epochs: 5, stepsPerEpoch: 10 }));
    expect(r.code).toBe('INVALID_OPTION');
    expect(r.message).toMatch(/epoch 1, step 12/);
  });
});
