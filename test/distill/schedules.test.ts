import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Distiller,
  EnsembleTeacher,
  TeacherCache,
  cachedTeacher,
  createTrainStep,
  distillationLoss,
  withSeed,
  type Teacher,
} from '../../src/index.js';
import {
  cosineSchedule,
  describeSchedule,
  linearSchedule,
  stepSchedule,
  warmup,
  type ParallelTrainer,
  type StepContext,
} from '../../src/distill/index.js';
import { clipByGlobalNorm } from '../../src/distill/stepSettings.js';
import { combineLogs } from '../../src/node/workers/workerRun.js';
import { mlp, sameValues, toyData, weightValues } from './helpers.js';

const at = (step: number, epoch = 0, stepsPerEpoch: number | null = 100, epochs = 10): StepContext => ({ epoch, step, epochs, stepsPerEpoch });

describe('ready-made schedules', () => {
  it('linearSchedule: from → to over steps or epochs, then to', () => {
    const byEpoch = linearSchedule({ from: 8, to: 2, epochs: 10 });
    expect([0, 5, 10, 12].map((e) => byEpoch(at(e * 100, e)))).toEqual([8, 5, 2, 2]);
    const bySteps = linearSchedule({ from: 0, to: 1, steps: 4 });
    expect([0, 1, 2, 3, 4, 9].map((s) => bySteps(at(s)))).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    expect(byEpoch.spec).toEqual({ type: 'linear', from: 8, to: 2, epochs: 10 });
  });

  it('cosineSchedule: a half cosine from → to', () => {
    const lr = cosineSchedule({ from: 1e-3, to: 0, steps: 1000 });
    expect(lr(at(0))).toBe(1e-3);
    expect(lr(at(250))).toBeCloseTo((1e-3 * (1 + Math.SQRT1_2)) / 2, 15);
    expect(lr(at(500))).toBeCloseTo(5e-4, 15);
    expect(lr(at(1000))).toBe(0);
    expect(lr(at(5000))).toBe(0);
    const rising = cosineSchedule({ from: 1, to: 3, epochs: 2 });
    expect([0, 1, 2].map((e) => rising(at(0, e)))).toEqual([1, 2, 3].map((v, i) => (i === 1 ? expect.closeTo(v, 12) : v)));
  });

  it('stepSchedule: from · factor^floor(position / period)', () => {
    const lr = stepSchedule({ from: 0.1, factor: 0.5, epochs: 3 });
    expect([0, 2, 3, 5, 6, 7].map((e) => lr(at(e * 10, e)))).toEqual([0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    const bySteps = stepSchedule({ from: 2, factor: 10, steps: 2 });
    expect([0, 1, 2, 4].map((s) => bySteps(at(s)))).toEqual([2, 2, 20, 200]);
  });

  it('warmup: a ramp, then what follows counted from the end of the warmup', () => {
    const lr = warmup({ to: 1e-3, steps: 100, then: cosineSchedule({ from: 1e-3, to: 0, steps: 900 }) });
    expect(lr(at(0))).toBe(0);
    expect(lr(at(50))).toBe(5e-4);
    expect(lr(at(100))).toBe(1e-3);
    expect(lr(at(550))).toBeCloseTo(5e-4, 15);
    expect(lr(at(1000))).toBe(0);
    expect(warmup({ from: 1, to: 3, steps: 2 })(at(7))).toBe(3);
    // In epochs: the follower sees epoch − n and step − n · stepsPerEpoch.
    const seen: StepContext[] = [];
    const follower = warmup({ to: 1, epochs: 2, then: (c) => (seen.push(c), 7) });
    expect(follower(at(10, 1, 8))).toBe(0.5);
    expect(follower(at(20, 2, 8))).toBe(7);
    expect(seen).toEqual([at(4, 0, 8)]);
    expect(lr.spec).toEqual({ type: 'warmup', from: 0, to: 1e-3, steps: 100, then: { type: 'cosine', from: 1e-3, to: 0, steps: 900 } });
  });

  it('describeSchedule: numbers, specs, and any other function as "function"', () => {
    expect(describeSchedule(4)).toBe(4);
    expect(describeSchedule(stepSchedule({ from: 1, factor: 0.1, steps: 10 }))).toEqual({ type: 'step', from: 1, factor: 0.1, steps: 10 });
    expect(describeSchedule(() => 1)).toBe('function');
    expect(describeSchedule(warmup({ to: 2, steps: 3, then: () => 2 }))).toMatchObject({ then: 'function' });
  });

  it('bad parameters are INVALID_OPTION', () => {
    const bad = [
      () => linearSchedule({ from: 1, to: 2 }),
      () => linearSchedule({ from: 1, to: 2, steps: 3, epochs: 1 }),
      () => cosineSchedule({ from: Number.NaN, to: 2, steps: 3 }),
      () => stepSchedule({ from: 1, factor: 0, steps: 3 }),
      () => warmup({ to: 1, steps: 0 }),
      () => warmup({ to: 1, steps: 2.5 }),
    ];
    for (const make of bad) expect(make).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});

describe('schedules in the Distiller', () => {
  let x: tf.Tensor2D;
  let y: tf.Tensor1D;
  beforeAll(() => {
    ({ x, y } = toyData(12) as { x: tf.Tensor2D; y: tf.Tensor1D });
  });
  afterAll(() => tf.dispose([x, y]));

  it('are evaluated once per step, at the step counted from the run start (fit and fitDataset)', async () => {
    const seen: StepContext[] = [];
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: (c) => (seen.push(c), 2) });
    await distiller.fit(x, y, { epochs: 2, batchSize: 5, validationData: [x, y] });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5].map((s) => ({ epoch: Math.floor(s / 3), step: s, epochs: 2, stepsPerEpoch: 3 })));

    seen.length = 0;
    const dataset = { iterator: async () => batches(x, y, 4) };
    await distiller.fitDataset(dataset, { epochs: 2 });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5].map((s) => ({ epoch: Math.floor(s / 3), step: s, epochs: 2, stepsPerEpoch: null })));
    seen.length = 0;
    // A resumed run: steps counted from epoch 0.
    await distiller.fitDataset(dataset, { epochs: 3, initialEpoch: 1, batchesPerEpoch: 1 });
    expect(seen.map((c) => [c.epoch, c.step, c.stepsPerEpoch])).toEqual([[1, 1, 1], [2, 2, 1]]);
  });

  it('log the last step of each epoch under temperature, alpha, learningRate; evaluate reports the same', async () => {
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({
      optimizer: 'sgd',
      temperature: ({ step }) => 10 - step,
      alpha: ({ step }) => step / 10,
      learningRate: ({ step }) => 0.01 * (step + 1),
    });
    const history = await distiller.fit(x, y, { epochs: 3, batchSize: 4, validationData: [x, y] });
    expect(history.history.temperature).toEqual([8, 5, 2]);
    expect(history.history.alpha).toEqual([0.2, 0.5, 0.8]);
    expect((history.history.learningRate as number[]).map((v) => +v.toFixed(10))).toEqual([0.03, 0.06, 0.09]);
    expect(Object.keys(history.history).filter((k) => k.startsWith('val_')).sort()).toEqual(['val_acc', 'val_agreement', 'val_distillation_loss', 'val_loss', 'val_student_loss']);
    const logs = await distiller.evaluate(x, y);
    expect(logs).toMatchObject({ temperature: 2, alpha: 0.8 });
    expect(logs.learningRate).toBeCloseTo(0.09, 10);
  });

  it('an invalid scheduled value is the constant\'s typed error, naming epoch and step, before the update', async () => {
    const student = mlp(6, 4, 3, 2);
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student });
    distiller.compile({ optimizer: tf.train.sgd(0.1), temperature: ({ step }) => (step === 3 ? Number.NaN : 2) });
    let afterStep2: Float32Array[] = [];
    const failing = distiller.fit(x, y, {
      epochs: 2,
      batchSize: 4,
      callbacks: { onBatchEnd: async () => void (afterStep2 = weightValues(student)) },
    });
    await expect(failing).rejects.toMatchObject({ code: 'INVALID_TEMPERATURE', message: expect.stringContaining('epoch 1, step 3') });
    expect(sameValues(weightValues(student), afterStep2)).toBe(true);

    const before = weightValues(student);
    distiller.compile({ optimizer: 'sgd', temperature: 2, alpha: () => 1.5 });
    await expect(distiller.fit(x, y)).rejects.toMatchObject({ code: 'INVALID_ALPHA', message: expect.stringContaining('epoch 0, step 0') });
    distiller.compile({ optimizer: 'sgd', temperature: 2, learningRate: () => -1 });
    await expect(distiller.fit(x, y)).rejects.toMatchObject({ code: 'INVALID_LEARNING_RATE', message: expect.stringContaining('epoch 0, step 0') });
    distiller.compile({ optimizer: 'sgd', temperature: 2, alpha: ({ step }) => (step === 0 ? 0 : 0.5) });
    await expect(distiller.fit(x, undefined, { batchSize: 6 })).rejects.toMatchObject({ code: 'ALPHA_WITHOUT_LABELS' });
    expect(sameValues(weightValues(student), before)).toBe(false); // step 0 trained, step 1 refused
  });

  it('a createTrainStep with a schedule needs the step\'s place in the run', async () => {
    const student = mlp(6, 4, 3, 2);
    const step = createTrainStep({ student, optimizer: tf.train.sgd(0.1), temperature: () => 2 });
    const teacherLogits = tf.randomNormal([12, 3]);
    await expect(step({ inputs: x, teacherLogits })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    const logs = await step({ inputs: x, teacherLogits, at: at(0) });
    expect(logs.temperature).toBe(2);
    teacherLogits.dispose();
  });

  it('the scheduled temperature reaches the teacher and the loss', async () => {
    const temperatures: number[] = [];
    const model = mlp(6, 8, 3, 1);
    const teacher: Teacher = { predict: (inputs, context) => (temperatures.push(context.temperature), model.predict(inputs as tf.Tensor) as tf.Tensor) };
    const student = mlp(6, 4, 3, 2);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: 'sgd', temperature: ({ step }) => 1 + step });
    const expected = tf.tidy(() => distillationLoss(student.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor, { temperature: 1 }).dataSync()[0]!);
    const history = await distiller.fit(x, undefined, { epochs: 3, batchSize: 12, shuffle: false });
    expect(temperatures).toEqual([1, 2, 3]);
    expect(history.history.loss![0]).toBeCloseTo(expected, 5);
  });
});

describe('beta', () => {
  it("a schedule with kind 'jsd' is evaluated per step and logged; a bad value is INVALID_BETA naming the step", async () => {
    const student = mlp(6, 4, 3, 2);
    const x = tf.randomNormal([8, 6]);
    const teacherLogits = tf.randomNormal([8, 3]);
    const step = createTrainStep({ student, optimizer: tf.train.sgd(0.1), temperature: 2, kind: 'jsd', beta: ({ step }) => (step === 0 ? 0.3 : 1) });
    const expected = tf.tidy(() => distillationLoss(student.apply(x) as tf.Tensor, teacherLogits, { temperature: 2, kind: 'jsd', beta: 0.3 }).dataSync()[0]!);
    const logs = await step({ inputs: x, teacherLogits, at: at(0) });
    expect(logs.beta).toBe(0.3);
    expect(logs.loss).toBeCloseTo(expected, 5);
    const before = weightValues(student);
    await expect(step({ inputs: x, teacherLogits, at: at(1) })).rejects.toMatchObject({
      code: 'INVALID_BETA',
      message: expect.stringContaining('epoch 0, step 1'),
    });
    expect(sameValues(weightValues(student), before)).toBe(true);
    expect(() => createTrainStep({ student, optimizer: tf.train.sgd(0.1), temperature: 2, beta: () => 0.5 })).toThrow(
      expect.objectContaining({ code: 'INVALID_BETA' }),
    );
    expect(Object.keys(await createTrainStep({ student, optimizer: tf.train.sgd(0.1), temperature: 2 })({ inputs: x, teacherLogits }))).not.toContain('beta');
    tf.dispose([x, teacherLogits]);
  });

  it("through the Distiller: compile({ kind: 'jsd', beta }) logs beta per epoch", async () => {
    const { x } = toyData(8);
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2, kind: 'jsd', beta: linearSchedule({ from: 0.2, to: 0.8, epochs: 2 }) });
    const history = await distiller.fit(x, undefined, { epochs: 3, batchSize: 4 });
    expect((history.history.beta as number[]).map((v) => +v.toFixed(12))).toEqual([0.2, 0.5, 0.8]);
    x.dispose();
  });
});

describe('learningRate', () => {
  it('a schedule sets the rate of every tfjs optimizer: same weights as the optimizer made at that rate', async () => {
    const makers: Record<string, (lr: number) => tf.Optimizer> = {
      sgd: (lr) => tf.train.sgd(lr),
      momentum: (lr) => tf.train.momentum(lr, 0.9),
      adam: (lr) => tf.train.adam(lr),
      adamax: (lr) => tf.train.adamax(lr),
      rmsprop: (lr) => tf.train.rmsprop(lr),
      adagrad: (lr) => tf.train.adagrad(lr),
      adadelta: (lr) => tf.train.adadelta(lr),
    };
    const x = tf.randomNormal([8, 6]);
    const teacherLogits = tf.randomNormal([8, 3]);
    for (const [name, make] of Object.entries(makers)) {
      const reference = mlp(6, 4, 3, 7);
      const scheduled = mlp(6, 4, 3, 7);
      const refStep = createTrainStep({ student: reference, optimizer: make(0.05), temperature: 2 });
      const schedStep = createTrainStep({ student: scheduled, optimizer: make(1), temperature: 2, learningRate: ({ step }) => [0.05, 0.05, 0][step]! });
      for (let s = 0; s < 2; s++) {
        await refStep({ inputs: x, teacherLogits });
        const logs = await schedStep({ inputs: x, teacherLogits, at: at(s) });
        expect(logs.learningRate, name).toBe(0.05);
      }
      expect(sameValues(weightValues(scheduled), weightValues(reference)), name).toBe(true);
      // Rate 0: nothing moves.
      const before = weightValues(scheduled);
      await schedStep({ inputs: x, teacherLogits, at: at(2) });
      expect(sameValues(weightValues(scheduled), before), name).toBe(true);
    }
    tf.dispose([x, teacherLogits]);
  });

  it("without a learningRate option, the logs follow the optimizer's own rate as it changes", async () => {
    const optimizer = tf.train.sgd(0.1);
    const step = createTrainStep({ student: mlp(6, 4, 3, 3), optimizer, temperature: 2 });
    const x = tf.randomNormal([4, 6]);
    const teacherLogits = tf.randomNormal([4, 3]);
    expect((await step({ inputs: x, teacherLogits })).learningRate).toBe(0.1);
    optimizer.setLearningRate(0.02);
    expect((await step({ inputs: x, teacherLogits })).learningRate).toBe(0.02);
    tf.dispose([x, teacherLogits]);
  });

  it('SGD: Δw = −lr · g with the scheduled lr', async () => {
    const student = mlp(6, 4, 3, 3);
    const x = tf.randomNormal([8, 6]);
    const teacherLogits = tf.randomNormal([8, 3]);
    const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => distillationLoss(student.apply(x) as tf.Tensor, teacherLogits, { temperature: 3, validate: false }), variables);
    const before = weightValues(student);
    const step = createTrainStep({ student, optimizer: tf.train.sgd(1), temperature: 3, learningRate: () => 0.37 });
    await step({ inputs: x, teacherLogits, at: at(0) });
    const after = weightValues(student);
    variables.forEach((v, i) => {
      const g = grads[v.name]!.dataSync();
      after[i]!.forEach((w, j) => expect(w - before[i]![j]!).toBeCloseTo(-0.37 * g[j]!, 6));
    });
    tf.dispose([x, teacherLogits, value, ...Object.values(grads)]);
  });

  it("works with an optimizer given by name, and a number is set once at compile", async () => {
    const { x, y } = toyData(8);
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2, learningRate: ({ epoch }) => 0.1 / (epoch + 1) });
    const history = await distiller.fit(x, y, { epochs: 2, batchSize: 8 });
    expect(history.history.learningRate).toEqual([0.1, 0.05]);
    distiller.compile({ optimizer: 'sgd', temperature: 2, learningRate: 0.5 });
    expect((await distiller.fit(x, y)).history.learningRate).toEqual([0.5]);
    expect(() => distiller.compile({ optimizer: 'sgd', temperature: 2, learningRate: Number.NaN })).toThrow(
      expect.objectContaining({ code: 'INVALID_LEARNING_RATE' }),
    );
    tf.dispose([x, y]);
  });
});

describe('clipNorm', () => {
  it('clips the global gradient norm: with SGD the update norm is lr · clipNorm', async () => {
    const x = tf.mul(tf.randomNormal([8, 6]), 1e4);
    const teacherLogits = tf.mul(tf.randomNormal([8, 3]), 1e3);
    const updateNorm = async (clipNorm: number | undefined) => {
      const student = mlp(6, 4, 3, 5);
      const before = weightValues(student);
      const step = createTrainStep({ student, optimizer: tf.train.sgd(0.1), kind: 'mse', clipNorm });
      await step({ inputs: x, teacherLogits });
      const after = weightValues(student);
      return Math.sqrt(after.reduce((sum, w, i) => sum + w.reduce((s, v, j) => s + (v - before[i]![j]!) ** 2, 0), 0));
    };
    const unclipped = await updateNorm(undefined);
    expect(unclipped).toBeGreaterThan(1e3);
    expect(await updateNorm(1)).toBeCloseTo(0.1, 5);
    expect(await updateNorm(unclipped * 100)).toBeCloseTo(unclipped, 0); // below the threshold: untouched
    expect(() => createTrainStep({ student: mlp(6, 4, 3, 5), optimizer: tf.train.sgd(0.1), kind: 'mse', clipNorm: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    tf.dispose([x, teacherLogits]);
  });
});

describe('clipNorm with feature terms', () => {
  it("takes the norm over the student's and the projections' gradients together", async () => {
    const student = mlpNamed('s', 8, 2);
    const distiller = new Distiller({ teacher: mlpNamed('t', 12, 1), student });
    distiller.compile({ optimizer: tf.train.sgd(0.1), kind: 'mse', clipNorm: 1, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden' }] });
    // The projections live beside the student, in the compiled step.
    const projections = (distiller as unknown as { step: { projectionVariables: tf.Variable[] } }).step.projectionVariables;
    expect(projections.length).toBeGreaterThan(0);
    const values = () => [...weightValues(student), ...projections.map((v) => Float32Array.from(v.dataSync()))];
    const before = values();
    const x = tf.mul(tf.randomNormal([8, 6]), 1e4);
    await distiller.fit(x, undefined, { batchSize: 8 });
    const after = values();
    const norm = Math.sqrt(after.reduce((sum, w, i) => sum + w.reduce((acc, v, j) => acc + (v - before[i]![j]!) ** 2, 0), 0));
    expect(norm).toBeCloseTo(0.1, 4);
    x.dispose();
  });
});

describe('clipByGlobalNorm', () => {
  it('scales every gradient by clipNorm / max(global norm, clipNorm)', () => {
    const grads = { a: tf.tensor1d([3]), b: tf.tensor2d([[0, 4]]) };
    const clipped = clipByGlobalNorm(grads, 1);
    expect([...clipped.a!.dataSync(), ...clipped.b!.dataSync()]).toEqual([expect.closeTo(0.6, 6), 0, expect.closeTo(0.8, 6)]);
    const untouched = clipByGlobalNorm(grads, 10);
    expect([...untouched.a!.dataSync(), ...untouched.b!.dataSync()]).toEqual([3, 0, 4]);
    tf.dispose([...Object.values(grads), ...Object.values(clipped), ...Object.values(untouched)]);
  });

  it("parallel logs keep the step's settings as they are (no mean over shards)", () => {
    const logs = combineLogs([{ loss: 1, learningRate: 0.1 }, { loss: 4, learningRate: 0.1 }, { loss: 2, learningRate: 0.1 }], [3, 3, 1]);
    expect(logs.learningRate).toBe(0.1);
    expect(logs.loss).toBeCloseTo((3 + 12 + 2) / 7, 12);
  });
});

describe('temperature schedules and teachers whose outputs depend on T', () => {
  const members = () => [mlp(6, 8, 3, 1), mlp(6, 8, 3, 2)];
  const schedule = linearSchedule({ from: 4, to: 1, epochs: 3 });

  it('are refused at compile when the outputs were stored at one temperature', () => {
    const student = mlp(6, 4, 3, 9);
    const cache = new TeacherCache({ outputs: { form: 'logits', exactness: 'temperature-dependent' }, temperature: 4 });
    const cached = cachedTeacher(new EnsembleTeacher(members(), { combine: 'mean-probs' }));
    const opaque: Teacher = { outputs: { form: 'logits', exactness: 'temperature-dependent' }, predict: (t) => tf.zeros([(t as tf.Tensor).shape[0]!, 3]) };
    for (const teacher of [cache, cached, opaque]) {
      const distiller = new Distiller({ teacher, student });
      expect(() => distiller.compile({ optimizer: 'adam', temperature: schedule })).toThrow(expect.objectContaining({ code: 'INVALID_TEMPERATURE' }));
      distiller.compile({ optimizer: 'adam', temperature: 4 }); // a constant is fine
    }
  });

  it('pass for an uncached mean-probs ensemble, which recomputes at every temperature', async () => {
    const { x } = toyData(8);
    const distiller = new Distiller({ teacher: new EnsembleTeacher(members(), { combine: 'mean-probs' }), student: mlp(6, 4, 3, 9) });
    distiller.compile({ optimizer: 'adam', temperature: schedule });
    expect((await distiller.fit(x, undefined, { epochs: 3 })).history.temperature).toEqual([4, 3, 2]);
    x.dispose();
  });

  it('a parallel run refuses schedules before starting', async () => {
    const { x } = toyData(8);
    const trainer: ParallelTrainer = { workers: 2, begin: () => Promise.reject(new Error('must not begin')) };
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 9) });
    distiller.compile({ optimizer: 'adam', temperature: schedule });
    await expect(distiller.fit(x, undefined, { parallel: trainer })).rejects.toMatchObject({ code: 'PARALLEL_UNSUPPORTED' });
    x.dispose();
  });
});

describe('no leaked tensors with schedules and clipNorm', () => {
  it('numTensors returns to the baseline over many steps', async () => {
    const { x, y } = toyData(32);
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2, [tfl.layers.dropout({ rate: 0.2 })]) });
    distiller.compile({
      optimizer: 'sgd',
      temperature: linearSchedule({ from: 4, to: 1, steps: 20 }),
      alpha: cosineSchedule({ from: 0, to: 0.5, epochs: 4 }),
      learningRate: warmup({ to: 0.05, steps: 5, then: stepSchedule({ from: 0.05, factor: 0.5, epochs: 2 }) }),
      clipNorm: 1,
    });
    await distiller.fit(x, y, { epochs: 1, batchSize: 32 });
    const baseline = tf.memory().numTensors;
    await distiller.fit(x, y, { epochs: 6, batchSize: 4, validationData: [x, y] });
    expect(tf.memory().numTensors).toBe(baseline);
    await distiller.evaluate(x, y);
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, y]);
  });
});

/** An iterator of `{ xs, ys }` batches over x and y, tensors the caller's step disposes. */
function batches(x: tf.Tensor, y: tf.Tensor, size: number) {
  let start = 0;
  const rows = x.shape[0]!;
  return {
    next: async () => {
      if (start >= rows) return { done: true as const, value: undefined as never };
      const n = Math.min(size, rows - start);
      const value = { xs: tf.slice(x, [start], [n]), ys: tf.slice(y, [start], [n]) };
      start += n;
      return { done: false as const, value };
    },
  };
}

/** 6 → hidden → 3 logits, layers named `${prefix}_hidden`, `${prefix}_logits`. */
function mlpNamed(prefix: string, hidden: number, seed: number) {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: hidden, inputShape: [6], name: `${prefix}_hidden` }),
        tfl.layers.dense({ units: 3, name: `${prefix}_logits` }),
      ],
    }),
  );
}
