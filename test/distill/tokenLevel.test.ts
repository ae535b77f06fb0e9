import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { Distiller, distillationLoss, withSeed } from '../../src/index.js';
import { KdConfigError, KdDataError } from '../../src/errors.js';
import { mlp, sameValues, toyData, weightValues } from './helpers.js';

const VOCAB = 12;
const TIME = 6;
const TAGS = 4;

/** A BiLSTM tagger: embedding(maskZero) → bidirectional(lstm returnSequences) → timeDistributed dense. */
function tagger(units: number, seed: number): tfl.LayersModel {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.embedding({ inputDim: VOCAB, outputDim: 8, maskZero: true, inputLength: TIME }),
        tfl.layers.bidirectional({ layer: tfl.layers.lstm({ units, returnSequences: true, recurrentInitializer: 'glorotUniform' }) as tfl.RNN }),
        tfl.layers.timeDistributed({ layer: tfl.layers.dense({ units: TAGS }) }),
      ],
    }),
  );
}

/** Token ids padded with 0 at the end (1 to TIME real tokens per row), the 0/1 mask, tags with −100 at padding. */
function taggedData(n: number) {
  return withSeed(3, () =>
    tf.tidy(() => {
      const lengths = tf.randomUniform([n, 1], 1, TIME + 1, 'int32');
      const mask = tf.cast(tf.less(tf.reshape(tf.range(0, TIME, 1, 'int32'), [1, TIME]), lengths), 'int32');
      const x = tf.mul(tf.randomUniform([n, TIME], 1, VOCAB, 'int32'), mask);
      const tags = tf.mod(x, TAGS);
      const y = tf.where(tf.cast(mask, 'bool'), tags, tf.fill([n, TIME], -100, 'int32'));
      return { x: x as tf.Tensor2D, y, mask: tf.cast(mask, 'float32') };
    }),
  );
}

describe('Distiller: token-level logits (a BiLSTM tagger)', () => {
  it('distils a tagger from a tfjs teacher tagger over the unmasked tokens: first-step loss equals distillationLoss, the loss falls, nothing leaks', async () => {
    const { x, y, mask } = taggedData(48);
    const teacher = tagger(12, 1);
    const student = tagger(4, 2);
    const options = { temperature: 2, alpha: 0.3 };
    const expected = tf.tidy(() =>
      distillationLoss(student.predict(x) as tf.Tensor, teacher.predict(x) as tf.Tensor, { ...options, labels: y, mask }).dataSync()[0]!,
    );
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(0.03), ...options });
    let first: Record<string, number> | undefined;
    await distiller.fit(x, y, {
      mask,
      batchSize: 48,
      shuffle: false,
      callbacks: { onBatchEnd: async (_b: number, logs?: Record<string, number>) => void (first ??= { ...logs! }) },
    });
    expect(Math.abs(first!.loss! - expected)).toBeLessThan(1e-5 * Math.max(1, expected));

    const baseline = tf.memory().numTensors;
    const history = await distiller.fit(x, y, { mask, epochs: 8, batchSize: 24, validationData: { x, y, mask } });
    expect(tf.memory().numTensors).toBe(baseline);
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]!).toBeLessThan(0.8 * first!.loss!);
    const logs = await distiller.evaluate(x, y, { mask, batchSize: 48 });
    const fresh = tf.tidy(() =>
      distillationLoss(student.predict(x) as tf.Tensor, teacher.predict(x) as tf.Tensor, { ...options, labels: y, mask }).dataSync()[0]!,
    );
    expect(Math.abs(logs.loss! - fresh)).toBeLessThan(1e-5 * Math.max(1, fresh));
    const tokenAcc = tf.tidy(() => {
      const hits = tf.mul(tf.cast(tf.equal(tf.argMax(student.predict(x) as tf.Tensor, -1), y), 'float32'), mask);
      return tf.div(tf.sum(hits), tf.sum(mask)).dataSync()[0]!;
    });
    // acc counts unmasked tokens only.
    expect(logs.acc).toBeCloseTo(tokenAcc, 5);
    expect(history.history.val_acc).toBeDefined();
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, y, mask]);
  });

  it('checks token-level labels and masks with typed errors', async () => {
    const { x, y, mask } = taggedData(16);
    const distiller = new Distiller({ teacher: tagger(6, 1), student: tagger(4, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2, alpha: 0.5 });
    // −100 at padding is fine with the mask, not without it.
    await expect(distiller.fit(x, y)).rejects.toMatchObject({ code: 'LABEL_OUT_OF_RANGE' });
    const badMask = tf.mul(mask, 2);
    await expect(distiller.fit(x, y, { mask: badMask })).rejects.toMatchObject({ code: 'INVALID_MASK' });
    const shortMask = tf.slice(mask, [0, 0], [16, 3]);
    await expect(distiller.fit(x, y, { mask: shortMask })).rejects.toMatchObject({ code: 'BATCH_SIZE_MISMATCH' });
    // A mask in a dataset element is checked in the step (one read with the batch's other values), before the update.
    const before = weightValues(distiller.student);
    const dataset = { iterator: async () => {
      let done = false;
      return { next: async () => (done ? { done: true, value: undefined } : ((done = true), { done: false, value: { xs: x.clone(), ys: y.clone(), mask: badMask.clone() } })) as IteratorResult<{ xs: tf.Tensor; ys: tf.Tensor; mask: tf.Tensor }> };
    } };
    await expect(distiller.fitDataset(dataset)).rejects.toMatchObject({ code: 'INVALID_MASK' });
    expect(sameValues(weightValues(distiller.student), before)).toBe(true);
    tf.dispose([x, y, mask, badMask, shortMask]);
  });
});

describe('Distiller: a teacher that fails', () => {
  class FlakyTeacher {
    calls = 0;
    constructor(private readonly failAt: number, private readonly error: unknown, private readonly model = mlp(6, 16, 3, 1)) {}
    async predict(x: unknown): Promise<tf.Tensor> {
      if (this.calls++ === this.failAt) throw this.error;
      return this.model.predict(x as tf.Tensor) as tf.Tensor;
    }
  }

  it('fit: TEACHER_FAILED naming epoch, batch and teacher, the original as cause, the failing batch not applied, nothing leaked', async () => {
    const { x, y } = toyData(64);
    const boom = new Error('connection reset');
    const teacher = new FlakyTeacher(1_000, boom);
    const student = mlp(6, 8, 3, 2);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.3 });
    await distiller.fit(x, y, { batchSize: 16 });
    const baseline = tf.memory().numTensors;
    teacher.calls = 0;
    (teacher as unknown as { failAt: number }).failAt = 5; // epoch 1, batch 1 with 4 batches per epoch
    let afterEpoch0: Float32Array[] | undefined;
    const error = await distiller
      .fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, callbacks: { onBatchEnd: async (b: number) => void (b === 0 && teacher.calls === 5 ? (afterEpoch0 = weightValues(student)) : undefined) } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KdConfigError);
    expect(error).toMatchObject({ code: 'TEACHER_FAILED', cause: boom });
    expect((error as Error).message).toMatch(/FlakyTeacher/);
    expect((error as Error).message).toMatch(/epoch 1, batch 1/);
    expect((error as Error).message).toMatch(/connection reset/);
    // The weights after epoch 1's batch 0 are the final ones: the failing batch changed nothing.
    expect(sameValues(weightValues(student), afterEpoch0!)).toBe(true);
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, y]);
  });

  it('fitDataset and evaluate: a rejected promise is TEACHER_FAILED; a kd-ts error keeps its code, with the place', async () => {
    const { x, y } = toyData(32);
    const student = mlp(6, 8, 3, 2);
    const before = weightValues(student);
    const dataset = { iterator: async () => {
      let i = 0;
      return { next: async () => (i < 2 ? { done: false, value: { xs: tf.slice(x, [16 * i++], [16]) } } : { done: true, value: undefined }) as IteratorResult<{ xs: tf.Tensor }> };
    } };
    const rejecting = new Distiller({ teacher: new FlakyTeacher(0, 'plain string'), student });
    rejecting.compile({ optimizer: 'adam', temperature: 2 });
    const missing = new KdDataError('MISSING_ID', 'id 7 is not in the cache');
    const kdFailing = new Distiller({ teacher: new FlakyTeacher(1, missing), student });
    kdFailing.compile({ optimizer: 'adam', temperature: 2 });
    const baseline = tf.memory().numTensors;
    await expect(rejecting.fitDataset(dataset)).rejects.toMatchObject({ code: 'TEACHER_FAILED', cause: 'plain string', message: expect.stringMatching(/epoch 0, batch 0/) });
    expect(sameValues(weightValues(student), before)).toBe(true);
    const error = await kdFailing.evaluate(x, y, { batchSize: 16 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KdDataError);
    expect(error).toMatchObject({ code: 'MISSING_ID', cause: missing, message: expect.stringMatching(/evaluation batch 1.*id 7/) });
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, y]);
  });
});
