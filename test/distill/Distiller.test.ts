import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Distiller, KdConfigError, KdDataError, KdShapeError, distillationLoss, withSeed, type Teacher } from '../../src/index.js';
import { mlp, sameValues, toyData, weightValues } from './helpers.js';

describe('Distiller.fit', () => {
  let x: tf.Tensor2D;
  let y: tf.Tensor1D;
  beforeAll(() => {
    ({ x, y } = toyData(96) as { x: tf.Tensor2D; y: tf.Tensor1D });
  });
  afterAll(() => tf.dispose([x, y]));

  it('updates the student only: teacher weights stay bit-identical', async () => {
    const teacher = mlp(6, 16, 3, 1, [tfl.layers.dropout({ rate: 0.5 })]);
    const student = mlp(6, 4, 3, 2);
    const teacherBefore = weightValues(teacher);
    const studentBefore = weightValues(student);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(0.05), temperature: 4, alpha: 0.3 });
    await distiller.fit(x, y, { epochs: 2, batchSize: 16 });
    expect(sameValues(weightValues(teacher), teacherBefore)).toBe(true);
    expect(sameValues(weightValues(student), studentBefore)).toBe(false);
  });

  it('logs the contract keys per epoch, with val_ versions', async () => {
    const distiller = new Distiller({ teacher: mlp(6, 16, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2, alpha: 0.5 });
    const history = await distiller.fit(x, y, { epochs: 3, batchSize: 32, validationData: [x, y] });
    expect(history.epoch).toEqual([0, 1, 2]);
    for (const key of ['loss', 'distillation_loss', 'student_loss', 'acc', 'agreement']) {
      expect(history.history[key]).toHaveLength(3);
      expect(history.history[`val_${key}`]).toHaveLength(3);
    }
    const acc = history.history.acc as number[];
    expect(acc.every((a) => a >= 0 && a <= 1)).toBe(true);
    // loss = alpha * student_loss + (1 - alpha) * distillation_loss, epoch means included.
    const h = history.history as Record<string, number[]>;
    expect(h.loss![0]).toBeCloseTo(0.5 * h.student_loss![0]! + 0.5 * h.distillation_loss![0]!, 5);
  });

  it('without labels logs no acc and needs alpha 0', async () => {
    const distiller = new Distiller({ teacher: mlp(6, 16, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    const history = await distiller.fit(x, undefined, { epochs: 1 });
    // The settings of the epoch's last step are logged beside the measures (docs/schedules.md).
    expect(Object.keys(history.history).sort()).toEqual(['agreement', 'alpha', 'distillation_loss', 'learningRate', 'loss', 'temperature']);
    distiller.compile({ optimizer: 'adam', temperature: 2, alpha: 0.5 });
    await expect(distiller.fit(x)).rejects.toMatchObject({ code: 'ALPHA_WITHOUT_LABELS' });
  });

  it('the epoch loss equals distillationLoss on the same batch (one full batch, SGD lr 0)', async () => {
    const teacher = mlp(6, 16, 3, 1);
    const student = mlp(6, 4, 3, 2);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.sgd(0), temperature: 3, alpha: 0.25 });
    const history = await distiller.fit(x, y, { epochs: 1, batchSize: 96, shuffle: false });
    const expected = tf.tidy(() =>
      distillationLoss(student.apply(x) as tf.Tensor, teacher.apply(x) as tf.Tensor, {
        temperature: 3,
        alpha: 0.25,
        labels: y,
      }).dataSync()[0]!,
    );
    expect((history.history.loss as number[])[0]).toBeCloseTo(expected, 5);
  });

  it('includes the student regularization losses', async () => {
    const teacher = mlp(6, 16, 3, 1);
    const student = withSeed(3, () =>
      tfl.sequential({
        layers: [tfl.layers.dense({ units: 3, inputShape: [6], kernelRegularizer: tfl.regularizers.l2({ l2: 1 }) })],
      }),
    );
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.sgd(0), temperature: 2 });
    const history = await distiller.fit(x, undefined, { epochs: 1, batchSize: 96 });
    const l2 = tf.tidy(() => tf.sum(tf.square(student.getWeights()[0]!)).dataSync()[0]!);
    const h = history.history as Record<string, number[]>;
    expect(h.loss![0]! - h.distillation_loss![0]!).toBeCloseTo(l2, 4);
  });

  it('is reproducible with a seed (shuffling and dropout) on cpu', async () => {
    const run = async (seed: number) => {
      const teacher = mlp(6, 16, 3, 1);
      const student = mlp(6, 8, 3, seed, [tfl.layers.dropout({ rate: 0.3 })]);
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.5 });
      await distiller.fit(x, y, { epochs: 2, batchSize: 16, seed });
      return weightValues(student);
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    expect(sameValues(a, b)).toBe(true);
    expect(sameValues(a, c)).toBe(false);
  });

  it('runs the teacher once per batch, in inference mode, on teacherInputs when given', async () => {
    const calls: number[][] = [];
    const teacherX = tf.randomNormal([96, 11]);
    const teacherModel = mlp(11, 8, 3, 5, [tfl.layers.dropout({ rate: 0.9 })]);
    const inner = teacherModel;
    const teacher: Teacher = {
      predict: (inputs) => {
        const t = inputs as tf.Tensor;
        calls.push(t.shape);
        return tf.tidy(() => inner.apply(t, { training: false }) as tf.Tensor);
      },
    };
    const distiller = new Distiller({ teacher, student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    await distiller.fit(x, undefined, { epochs: 2, batchSize: 32, teacherInputs: teacherX });
    expect(calls).toHaveLength(6);
    expect(calls.every((shape) => shape[1] === 11)).toBe(true);

    // A LayersModel teacher with heavy dropout: inference mode means deterministic outputs,
    // so agreement measured twice is identical.
    const d2 = new Distiller({ teacher: teacherModel, student: mlp(11, 4, 3, 2) });
    d2.compile({ optimizer: 'adam', temperature: 2 });
    const e1 = await d2.evaluate(teacherX);
    const e2 = await d2.evaluate(teacherX);
    expect(e1.distillation_loss).toBe(e2.distillation_loss);
    teacherX.dispose();
  });

  it('trains a two-input student from an array and from a named map', async () => {
    const a = tf.randomNormal([40, 3]);
    const b = tf.randomNormal([40, 2]);
    const makeStudent = () =>
      withSeed(4, () => {
        const ia = tfl.input({ shape: [3], name: 'left' });
        const ib = tfl.input({ shape: [2], name: 'right' });
        const merged = tfl.layers.concatenate().apply([ia, ib]) as tfl.SymbolicTensor;
        const out = tfl.layers.dense({ units: 3 }).apply(merged) as tfl.SymbolicTensor;
        return tfl.model({ inputs: [ia, ib], outputs: out });
      });
    const teacher = (inputs: unknown) => {
      const [left, right] = Array.isArray(inputs) ? inputs : [(inputs as tf.NamedTensorMap).left!, (inputs as tf.NamedTensorMap).right!];
      return tf.tidy(() => tf.concat([left!, tf.slice(right!, [0, 0], [-1, 0])], 1));
    };
    for (const inputs of [[a, b], { left: a, right: b }] as const) {
      const student = makeStudent();
      const before = weightValues(student);
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: tf.train.adam(0.05), temperature: 1 });
      const history = await distiller.fit(inputs as tf.Tensor[] | tf.NamedTensorMap, undefined, { epochs: 2, batchSize: 8 });
      expect(history.history.loss).toHaveLength(2);
      expect(sameValues(weightValues(student), before)).toBe(false);
    }
    const distiller = new Distiller({ teacher, student: makeStudent() });
    distiller.compile({ optimizer: 'adam', temperature: 1 });
    await expect(distiller.fit({ left: a, wrong: b })).rejects.toMatchObject({ code: 'MISSING_INPUT' });
    tf.dispose([a, b]);
  });

  it('honours tf.callbacks.earlyStopping and plain callback objects', async () => {
    const distiller = new Distiller({ teacher: mlp(6, 16, 3, 1), student: mlp(6, 4, 3, 2) });
    // Learning rate 0: the loss cannot improve, so patience 0 stops after the second epoch.
    distiller.compile({ optimizer: tf.train.sgd(0), temperature: 2 });
    const ends: number[] = [];
    const history = await distiller.fit(x, undefined, {
      epochs: 10,
      batchSize: 32,
      shuffle: false,
      callbacks: [tfl.callbacks.earlyStopping({ monitor: 'loss', patience: 0 }), { onEpochEnd: async (e: number) => void ends.push(e) }],
    });
    expect(history.epoch).toEqual([0, 1]);
    expect(ends).toEqual([0, 1]);
  });

  it('treats a softmax teacher as probabilities: same loss as its logits twin', async () => {
    const logitsTeacher = mlp(6, 16, 3, 1);
    const probsTeacher = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
        tfl.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    probsTeacher.setWeights(logitsTeacher.getWeights());
    const student = mlp(6, 4, 3, 2);
    const losses: number[] = [];
    for (const teacher of [logitsTeacher, probsTeacher]) {
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: 'adam', temperature: 3 });
      losses.push((await distiller.evaluate(x)).distillation_loss!);
    }
    expect(losses[1]).toBeCloseTo(losses[0]!, 5);
    const mse = new Distiller({ teacher: probsTeacher, student });
    expect(() => mse.compile({ optimizer: 'adam', kind: 'mse' })).toThrow(KdConfigError);
  });

  it('fitDataset reads { xs, ys, teacherXs, id } batches and passes ids to the teacher', async () => {
    const seenIds: number[] = [];
    const teacherModel = mlp(6, 16, 3, 1);
    const teacher: Teacher = {
      predict: (inputs, context) => {
        if (context.ids) seenIds.push(...Array.from(context.ids.dataSync()));
        return tf.tidy(() => teacherModel.apply(inputs as tf.Tensor) as tf.Tensor);
      },
    };
    const makeDataset = () => ({
      iterator: async () => {
        let i = 0;
        return {
          next: async (): Promise<IteratorResult<{ xs: tf.Tensor; ys: tf.Tensor; id: tf.Tensor }>> => {
            if (i >= 3) return { done: true, value: undefined };
            const start = i++ * 32;
            return {
              done: false,
              value: {
                xs: tf.slice(x, [start], [32]),
                ys: tf.slice(y, [start], [32]),
                id: tf.range(start, start + 32, 1, 'int32'),
              },
            };
          },
        };
      },
    });
    const distiller = new Distiller({ teacher, student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2, alpha: 0.5 });
    const history = await distiller.fitDataset(makeDataset(), { epochs: 2, validationData: makeDataset() });
    expect(history.history.val_acc).toHaveLength(2);
    expect(seenIds.slice(0, 96)).toEqual(Array.from({ length: 96 }, (_, i) => i));
    // Baseline after the first run: the optimizer's slots exist from the first step on.
    const before = tf.memory().numTensors;
    await distiller.fitDataset(makeDataset(), { epochs: 2, batchesPerEpoch: 2, validationData: makeDataset() });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('createTrainStep-free use: evaluate returns the log record', async () => {
    const distiller = new Distiller({ teacher: mlp(6, 16, 3, 1), student: mlp(6, 4, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    const logs = await distiller.evaluate(x, y, { batchSize: 10 });
    expect(Object.keys(logs).sort()).toEqual(['acc', 'agreement', 'alpha', 'distillation_loss', 'learningRate', 'loss', 'student_loss', 'temperature']);
    expect(logs).toMatchObject({ temperature: 2, alpha: 0, learningRate: 0.001 });
  });
});

describe('Distiller errors', () => {
  const x = tf.randomNormal([20, 6]);
  const y = tf.tensor1d(Array.from({ length: 20 }, (_, i) => i % 3), 'int32');
  afterAll(() => tf.dispose([x, y]));

  it('NOT_COMPILED before compile', async () => {
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    await expect(distiller.fit(x, y)).rejects.toMatchObject({ code: 'NOT_COMPILED' });
    await expect(distiller.evaluate(x, y)).rejects.toBeInstanceOf(KdConfigError);
  });

  it('SOFTMAX_STUDENT unless studentOutputs is probs', async () => {
    const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [6], activation: 'softmax' })] });
    const d = new Distiller({ teacher: mlp(6, 8, 3, 1), student });
    expect(() => d.compile({ optimizer: 'adam', temperature: 2 })).toThrow(/remove the softmax/);
    const ok = new Distiller({ teacher: mlp(6, 8, 3, 1), student, studentOutputs: 'probs' });
    ok.compile({ optimizer: 'adam', temperature: 2 });
    const history = await ok.fit(x, y, { epochs: 1 });
    expect(Number.isFinite((history.history.loss as number[])[0])).toBe(true);
  });

  it('SHARED_VARIABLES for the same model or a shared layer', () => {
    const teacher = mlp(6, 8, 3, 1);
    expect(() => new Distiller({ teacher, student: teacher })).toThrow(expect.objectContaining({ code: 'SHARED_VARIABLES' }));
    const sharedLayer = teacher.layers[0]!;
    const student = tfl.sequential({ layers: [sharedLayer, tfl.layers.dense({ units: 3 })] });
    expect(() => new Distiller({ teacher, student })).toThrow(/share/);
  });

  it('invalid temperature, alpha, optimizer, kind and batch size', async () => {
    const d = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    expect(() => d.compile({ optimizer: 'adam', temperature: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_TEMPERATURE' }));
    expect(() => d.compile({ optimizer: 'adam', temperature: 2, alpha: 1.5 })).toThrow(expect.objectContaining({ code: 'INVALID_ALPHA' }));
    expect(() => d.compile({ optimizer: 'adamw' as 'adam', temperature: 2 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    d.compile({ optimizer: 'adam', temperature: 2 });
    await expect(d.fit(x, y, { batchSize: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });

  it('INVALID_STUDENT for a model without input shape', () => {
    const d = new Distiller({ teacher: mlp(6, 8, 3, 1), student: tfl.sequential() });
    expect(() => d.compile({ optimizer: 'adam', temperature: 2 })).toThrow(expect.objectContaining({ code: 'INVALID_STUDENT' }));
  });

  it('LENGTH_MISMATCH between x, y and teacherInputs', async () => {
    const d = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 4, 3, 2) });
    d.compile({ optimizer: 'adam', temperature: 2 });
    const short = tf.slice(y, [0], [10]);
    await expect(d.fit(x, short)).rejects.toBeInstanceOf(KdShapeError);
    await expect(d.fit(x, undefined, { teacherInputs: tf.slice(x, [0], [5]) })).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
    short.dispose();
  });

  it('INPUT_SHAPE_MISMATCH names the expected shape', async () => {
    const d = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(5, 4, 3, 2) });
    d.compile({ optimizer: 'adam', temperature: 2 });
    await expect(d.fit(x)).rejects.toThrow('expects shape [batch, 5] but got [20, 6]');
  });

  it('CLASS_COUNT_MISMATCH names the fix', async () => {
    const d = new Distiller({ teacher: mlp(6, 8, 10, 1), student: mlp(6, 4, 9, 2) });
    d.compile({ optimizer: 'adam', temperature: 2 });
    await expect(d.fit(x)).rejects.toThrow('teacher logits have 10 classes but student logits have 9: build the student with 10 output units');
  });

  it('LABEL_OUT_OF_RANGE before any step', async () => {
    const student = mlp(6, 4, 3, 2);
    const before = weightValues(student);
    const d = new Distiller({ teacher: mlp(6, 8, 3, 1), student });
    d.compile({ optimizer: 'adam', temperature: 2, alpha: 0.5 });
    const bad = tf.tensor1d(Array.from({ length: 20 }, (_, i) => (i === 7 ? 3 : 0)), 'int32');
    await expect(d.fit(x, bad)).rejects.toMatchObject({ code: 'LABEL_OUT_OF_RANGE' });
    expect(sameValues(weightValues(student), before)).toBe(true);
    bad.dispose();
  });

  it('NaN teacher outputs stop training before the update, keeping the last good weights', async () => {
    const student = mlp(6, 4, 3, 2);
    let calls = 0;
    const teacher = (inputs: unknown) => {
      calls++;
      const n = (inputs as tf.Tensor).shape[0]!;
      return calls === 2 ? tf.fill([n, 3], Number.NaN) : tf.zeros([n, 3]);
    };
    const d = new Distiller({ teacher, student });
    d.compile({ optimizer: tf.train.sgd(0.1), temperature: 2 });
    const seen: string[] = [];
    const err = await d
      .fit(x, undefined, { batchSize: 10, shuffle: false, callbacks: { onBatchEnd: async (b: number) => void seen.push(`b${b}`) } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KdDataError);
    expect((err as KdDataError).code).toBe('NON_FINITE_TEACHER_OUTPUT');
    expect(seen).toEqual(['b0']);
    expect(weightValues(student).every((w) => w.every(Number.isFinite))).toBe(true);
  });

  it('NON_FINITE_LOSS skips the update: a NaN input leaves the weights as they were', async () => {
    const student = mlp(6, 4, 3, 2);
    const d = new Distiller({ teacher: () => tf.zeros([20, 3]), student });
    d.compile({ optimizer: tf.train.sgd(0.1), temperature: 2 });
    const poisoned = tf.tidy(() => tf.concat([tf.fill([1, 6], Number.NaN), tf.slice(x, [1, 0], [19, 6])]));
    const before = weightValues(student);
    await expect(d.fit(poisoned, undefined, { batchSize: 20 })).rejects.toMatchObject({ code: 'NON_FINITE_LOSS' });
    expect(sameValues(weightValues(student), before)).toBe(true);
    poisoned.dispose();
  });

  it('INVALID_PROBABILITIES for a probs teacher whose rows do not sum to 1', async () => {
    const d = new Distiller({ teacher: (t) => tf.fill([(t as tf.Tensor).shape[0]!, 3], 0.5), teacherOutputs: 'probs', student: mlp(6, 4, 3, 2) });
    d.compile({ optimizer: 'adam', temperature: 2 });
    await expect(d.fit(x)).rejects.toMatchObject({ code: 'INVALID_PROBABILITIES' });
    expect(() => d.compile({ optimizer: 'adam', kind: 'mse' })).toThrow(expect.objectContaining({ code: 'PROBS_TEACHER_WITH_MSE' }));
  });

  it('a batch-size mismatch from the teacher is a shape error', async () => {
    const d = new Distiller({ teacher: () => tf.zeros([1, 3]), student: mlp(6, 4, 3, 2) });
    d.compile({ optimizer: 'adam', temperature: 2 });
    await expect(d.fit(x, undefined, { batchSize: 10 })).rejects.toMatchObject({ code: 'BATCH_SIZE_MISMATCH' });
  });

  it('an invalid teacher is a config error', () => {
    expect(() => new Distiller({ teacher: 42 as never, student: mlp(6, 4, 3, 2) })).toThrow(
      expect.objectContaining({ code: 'INVALID_TEACHER' }),
    );
  });
});
