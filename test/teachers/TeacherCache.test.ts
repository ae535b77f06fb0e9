import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  cachedTeacher,
  Distiller,
  EnsembleTeacher,
  KdConfigError,
  KdDataError,
  seededRandom,
  TeacherCache,
  type ExampleId,
  type DistillationBatch,
  type ModelInputs,
  type Teacher,
  type TeacherContext,
  type TeacherPrediction,
} from '../../src/index.js';
import { readJsonlTeacherOutputs } from '../../src/io/index.js';
import { zipTeacherOutputs } from '../../src/teachers/index.js';
import { mlp } from '../distill/helpers.js';

const N = 24;
const FEATURES = 2;
/** Example i's features (float32 values): distinct per example. */
const features = (i: number) => [Math.fround(i / N), (i % 5) - 2];
/** A teacher whose logits encode its input, hence the example: [10·x0, x1, −x0 − 1], in float32. */
const encode = (x: number[]) => [Math.fround(10 * x[0]!), x[1]!, Math.fround(-x[0]! - 1)];

function encodingTeacher() {
  const teacher = {
    calls: 0,
    outputs: 'logits' as const,
    predict(inputs: ModelInputs) {
      teacher.calls++;
      return tf.tidy(() => {
        const x = inputs as tf.Tensor2D;
        const [x0, x1] = tf.split(x, 2, 1) as [tf.Tensor, tf.Tensor];
        return tf.concat([tf.mul(x0, 10), x1, tf.sub(tf.neg(x0), 1)], 1);
      });
    },
  };
  return teacher;
}

/** A dataset of { xs, id } batches, shuffled per epoch with a seed, ids as tf.data gives them. */
function dataset(options: { shuffle: boolean; seed?: number; ids?: (i: number) => ExampleId; idDtype?: 'int32' | 'float32' | 'string'; batchSize?: number }) {
  const idOf = options.ids ?? ((i: number) => i);
  const random = seededRandom(options.seed ?? 1);
  const batchSize = options.batchSize ?? 5;
  return {
    iterator: async () => {
      const order = Array.from({ length: N }, (_, i) => i);
      if (options.shuffle) {
        for (let i = N - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
      }
      let start = 0;
      return {
        next: async (): Promise<IteratorResult<DistillationBatch>> => {
          if (start >= N) return { done: true, value: undefined };
          const rows = order.slice(start, start + batchSize);
          start += batchSize;
          const ids = rows.map(idOf);
          const id =
            options.idDtype === 'string' || typeof ids[0] === 'string'
              ? tf.tensor1d(ids as string[], 'string')
              : tf.tensor1d(ids as number[], options.idDtype ?? 'float32');
          return { done: false, value: { xs: tf.tensor2d(rows.map(features), [rows.length, FEATURES]), id } };
        },
      };
    },
  };
}

/** Wraps a teacher, recording each example's id, inputs and the target it got. */
function recording(inner: Teacher<TeacherPrediction>) {
  const records: Array<{ id: ExampleId; x: number[]; target: number[] }> = [];
  const teacher: Teacher = {
    outputs: inner.outputs,
    async predict(inputs: ModelInputs, context: TeacherContext) {
      const out = (await inner.predict(inputs, context)) as tf.Tensor;
      const x = (await (inputs as tf.Tensor).array()) as number[][];
      const ids = (await context.ids!.array()) as ExampleId[];
      const targets = (await out.array()) as number[][];
      ids.forEach((id, r) => records.push({ id, x: x[r]!, target: targets[r]! }));
      return out;
    },
  };
  return { teacher, records };
}

async function train(teacher: Teacher<TeacherPrediction>, data: ReturnType<typeof dataset>, epochs: number) {
  const distiller = new Distiller({ teacher, student: mlp(FEATURES, 4, 3, 7) });
  distiller.compile({ optimizer: tf.train.sgd(0.05), temperature: 2 });
  return distiller.fitDataset(data, { epochs });
}

describe('TeacherCache', () => {
  it('stores rows by id and returns them in the asked order', () => {
    const cache = new TeacherCache();
    cache.set(['a', 'b', 'c'], [[1, 2], [3, 4], [5, 6]]);
    cache.set(tf.tensor1d(['d'], 'string'), tf.tensor2d([[7, 8]]));
    expect(cache.size).toBe(4);
    expect(cache.numClasses).toBe(2);
    const got = cache.get(['d', 'a', 'c', 'a']);
    expect(got.arraySync()).toEqual([[7, 8], [1, 2], [5, 6], [1, 2]]);
    got.dispose();
  });

  it('grows past its initial capacity, reuses deleted rows and lists rows for the writers', () => {
    const cache = new TeacherCache({ initialCapacity: 1, numClasses: 3 });
    const ids = Array.from({ length: 5000 }, (_, i) => i);
    cache.set(ids, Float32Array.from({ length: 15000 }, (_, k) => k));
    expect(Array.from(cache.lookup([4999, 0]))).toEqual([14997, 14998, 14999, 0, 1, 2]);
    cache.delete([0, 1]);
    expect(cache.size).toBe(4998);
    expect(cache.has(0)).toBe(false);
    cache.set([9000], [[-1, -2, -3]]);
    expect(Array.from(cache.lookup([9000]))).toEqual([-1, -2, -3]);
    const listed = [...cache.batches(1000)].flatMap((b) => b.ids);
    expect(listed.length).toBe(4999);
    expect(new Set(listed)).toEqual(new Set(cache.ids()));
  });

  it('names the id for missing, duplicate, non-finite and mistyped rows, storing nothing on failure', () => {
    const cache = new TeacherCache();
    cache.set([1, 2], [[0, 1], [1, 0]]);
    expect(() => cache.get([2, 99])).toThrow(expect.objectContaining({ code: 'MISSING_ID', message: expect.stringContaining('id 99') }));
    expect(() => cache.set([3, 2], [[0, 0], [0, 0]])).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_ID', message: expect.stringContaining('(id 2): this id is already in the cache') }),
    );
    expect(cache.has(3)).toBe(false);
    expect(() => cache.set([4, 4], [[0, 0], [0, 0]])).toThrow(/earlier in the same batch/);
    expect(() => cache.set([5], [[NaN, 0]])).toThrow(expect.objectContaining({ code: 'NON_FINITE_TEACHER_OUTPUT', message: expect.stringContaining('id 5') }));
    expect(() => cache.set([6], [[0, 0, 0]])).toThrow(expect.objectContaining({ code: 'CLASS_COUNT_MISMATCH' }));
    expect(() => cache.set(['x'], [[0, 0]])).toThrow(expect.objectContaining({ code: 'ID_TYPE_MISMATCH' }));
    expect(() => cache.get(['1'])).toThrow(expect.objectContaining({ code: 'ID_TYPE_MISMATCH', message: expect.stringContaining('17 and "17"') }));
    expect(() => cache.set([2 ** 24], [[0, 0]])).toThrow(expect.objectContaining({ code: 'ID_TYPE_MISMATCH', message: expect.stringContaining('2^24') }));
    expect(cache.size).toBe(2);
    cache.set([2], [[5, 5]], { overwrite: true });
    expect(Array.from(cache.lookup([2]))).toEqual([5, 5]);
  });

  it('predict serves by id, and requires ids', async () => {
    const cache = new TeacherCache();
    cache.set([10, 20], [[1, 0], [0, 1]]);
    const out = (await cache.predict(tf.zeros([2, 3]), { temperature: 1, ids: tf.tensor1d([20, 10], 'int32') })) as tf.Tensor;
    expect(out.arraySync()).toEqual([[0, 1], [1, 0]]);
    tf.dispose(out);
    await expect(cache.predict(tf.zeros([2, 3]), { temperature: 1 })).rejects.toSatisfy(
      (e: unknown) => e instanceof KdConfigError && e.code === 'IDS_REQUIRED' && /add an `id` tensor to the dataset elements/.test(e.message),
    );
    // tf.data gives float32 ids: fine below 2^24, refused from there on, and never fractional.
    ((await cache.predict(tf.zeros([1, 1]), { temperature: 1, ids: tf.tensor1d([10], 'float32') })) as tf.Tensor).dispose();
    await expect(cache.predict(tf.zeros([1, 1]), { temperature: 1, ids: tf.tensor1d([16777216], 'float32') })).rejects.toMatchObject({
      code: 'ID_TYPE_MISMATCH',
      message: expect.stringContaining('16777217 becomes 16777216'),
    });
    await expect(cache.predict(tf.zeros([1, 1]), { temperature: 1, ids: tf.tensor1d([1.5], 'float32') })).rejects.toBeInstanceOf(KdDataError);
    await expect(cache.predict(tf.zeros([1, 1]), { temperature: 1, ids: tf.tensor1d([30], 'int32') })).rejects.toMatchObject({
      code: 'MISSING_ID',
      message: expect.stringContaining('no teacher output for id 30'),
    });
  });

  it('fromTeacher fills from { x, ids } and from a dataset, disposing what it uses', async () => {
    const inner = encodingTeacher();
    const x = tf.tensor2d(Array.from({ length: N }, (_, i) => features(i)));
    const ids = Array.from({ length: N }, (_, i) => `ex-${i}`);
    const before = tf.memory().numTensors;
    const cache = await TeacherCache.fromTeacher(inner, { x, ids }, { batchSize: 7 });
    expect(tf.memory().numTensors).toBe(before);
    expect(inner.calls).toBe(4);
    expect(Array.from(cache.lookup(['ex-13']))).toEqual(encode(features(13)));
    const fromData = await TeacherCache.fromTeacher(inner, dataset({ shuffle: true, ids: (i) => `ex-${i}` }));
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(fromData.lookup(ids))).toEqual(Array.from(cache.lookup(ids)));
    await expect(TeacherCache.fromTeacher(inner, { x, ids: ids.slice(1) })).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
    x.dispose();
  });

  it('works as an EnsembleTeacher member (ids passed through)', async () => {
    const cache = new TeacherCache();
    cache.set([0, 1], [[2, 0], [0, 2]]);
    const ensemble = new EnsembleTeacher([cache, (x: ModelInputs) => tf.zerosLike(x as tf.Tensor)]);
    const out = await ensemble.predict(tf.zeros([2, 2]), { temperature: 1, ids: tf.tensor1d([1, 0], 'int32') });
    expect(out.arraySync()).toEqual([[0, 1], [1, 0]]);
    out.dispose();
  });
});

describe('cachedTeacher with Distiller.fitDataset', () => {
  it('gives every example its own target, shuffled or not, and runs the teacher in the first epoch only', async () => {
    const runs: Record<string, Map<ExampleId, number[]>> = {};
    for (const shuffle of [false, true]) {
      const inner = encodingTeacher();
      const cached = cachedTeacher(inner);
      const { teacher, records } = recording(cached);
      await train(teacher, dataset({ shuffle, seed: 3 }), 3);
      expect(inner.calls).toBe(Math.ceil(N / 5)); // epoch 1 only
      expect(cached.teacherCalls).toBe(Math.ceil(N / 5));
      expect(cached.cache.size).toBe(N);
      expect(records.length).toBe(3 * N);
      const byId = new Map<ExampleId, number[]>();
      for (const { id, x, target } of records) {
        // The target is the teacher's output on this very example...
        expect(target).toEqual(encode(x));
        // ...and the same in every epoch.
        if (byId.has(id)) expect(target).toEqual(byId.get(id));
        byId.set(id, target);
      }
      runs[String(shuffle)] = byId;
    }
    expect(runs.true).toEqual(runs.false);
  });

  it('serves a cache read from a file the same way (string ids)', async () => {
    const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ id: `s${i}`, logits: encode(features(i)) })).join('\n');
    const cache = await TeacherCache.fromBatches(readJsonlTeacherOutputs(lines));
    const { teacher, records } = recording(cache);
    await train(teacher, dataset({ shuffle: true, ids: (i) => `s${i}` }), 2);
    for (const { x, target } of records) expect(target).toEqual(encode(x));
  });

  it('tells the user to add ids when the dataset has none', async () => {
    const noIds = {
      iterator: async () => {
        let done = false;
        return {
          next: async (): Promise<IteratorResult<DistillationBatch>> => {
            if (done) return { done: true, value: undefined };
            done = true;
            return { done: false, value: { xs: tf.zeros([2, FEATURES]) } };
          },
        };
      },
    };
    await expect(train(cachedTeacher(encodingTeacher()), noIds as ReturnType<typeof dataset>, 1)).rejects.toMatchObject({
      code: 'IDS_REQUIRED',
    });
  });

  it('refuses a temperature-dependent teacher asked at another temperature', async () => {
    const ensemble = new EnsembleTeacher([encodingTeacher(), encodingTeacher()], { combine: 'mean-probs' });
    const cached = cachedTeacher(ensemble);
    expect(cached.outputs).toEqual({ form: 'logits', exactness: 'temperature-dependent' });
    expect(cached.cache.outputs).toEqual(cached.outputs);
    const x = tf.tensor2d([features(1)]);
    const ids = tf.tensor1d([1], 'int32');
    ((await cached.predict(x, { temperature: 2, ids })) as tf.Tensor).dispose();
    ((await cached.predict(x, { temperature: 2, ids })) as tf.Tensor).dispose();
    await expect(cached.predict(x, { temperature: 4, ids })).rejects.toMatchObject({ code: 'INVALID_TEMPERATURE' });
    tf.dispose([x, ids]);
  });

  it('refuses one id with two different examples inside a batch', async () => {
    const cached = cachedTeacher(encodingTeacher());
    const x = tf.tensor2d([features(1), features(2)]);
    const ids = tf.tensor1d([7, 7], 'int32');
    await expect(cached.predict(x, { temperature: 1, ids })).rejects.toMatchObject({ code: 'DUPLICATE_ID' });
    tf.dispose([x, ids]);
  });

  it('leaks no tensors across epochs', async () => {
    const cached = cachedTeacher(encodingTeacher());
    const distiller = new Distiller({ teacher: cached, student: mlp(FEATURES, 4, 3, 7) });
    distiller.compile({ optimizer: tf.train.sgd(0.05), temperature: 2 });
    await distiller.fitDataset(dataset({ shuffle: true }), { epochs: 1 });
    const before = tf.memory().numTensors;
    await distiller.fitDataset(dataset({ shuffle: true }), { epochs: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('zipTeacherOutputs', () => {
  const inputRows = (order: number[]) => order.map((i) => ({ id: i, x: features(i) }));
  const teacherText = (order: number[]) => order.map((i) => JSON.stringify({ id: i, logits: encode(features(i)) })).join('\n');

  it('streams inputs and teacher rows matched by id into Distiller.fitDataset, without leaks', async () => {
    const inputOrder = Array.from({ length: N }, (_, i) => (i * 7) % N);
    const teacherOrder = [...inputOrder].reverse().slice(0, 10).reverse().concat(inputOrder.slice(0, N - 10)); // not the same order
    const { dataset: data, teacher } = zipTeacherOutputs(
      () => inputRows(inputOrder),
      () => readJsonlTeacherOutputs(teacherText(teacherOrder), { batchSize: 4 }),
      { batchSize: 5, toTensors: (rows) => ({ xs: tf.tensor2d(rows.map((r) => r.x), [rows.length, FEATURES]) }) },
    );
    const { teacher: recorder, records } = recording(teacher);
    const distiller = new Distiller({ teacher: recorder, student: mlp(FEATURES, 4, 3, 7) });
    distiller.compile({ optimizer: tf.train.sgd(0.05), temperature: 2 });
    await distiller.fitDataset(data, { epochs: 1 });
    const before = tf.memory().numTensors;
    await distiller.fitDataset(data, { epochs: 2 });
    expect(tf.memory().numTensors).toBe(before);
    expect(records.length).toBe(3 * N);
    for (const { x, target } of records) expect(target).toEqual(encode(x));
  });

  it('fails the training on an input without teacher output', async () => {
    const { dataset: data, teacher } = zipTeacherOutputs(
      () => inputRows([0, 1, 2, 3]),
      () => readJsonlTeacherOutputs(teacherText([0, 1, 3]), { source: 'part-00000.jsonl' }),
      { batchSize: 2, toTensors: (rows) => ({ xs: tf.tensor2d(rows.map((r) => r.x), [rows.length, FEATURES]) }) },
    );
    const before = tf.memory().numTensors;
    await expect(train(teacher, data as ReturnType<typeof dataset>, 1)).rejects.toMatchObject({
      code: 'MISSING_ID',
      message: expect.stringContaining('input #2 has id 2'),
    });
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 12); // the student's weights and the optimizer
  });
});

describe('cachedTeacher source', () => {
  it('exposes the wrapped original as source', () => {
    const model = mlp(FEATURES, 4, 3, 11);
    const teacher = cachedTeacher(model);
    expect(teacher.source).toBe(model);
    model.dispose();
  });

  it('SHARED_VARIABLES when the cached teacher wraps the student', () => {
    const student = mlp(FEATURES, 4, 3, 12);
    expect(() => new Distiller({ teacher: cachedTeacher(student), student })).toThrow(
      expect.objectContaining({ code: 'SHARED_VARIABLES' }),
    );
    // Also through an ensemble of cached teachers.
    const ensemble = new EnsembleTeacher([cachedTeacher(student)]);
    expect(() => new Distiller({ teacher: ensemble, student })).toThrow(expect.objectContaining({ code: 'SHARED_VARIABLES' }));
    student.dispose();
  });
});
