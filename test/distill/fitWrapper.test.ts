import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  Distiller,
  computeTeacherLogits,
  withDistillationHead,
  withSeed,
  type DistillationKind,
} from '../../src/index.js';
import { DISTILLATION_HEAD_OUTPUTS, compileForDistillation, distillationFitLosses } from '../../src/distill/index.js';
import { mlp, sameValues, toyData, weightValues } from './helpers.js';

/** A 6-8-3 student, optionally with an L2 penalty (fit and the Distiller both add it). */
function student(seed: number, l2 = 0): tfl.LayersModel {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({
          units: 8,
          activation: 'relu',
          inputShape: [6],
          ...(l2 > 0 ? { kernelRegularizer: tfl.regularizers.l2({ l2 }) } : {}),
        }),
        tfl.layers.dense({ units: 3 }),
      ],
    }),
  );
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let max = 0;
  a.forEach((w, i) => w.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i]![j]!)))));
  return max;
}

interface Case {
  temperature: number;
  alpha: number;
  kind?: DistillationKind;
  l2?: number;
}

/**
 * The same student (same seed, so the same initial weights), the same data in
 * the same batches (60 rows in batches of 16: the last one has 12), the same
 * Adam: once through the Distiller, once through wrapped.fit.
 */
async function trainBoth({ temperature, alpha, kind, l2 = 0 }: Case) {
  const { x, y } = toyData(60);
  const teacher = mlp(6, 16, 3, 1);
  const viaDistiller = student(2, l2);
  const viaFit = student(2, l2);
  expect(sameValues(weightValues(viaDistiller), weightValues(viaFit))).toBe(true);
  const epochs = 3;
  const batchSize = 16;

  const distiller = new Distiller({ teacher, student: viaDistiller });
  distiller.compile({ optimizer: tf.train.adam(1e-2), temperature, alpha, kind });
  const distilled = await distiller.fit(x, y, { epochs, batchSize, shuffle: false });

  const teacherLogits = await computeTeacherLogits(teacher, x, { batchSize });
  const labels = tf.oneHot(y, 3);
  const wrapped = withDistillationHead(viaFit, {
    optimizer: tf.train.adam(1e-2),
    temperature,
    alpha,
    kind,
    metrics: { hard: 'acc' },
  });
  const fitted = await wrapped.fit(x, [labels, teacherLogits], { epochs, batchSize, shuffle: false });

  const result = {
    distiller: distilled.history as Record<string, number[]>,
    fit: fitted.history as Record<string, number[]>,
    weightGap: maxAbsDiff(weightValues(viaDistiller), weightValues(viaFit)),
    movedFrom: weightValues(student(2, l2)),
    trained: weightValues(viaFit),
  };
  tf.dispose([x, y, teacherLogits, labels]);
  return result;
}

function expectClose(actual: number[], expected: number[], relative = 1e-6): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(relative * Math.max(1, Math.abs(expected[i]!))));
}

describe('withDistillationHead + model.fit', () => {
  it.each<Case>([
    { temperature: 4, alpha: 0.3 },
    { temperature: 2, alpha: 0.5, l2: 1e-3 },
    { temperature: 1, alpha: 0 },
    { temperature: 4, alpha: 1 },
    { temperature: 3, alpha: 0.2, kind: 'mse' },
  ])('gives the Distiller’s losses and weights (%o)', async (setting) => {
    const { distiller, fit, weightGap, movedFrom, trained } = await trainBoth(setting);
    const { alpha } = setting;
    // Both minimize alpha·CE + (1 − alpha)·distillation (+ the L2 penalty), per batch, averaged over
    // the epoch by batch size; fit logs each output's term already weighted.
    expectClose(fit.loss!, distiller.loss!);
    expectClose(fit.hard_loss!, distiller.student_loss!.map((v) => alpha * v));
    expectClose(fit.soft_loss!, distiller.distillation_loss!.map((v) => (1 - alpha) * v));
    expectClose(fit.hard_acc!, distiller.acc!);
    // Same ops in the same order on the cpu backend: the final weights are bit-identical. (The
    // epoch means differ by ~1e-8: tfjs and the Distiller accumulate batch logs differently.)
    expect(weightGap).toBe(0);
    // The comparison means something: training moved the weights far more than the gap.
    expect(maxAbsDiff(trained, movedFrom)).toBeGreaterThan(1e-2);
  });

  it('trains the student in place; the unwrapped student saves and loads alone', async () => {
    const { x, y } = toyData(32);
    const teacher = mlp(6, 16, 3, 1);
    const model = student(5);
    const layersBefore = model.layers.length;
    const wrapped = withDistillationHead(model, { optimizer: 'adam', temperature: 2, alpha: 0.5 });
    expect(wrapped.outputNames).toEqual([...DISTILLATION_HEAD_OUTPUTS]);
    // The student's weights, the same variables, are the only trainable ones.
    expect(wrapped.trainableWeights.map((w) => w.read().id)).toEqual(model.trainableWeights.map((w) => w.read().id));
    expect(wrapped.countParams()).toBe(model.countParams());

    const before = weightValues(model);
    const teacherLogits = await computeTeacherLogits(teacher, x);
    const labels = tf.oneHot(y, 3);
    await wrapped.fit(x, [labels, teacherLogits], { epochs: 2, batchSize: 8 });
    expect(maxAbsDiff(weightValues(model), before)).toBeGreaterThan(1e-3);
    expect(model.layers).toHaveLength(layersBefore);
    expect(model.outputs).toHaveLength(1);

    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    expect(JSON.stringify(saved!.modelTopology)).not.toContain('LogitsOutput');
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const [ours, theirs] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(await theirs.data())).toEqual(Array.from(await ours.data()));
    tf.dispose([x, y, teacherLogits, labels, ours, theirs]);
    loaded.dispose();
  });

  it('scores validation data as Distiller.evaluate does: val_ logs and evaluate line up despite tfjs#5941', async () => {
    const { x, y } = toyData(40);
    const teacher = mlp(6, 16, 3, 1);
    const model = student(4);
    const settings = { temperature: 3, alpha: 0.4 };
    const wrapped = withDistillationHead(model, { optimizer: tf.train.adam(1e-2), ...settings, metrics: { hard: 'acc' } });
    const teacherLogits = await computeTeacherLogits(teacher, x);
    const labels = tf.oneHot(y, 3);
    const history = await wrapped.fit(x, [labels, teacherLogits], {
      epochs: 2,
      batchSize: 8,
      validationData: [x, [labels, teacherLogits]],
    });
    // The Distiller scores the same student (shared weights) on the same data.
    const distiller = new Distiller({ teacher, student: model });
    distiller.compile({ optimizer: 'sgd', ...settings });
    const reference = await distiller.evaluate(x, y, { batchSize: 8 });
    const last = (key: string) => (history.history[key] as number[]).at(-1)!;
    expect(last('val_loss')).toBeCloseTo(reference.loss!, 5);
    expect(last('val_hard_loss')).toBeCloseTo(settings.alpha * reference.student_loss!, 5);
    expect(last('val_soft_loss')).toBeCloseTo((1 - settings.alpha) * reference.distillation_loss!, 5);
    expect(last('val_hard_acc')).toBeCloseTo(reference.acc!, 6);

    const scores = wrapped.evaluate(x, [labels, teacherLogits], { batchSize: 8 }) as tf.Scalar[];
    expect(wrapped.metricsNames).toEqual(['loss', 'hard_loss', 'soft_loss', 'hard_acc']);
    expect(scores).toHaveLength(4);
    expect(scores[0]!.dataSync()[0]).toBeCloseTo(reference.loss!, 5);
    expect(scores[3]!.dataSync()[0]).toBeCloseTo(reference.acc!, 6);
    tf.dispose([x, y, teacherLogits, labels, ...scores]);
  });

  it('rejects class-id labels (tfjs checks each target against its output width)', async () => {
    const { x, y } = toyData(16);
    const wrapped = withDistillationHead(student(1), { optimizer: 'sgd', temperature: 2, alpha: 0.5 });
    const teacherLogits = tf.zeros([16, 3]);
    await expect(wrapped.fit(x, [y, teacherLogits], { epochs: 1 })).rejects.toThrow(/target/i);
    tf.dispose([x, y, teacherLogits]);
  });

  it.each([
    ['kl', {}],
    ['jsd with beta', { kind: 'jsd', beta: 0.3 }],
    ['kl with topK', { kind: 'kl', topK: 2 }],
    ['tvd', { kind: 'tvd' }],
  ] as const)('leaves no tensors behind over several epochs, %s (baseline after the first, which creates Adam slots)', async (_name, loss) => {
    const { x, y } = toyData(40);
    const teacher = mlp(6, 16, 3, 1);
    const wrapped = withDistillationHead(student(3), { optimizer: tf.train.adam(1e-2), temperature: 4, alpha: 0.1, ...loss });
    const labels = tf.oneHot(y, 3);
    const beforeLogits = tf.memory().numTensors;
    const teacherLogits = await computeTeacherLogits(teacher, x, { batchSize: 16 });
    expect(tf.memory().numTensors).toBe(beforeLogits + 1);

    await wrapped.fit(x, [labels, teacherLogits], { epochs: 1, batchSize: 8 });
    const baseline = tf.memory().numTensors;
    await wrapped.fit(x, [labels, teacherLogits], { epochs: 4, batchSize: 8, validationData: [x, [labels, teacherLogits]] });
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, y, labels, teacherLogits]);
  });
});

describe('computeTeacherLogits', () => {
  it('returns the teacher’s logits in batches, log-probabilities for a softmax teacher', async () => {
    const { x } = toyData(23);
    const teacher = mlp(6, 16, 3, 1);
    const direct = teacher.predict(x) as tf.Tensor;
    const batched = await computeTeacherLogits(teacher, x, { batchSize: 5 });
    expect(batched.shape).toEqual([23, 3]);
    const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(batched, direct))).dataSync()[0]!);
    expect(gap).toBeLessThan(1e-6);

    const softmaxTeacher = withSeed(1, () =>
      tfl.sequential({ layers: [tfl.layers.dense({ units: 3, activation: 'softmax', inputShape: [6] })] }),
    );
    const probs = softmaxTeacher.predict(x) as tf.Tensor;
    const logProbs = await computeTeacherLogits(softmaxTeacher, x, { batchSize: 10 });
    const probGap = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.exp(logProbs), probs))).dataSync()[0]!);
    expect(probGap).toBeLessThan(1e-6);
    await expect(computeTeacherLogits(softmaxTeacher, x, { kind: 'mse' })).rejects.toMatchObject({
      code: 'PROBS_TEACHER_WITH_MSE',
    });
    tf.dispose([x, direct, batched, probs, logProbs]);
  });

  it('takes a pass-through teacher (one that returns its input batch), without leaking', async () => {
    const logits = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const before = tf.memory().numTensors;
    const passThrough = (input: unknown) => input as tf.Tensor;
    for (const batchSize of [2, 8]) {
      const out = await computeTeacherLogits(passThrough, logits, { batchSize });
      expect(out.arraySync()).toEqual([[1, 2], [3, 4], [5, 6]]);
      out.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });

  it('throws typed errors without leaking tensors', async () => {
    const { x } = toyData(12);
    const before = tf.memory().numTensors;
    const nanTeacher = (input: unknown) => tf.fill([(input as tf.Tensor).shape[0]!, 3], Number.NaN);
    await expect(computeTeacherLogits(nanTeacher, x, { batchSize: 5 })).rejects.toMatchObject({
      name: 'KdDataError',
      code: 'NON_FINITE_TEACHER_OUTPUT',
    });
    let call = 0;
    const shifty = (input: unknown) => tf.zeros([(input as tf.Tensor).shape[0]!, call++ === 0 ? 3 : 4]);
    await expect(computeTeacherLogits(shifty, x, { batchSize: 5 })).rejects.toMatchObject({ code: 'CLASS_COUNT_MISMATCH' });
    const flat = (input: unknown) => tf.zeros([(input as tf.Tensor).shape[0]!]);
    await expect(computeTeacherLogits(flat, x)).rejects.toMatchObject({ code: 'RANK_MISMATCH' });
    const short = () => tf.zeros([2, 3]);
    await expect(computeTeacherLogits(short, x, { batchSize: 5 })).rejects.toMatchObject({ code: 'BATCH_SIZE_MISMATCH' });
    await expect(computeTeacherLogits(nanTeacher, x, { temperature: 0 })).rejects.toMatchObject({ code: 'INVALID_TEMPERATURE' });
    await expect(computeTeacherLogits(nanTeacher, x, { batchSize: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('wrapping and compiling errors', () => {
  it('rejects students the Distiller would reject, and bad loss settings', () => {
    const softmaxStudent = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, activation: 'softmax', inputShape: [6] })] });
    expect(() => withDistillationHead(softmaxStudent)).toThrow(expect.objectContaining({ code: 'SOFTMAX_STUDENT' }));
    const unbuilt = tfl.sequential();
    expect(() => withDistillationHead(unbuilt)).toThrow(expect.objectContaining({ code: 'INVALID_STUDENT' }));
    const input = tfl.input({ shape: [6] });
    const twoOutputs = tfl.model({
      inputs: input,
      outputs: [tfl.layers.dense({ units: 3 }).apply(input), tfl.layers.dense({ units: 3 }).apply(input)] as tfl.SymbolicTensor[],
    });
    expect(() => withDistillationHead(twoOutputs)).toThrow(expect.objectContaining({ code: 'INVALID_STUDENT' }));
    const named = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [6], name: 'soft' })] });
    expect(() => withDistillationHead(named)).toThrow(expect.objectContaining({ code: 'INVALID_STUDENT' }));

    const wrapped = withDistillationHead(student(1));
    expect(() => compileForDistillation(wrapped, { optimizer: 'adam', temperature: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_TEMPERATURE' }),
    );
    expect(() => compileForDistillation(wrapped, { optimizer: 'adam', temperature: 2, alpha: 1.5 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ALPHA' }),
    );
    expect(() => distillationFitLosses({ temperature: 2, kind: 'l1' as DistillationKind })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    expect(() => compileForDistillation(student(1), { optimizer: 'adam', temperature: 2 })).toThrow(
      expect.objectContaining({ code: 'INVALID_STUDENT' }),
    );
  });
});
