import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  biLstmStudentParamCount,
  buildBiLstmStudent,
  compressionReport,
  Distiller,
  Vocabulary,
  seededRandom,
  withSeed,
  type ModelInputs,
} from '../../src/index.js';
import { registerCpuTrainingKernels } from '../../src/backend/index.js';

const VOCAB = 60;
const LENGTH = 10;
const SIZES = { vocabSize: VOCAB, numClasses: 2, embeddingDim: 8, hiddenUnits: 8, fcUnits: 16 } as const;

beforeAll(() => {
  registerCpuTrainingKernels();
});

/** `count` sentences of 2..LENGTH random tokens (ids 3..VOCAB-1), zero-padded after. */
function sentences(count: number, seed: number): tf.Tensor2D {
  const random = seededRandom(seed);
  const rows = Array.from({ length: count }, () => {
    const length = 2 + Math.floor(random() * (LENGTH - 1));
    return Array.from({ length: LENGTH }, (_, t) => (t < length ? 3 + Math.floor(random() * (VOCAB - 3)) : 0));
  });
  return tf.tensor2d(rows, [count, LENGTH], 'int32');
}

/** Per sentence: how many tokens are "positive" (ids below 30) minus "negative" ones; padding counts for neither. */
function score(tokens: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const real = tf.cast(tf.greater(tokens, 0), 'float32');
    const positive = tf.mul(tf.cast(tf.less(tokens, 30), 'float32'), real);
    return tf.sub(tf.mul(tf.sum(positive, 1), 2), tf.sum(real, 1));
  });
}

/** A rule teacher: logits [−s, s] / 2 from a sentence score. */
function logits(s: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => tf.stack([tf.mul(s, -0.5), tf.mul(s, 0.5)], 1) as tf.Tensor2D);
}

const singleTeacher = (x: ModelInputs) => tf.tidy(() => logits(score(x as tf.Tensor)));
const pairTeacher = (x: ModelInputs) => {
  const [a, b] = x as tf.Tensor[];
  return tf.tidy(() => logits(tf.sub(score(a!), score(b!))));
};

async function distil(
  student: ReturnType<typeof buildBiLstmStudent>,
  teacher: (x: ModelInputs) => tf.Tensor,
  x: tf.Tensor | tf.Tensor[],
  validate: boolean,
) {
  const distiller = new Distiller({ teacher, student });
  distiller.compile({ optimizer: tf.train.adam(0.03), kind: 'mse', alpha: 0 });
  const before = await distiller.evaluate(x);
  // One epoch first: Adam creates its slots, then the tensor count must stay put.
  await distiller.fit(x, undefined, { epochs: 1, batchSize: 32, seed: 1 });
  const baseline = tf.memory().numTensors;
  await distiller.fit(x, undefined, { epochs: 4, batchSize: 32, seed: 2, ...(validate ? { validationData: { x } } : {}) });
  const after = await distiller.evaluate(x);
  return { before, after, leaked: tf.memory().numTensors - baseline };
}

describe('distilling into the BiLSTM student (cpu, seconds)', () => {
  it('single sentences: the loss falls, the student agrees with the teacher, no tensor leaks', async () => {
    const x = sentences(128, 1);
    const student = withSeed(3, () => buildBiLstmStudent({ ...SIZES, dropout: 0.1 }));
    const { before, after, leaked } = await distil(student, singleTeacher, x, true);
    expect(leaked).toBe(0);
    expect(after['loss']!).toBeLessThan(0.5 * before['loss']!);
    expect(after['agreement']!).toBeGreaterThan(0.8);
    x.dispose();
  });

  it('sentence pairs with x = [a, b], max pooling and multichannel pretrained embeddings (the frozen copy stays put)', async () => {
    const a = sentences(128, 2);
    const b = sentences(128, 3);
    const weights = withSeed(4, () => tf.randomNormal([VOCAB, SIZES.embeddingDim], 0, 0.5)) as tf.Tensor2D;
    const student = withSeed(5, () =>
      buildBiLstmStudent({ ...SIZES, pair: true, pooling: 'max', embeddings: { weights, mode: 'multichannel' } }),
    );
    const frozenBefore = student.getLayer('embedding_frozen').getWeights()[0]!.dataSync().slice();
    const { before, after, leaked } = await distil(student, pairTeacher, [a, b], false);
    expect(leaked).toBe(0);
    expect(after['loss']!).toBeLessThan(0.5 * before['loss']!);
    expect(after['agreement']!).toBeGreaterThan(0.75);
    // The frozen channel did not move; the trainable one did.
    expect(student.getLayer('embedding_frozen').getWeights()[0]!.dataSync()).toEqual(frozenBefore);
    expect(student.getLayer('embedding').getWeights()[0]!.dataSync()).not.toEqual(frozenBefore);
    tf.dispose([a, b, weights]);
  });

  it('composes end to end: Vocabulary.encodeBatch → student → Distiller (mse) → compressionReport vs a LayersModel teacher', async () => {
    const texts = ['a fine , witty film . ', 'a dull film ', 'charming and often affecting ', 'labored gags . ', 'fine fine'];
    const vocabulary = Vocabulary.fromCorpus(texts, { tokenizer: 'whitespace' });
    const x = vocabulary.encodeBatch(texts); // int32, PAD-filled
    const labels = tf.tensor1d([1, 0, 1, 0, 1], 'int32');
    const teacher = withSeed(6, () =>
      tfl.sequential({
        layers: [
          tfl.layers.embedding({ inputDim: vocabulary.size, outputDim: 8, maskZero: true, inputLength: x.shape[1] }),
          tfl.layers.globalAveragePooling1d({}),
          tfl.layers.dense({ units: 2 }),
        ],
      }),
    );
    const sizes = { vocabSize: vocabulary.size, numClasses: 2, embeddingDim: 4, hiddenUnits: 3, fcUnits: 5 };
    const student = withSeed(7, () => buildBiLstmStudent(sizes));
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(0.01), kind: 'mse', alpha: 0.5 });
    const history = await distiller.fit(x, labels, { epochs: 2, batchSize: 2, seed: 1 });
    expect(history.history['loss']).toHaveLength(2);
    expect(history.history['acc']).toHaveLength(2);

    const report = await compressionReport({ teacher, student, x, labels, repeats: 1, latencyRows: 5 });
    expect(report.student.parameters).toBe(biLstmStudentParamCount(sizes));
    expect(report.teacher.parameters).toBe(teacher.countParams());
    expect(report.rows).toBe(texts.length);
    expect(report.student.accuracy).toBeGreaterThanOrEqual(0);
    expect(report.agreement).toBeGreaterThanOrEqual(0);
    expect(report.agreement).toBeLessThanOrEqual(1);
    tf.dispose([x, labels]);
  });
});
