import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { Distiller, createTrainStep, distillationLoss, type DistillationKind } from '../../src/index.js';
import { topKLogits, type TopKLogits } from '../../src/losses/index.js';
import { distillationFitLosses } from '../../src/distill/index.js';
import { mlp, toyData } from './helpers.js';

const N = 64;

/** `tf.tidy` for a function returning top-k outputs (an interface tidy's container type does not name). */
function tidyTopK(f: () => TopKLogits): TopKLogits {
  return tf.tidy(() => ({ ...f() }) as unknown as tf.TensorContainer) as unknown as TopKLogits;
}

/** The loss of the first training step (full batch, no shuffling), read from onBatchEnd. */
async function firstStepLoss(distiller: Distiller, x: tf.Tensor, y: tf.Tensor | undefined, extra: Record<string, unknown> = {}): Promise<Record<string, number>> {
  let logs: Record<string, number> | undefined;
  await distiller.fit(x, y, {
    epochs: 1,
    batchSize: x.shape[0],
    shuffle: false,
    callbacks: { onBatchEnd: async (_batch: number, l?: Record<string, number>) => void (logs ??= { ...l! }) },
    ...extra,
  });
  return logs!;
}

function relClose(actual: number, expected: number, rel = 1e-5): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(expected)));
}

function expectedLoss(student: tfl.LayersModel, teacher: tf.Tensor | TopKLogits, x: tf.Tensor, options: Parameters<typeof distillationLoss>[2]): number {
  return tf.tidy(() => distillationLoss(student.predict(x) as tf.Tensor, teacher, options).dataSync()[0]!);
}

const KINDS: { kind: DistillationKind; beta?: number }[] = [
  { kind: 'kl' },
  { kind: 'reverse-kl' },
  { kind: 'jsd', beta: 0.3 },
  { kind: 'tvd' },
  { kind: 'mse' },
];

describe('Distiller: the divergence family', () => {
  for (const { kind, beta } of KINDS) {
    it(`kind '${kind}': the first step's loss equals distillationLoss on the same tensors, and training lowers it`, async () => {
      const { x, y } = toyData(N);
      const teacher = mlp(6, 16, 3, 1);
      const student = mlp(6, 8, 3, 2);
      const options = { temperature: 2, alpha: 0.2, kind, ...(beta === undefined ? {} : { beta }) };
      const teacherLogits = teacher.predict(x) as tf.Tensor;
      const expected = expectedLoss(student, teacherLogits, x, { ...options, labels: y });
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: tf.train.adam(0.03), ...options });
      const evaluated = await distiller.evaluate(x, y, { batchSize: N });
      relClose(evaluated.loss!, expected);
      const first = await firstStepLoss(distiller, x, y);
      relClose(first.loss!, expected);
      if (kind === 'jsd') expect(first.beta).toBe(0.3);
      const history = await distiller.fit(x, y, { epochs: 25, batchSize: N });
      const losses = history.history.loss as number[];
      expect(losses[losses.length - 1]!).toBeLessThan(0.7 * first.loss!);
      tf.dispose([x, y, teacherLogits]);
    });
  }

  it("a probability teacher (outputs: 'probs') works with each divergence: the loss of its logits", async () => {
    const { x, y } = toyData(N);
    const logitsTeacher = mlp(6, 16, 3, 1);
    const teacherLogits = logitsTeacher.predict(x) as tf.Tensor;
    for (const kind of ['kl', 'reverse-kl', 'jsd', 'tvd'] as const) {
      const student = mlp(6, 8, 3, 2);
      const probsTeacher = (t: unknown) => tf.tidy(() => tf.softmax(logitsTeacher.predict(t as tf.Tensor) as tf.Tensor));
      const distiller = new Distiller({ teacher: probsTeacher, student, teacherOutputs: 'probs' });
      distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 3, kind });
      const expected = expectedLoss(student, teacherLogits, x, { temperature: 3, kind });
      const first = await firstStepLoss(distiller, x, undefined);
      relClose(first.loss!, expected, 1e-4);
      student.dispose();
    }
    tf.dispose([x, y, teacherLogits]);
  });

  it('compile refuses a bad beta or topK with typed errors', () => {
    const distiller = new Distiller({ teacher: mlp(6, 16, 3, 1), student: mlp(6, 8, 3, 2) });
    const compile = (args: Record<string, unknown>) => () => distiller.compile({ optimizer: 'adam', temperature: 2, ...args });
    expect(compile({ kind: 'jsd', beta: 1.5 })).toThrow(expect.objectContaining({ code: 'INVALID_BETA' }));
    expect(compile({ kind: 'jsd', beta: Number.NaN })).toThrow(expect.objectContaining({ code: 'INVALID_BETA' }));
    expect(compile({ kind: 'kl', beta: 0.3 })).toThrow(expect.objectContaining({ code: 'INVALID_BETA' }));
    expect(compile({ kind: 'jsd', beta: 0 })).toThrow(/kind: 'kl'/);
    expect(compile({ kind: 'jsd', beta: 1 })).toThrow(/kind: 'reverse-kl'/);
    expect(compile({ kind: 'jsd', topK: 2 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    expect(compile({ topK: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    expect(compile({ topK: 1.5 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    // The student has 3 classes, known at compile.
    expect(compile({ topK: 3 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    expect(compile({ topK: 2 })).not.toThrow();
  });
});

describe('Distiller: top-k teacher outputs', () => {
  it('a teacher returning { ids, logits } trains like compile({ topK }) with the full teacher; agreement uses its best id', async () => {
    const { x, y } = toyData(N);
    const teacher = mlp(6, 16, 3, 1);
    const fullLogits = teacher.predict(x) as tf.Tensor;
    const top = topKLogits(fullLogits, 2);
    const expected = expectedLoss(mlp(6, 8, 3, 2), top, x, { temperature: 2, alpha: 0.3, labels: y });

    const topKTeacher = (t: unknown) => tidyTopK(() => topKLogits(teacher.predict(t as tf.Tensor) as tf.Tensor, 2));
    // The same outputs with each row's ids in reverse order: nothing depends on their order.
    const reversed = (t: unknown) => tidyTopK(() => {
      const { ids, logits } = topKLogits(teacher.predict(t as tf.Tensor) as tf.Tensor, 2);
      return { ids: tf.reverse(ids, -1), logits: tf.reverse(logits, -1) };
    });
    const runs: Record<string, number>[] = [];
    for (const [source, topK] of [[topKTeacher, undefined], [reversed, undefined], [teacher, 2]] as const) {
      const student = mlp(6, 8, 3, 2);
      const distiller = new Distiller({ teacher: source as never, student });
      distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.3, ...(topK === undefined ? {} : { topK }) });
      runs.push(await firstStepLoss(distiller, x, y));
      student.dispose();
    }
    const agreement = tf.tidy(() =>
      tf.mean(tf.cast(tf.equal(tf.argMax(mlp(6, 8, 3, 2).predict(x) as tf.Tensor, -1), tf.argMax(fullLogits, -1)), 'float32')).dataSync()[0]!,
    );
    for (const logs of runs) {
      relClose(logs.loss!, expected);
      expect(logs.agreement).toBeCloseTo(agreement, 6);
    }
    tf.dispose([x, y, fullLogits, top.ids, top.logits]);
  });

  it('fitDataset and evaluate take top-k outputs; another kind than kl is INVALID_TOP_K; nothing leaks', async () => {
    const { x, y } = toyData(N);
    const teacher = mlp(6, 16, 3, 1);
    const student = mlp(6, 8, 3, 2);
    const topKTeacher = { predict: (t: unknown) => tidyTopK(() => topKLogits(teacher.predict(t as tf.Tensor) as tf.Tensor, 2)) };
    const distiller = new Distiller({ teacher: topKTeacher, student });
    distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2 });
    const dataset = { iterator: async () => {
      let i = 0;
      return { next: async () => (i < 4 ? { done: false, value: { xs: tf.slice(x, [16 * i++], [16]) } } : { done: true, value: undefined }) as IteratorResult<{ xs: tf.Tensor }> };
    } };
    await distiller.fitDataset(dataset, { epochs: 1 });
    const baseline = tf.memory().numTensors;
    const history = await distiller.fitDataset(dataset, { epochs: 5 });
    const losses = history.history.loss as number[];
    expect(losses[4]!).toBeLessThan(losses[0]!);
    const logs = await distiller.evaluate(x, y);
    expect(Object.keys(logs)).toEqual(expect.arrayContaining(['loss', 'distillation_loss', 'agreement', 'acc', 'student_loss']));
    expect(tf.memory().numTensors).toBe(baseline);

    distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, kind: 'jsd' });
    const baseline2 = tf.memory().numTensors;
    await expect(distiller.fit(x, y)).rejects.toMatchObject({ code: 'INVALID_TOP_K' });
    expect(tf.memory().numTensors).toBe(baseline2);
    tf.dispose([x, y]);
  });
});

describe('createTrainStep: new kinds, top-k outputs and masks in a custom loop', () => {
  it('each kind, a top-k batch and a masked token-level batch leave no tensors behind over many steps', async () => {
    const { x, y } = toyData(32);
    const teacher = mlp(6, 16, 3, 1);
    const teacherLogits = teacher.predict(x) as tf.Tensor;
    const top = topKLogits(teacherLogits, 2);
    for (const { kind, beta } of KINDS) {
      const student = mlp(6, 8, 3, 2);
      const step = createTrainStep({ student, optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.3, kind, ...(beta === undefined ? {} : { beta }) });
      await step({ inputs: x, teacherLogits, labels: y });
      const baseline = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) await step({ inputs: x, teacherLogits, labels: y });
      await step.evaluate({ inputs: x, teacherLogits, labels: y });
      expect(tf.memory().numTensors).toBe(baseline);
      if (kind === 'kl') {
        for (let i = 0; i < 20; i++) await step({ inputs: x, teacherLogits: top, labels: y });
        await step.evaluate({ inputs: x, teacherLogits: top, labels: y });
        expect(tf.memory().numTensors).toBe(baseline);
      }
      student.dispose();
    }
    // Token-level: [batch, time, classes] through a dense layer applied per time step.
    const tokenStudent = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [5, 6] })] });
    const tokens = tf.randomNormal([4, 5, 6]);
    const tokenTeacher = tf.randomNormal([4, 5, 3]);
    const mask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]]);
    const tokenTop = topKLogits(tokenTeacher, 2);
    const step = createTrainStep({ student: tokenStudent, optimizer: tf.train.adam(0.01), temperature: 2, kind: 'jsd' });
    await step({ inputs: tokens, teacherLogits: tokenTeacher, mask });
    const baseline = tf.memory().numTensors;
    const logs = await step.evaluate({ inputs: tokens, teacherLogits: tokenTeacher, mask });
    const expected = tf.tidy(() => distillationLoss(tokenStudent.predict(tokens) as tf.Tensor, tokenTeacher, { temperature: 2, kind: 'jsd', mask }).dataSync()[0]!);
    relClose(logs.loss, expected);
    for (let i = 0; i < 10; i++) await step({ inputs: tokens, teacherLogits: tokenTeacher, mask });
    expect(tf.memory().numTensors).toBe(baseline);
    const klStep = createTrainStep({ student: tokenStudent, optimizer: tf.train.adam(0.01), temperature: 2 });
    await klStep({ inputs: tokens, teacherLogits: tokenTop, mask });
    const baseline2 = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) await klStep({ inputs: tokens, teacherLogits: tokenTop, mask });
    expect(tf.memory().numTensors).toBe(baseline2);
    // Token-level teacher outputs for a [batch, classes] student: a typed error before the tape, nothing leaked.
    const flat = createTrainStep({ student: mlp(6, 8, 3, 2), optimizer: tf.train.adam(0.01), temperature: 2 });
    const wrongRank = tf.randomNormal([32, 5, 3]);
    const baseline3 = tf.memory().numTensors;
    await expect(flat({ inputs: x, teacherLogits: wrongRank })).rejects.toMatchObject({ code: 'RANK_MISMATCH' });
    expect(tf.memory().numTensors).toBe(baseline3);
    tf.dispose([x, y, teacherLogits, top.ids, top.logits, tokens, tokenTeacher, mask, tokenTop.ids, tokenTop.logits, wrongRank]);
  });
});

describe('distillationFitLosses (the tfjs fit route): kinds, beta and topK', () => {
  it('the soft loss equals distillationLoss for jsd with beta and for kl with topK; bad settings are typed errors', () => {
    const student = tf.randomNormal([8, 5]);
    const teacher = tf.randomNormal([8, 5]);
    for (const options of [{ kind: 'jsd', beta: 0.3 }, { kind: 'kl', topK: 2 }, { kind: 'tvd' }, { kind: 'reverse-kl' }] as const) {
      const [, soft] = distillationFitLosses({ temperature: 2, alpha: 0.25, ...options });
      const got = tf.tidy(() => soft(teacher, student).dataSync()[0]!);
      const want = tf.tidy(() => distillationLoss(student, teacher, { temperature: 2, ...options }).dataSync()[0]! * 0.75);
      relClose(got, want);
    }
    expect(() => distillationFitLosses({ temperature: 2, kind: 'kl', beta: 0.3 })).toThrow(expect.objectContaining({ code: 'INVALID_BETA' }));
    expect(() => distillationFitLosses({ temperature: 2, kind: 'tvd', topK: 2 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    tf.dispose([student, teacher]);
  });
});
