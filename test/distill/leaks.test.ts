import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { Distiller, createTrainStep } from '../../src/index.js';
import { mlp, toyData } from './helpers.js';

describe('no tensor leaks', () => {
  it('fit, evaluate and error paths return numTensors to the baseline taken after the first step', async () => {
    const { x, y } = toyData(64);
    const teacher = mlp(6, 16, 3, 1, [tfl.layers.dropout({ rate: 0.2 })]);
    const student = mlp(6, 8, 3, 2, [tfl.layers.dropout({ rate: 0.2 })]);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-3), temperature: 4, alpha: 0.5 });
    await distiller.fit(x, y, { epochs: 1, batchSize: 64 });
    const baseline = tf.memory().numTensors;

    // 8 epochs x 8 batches = 64 steps, with validation every epoch.
    await distiller.fit(x, y, { epochs: 8, batchSize: 8, validationData: [x, y] });
    expect(tf.memory().numTensors).toBe(baseline);
    await distiller.evaluate(x, y);
    expect(tf.memory().numTensors).toBe(baseline);

    const badLabels = tf.fill([64], 7, 'int32');
    await expect(distiller.fit(x, badLabels)).rejects.toMatchObject({ code: 'LABEL_OUT_OF_RANGE' });
    badLabels.dispose();
    expect(tf.memory().numTensors).toBe(baseline);

    const nanTeacher = new Distiller({ teacher: (t) => tf.fill([(t as tf.Tensor).shape[0]!, 3], Number.NaN), student });
    nanTeacher.compile({ optimizer: tf.train.adam(1e-3), temperature: 4 });
    await nanTeacher.fit(x, undefined, { batchSize: 64 }).catch(() => undefined); // creates the optimizer slots
    const baseline2 = tf.memory().numTensors;
    await expect(nanTeacher.fit(x, undefined, { batchSize: 8 })).rejects.toMatchObject({ code: 'NON_FINITE_TEACHER_OUTPUT' });
    expect(tf.memory().numTensors).toBe(baseline2);

    const wrongClasses = new Distiller({ teacher: mlp(6, 4, 5, 3), student });
    wrongClasses.compile({ optimizer: tf.train.adam(1e-3), temperature: 4 });
    const baseline3 = tf.memory().numTensors;
    await expect(wrongClasses.fit(x)).rejects.toMatchObject({ code: 'CLASS_COUNT_MISMATCH' });
    expect(tf.memory().numTensors).toBe(baseline3);
    tf.dispose([x, y]);
  });

  it('a probability teacher (log p made before the gradient tape) stays flat, error paths included', async () => {
    const { x, y } = toyData(64);
    const teacher = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
        tfl.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    const student = mlp(6, 8, 3, 2);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 3, alpha: 0.3 });
    const first = await distiller.fit(x, y, { epochs: 1, batchSize: 64 });
    const baseline = tf.memory().numTensors;
    const history = await distiller.fit(x, y, { epochs: 6, batchSize: 8 });
    expect(tf.memory().numTensors).toBe(baseline);
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]!).toBeLessThan(first.history.loss![0] as number);

    const notProbs = new Distiller({ teacher: (t) => tf.fill([(t as tf.Tensor).shape[0]!, 3], 0.5), teacherOutputs: 'probs', student });
    notProbs.compile({ optimizer: tf.train.adam(1e-3), temperature: 3 });
    await notProbs.fit(x, undefined, { batchSize: 64 }).catch(() => undefined); // creates the optimizer slots
    const baseline2 = tf.memory().numTensors;
    await expect(notProbs.fit(x, undefined, { batchSize: 8 })).rejects.toMatchObject({ code: 'INVALID_PROBABILITIES' });
    expect(tf.memory().numTensors).toBe(baseline2);
    tf.dispose([x, y]);
  });

  it('a custom loop with createTrainStep stays flat over 60 steps', async () => {
    const { x, y } = toyData(32);
    const teacher = mlp(6, 16, 3, 1);
    const student = mlp(6, 8, 3, 2);
    const step = createTrainStep({ student, optimizer: tf.train.adam(1e-2), temperature: 2, alpha: 0.5 });
    const run = async () => {
      const teacherLogits = tf.tidy(() => teacher.apply(x) as tf.Tensor);
      const logs = await step({ inputs: x, teacherLogits, labels: y });
      teacherLogits.dispose();
      return logs;
    };
    const first = await run();
    const baseline = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 60; i++) last = await run();
    expect(tf.memory().numTensors).toBe(baseline);
    expect(last.loss).toBeLessThan(first.loss);
    expect(step.variables).toHaveLength(4);
    tf.dispose([x, y]);
  });
});
