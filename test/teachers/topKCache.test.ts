import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { cachedTeacher, distillationLoss, TeacherCache, type TeacherPrediction } from '../../src/index.js';
import { topKLogits, type TopKLogits } from '../../src/losses/index.js';
import { selectTopK } from '../../src/io/topKRows.js';
import type { TeacherOutputBatch } from '../../src/io/index.js';

const ctx = (ids: number[]) => ({ temperature: 2, ids: tf.tensor1d(ids, 'int32') });

function asTopK(out: TeacherPrediction): TopKLogits {
  expect(out).not.toBeInstanceOf(tf.Tensor);
  return out as TopKLogits;
}

function randomRows(rows: number, classes: number, seed: number): Float32Array {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 8 - 4;
  // Rounded to quarters: plenty of ties, which must come out lower class id first.
  return Float32Array.from({ length: rows * classes }, () => Math.round(next() * 4) / 4);
}

describe('TeacherCache with topK', () => {
  it('cuts full rows to their k largest (ties: lower class id first), as tf.topk does', () => {
    const values = randomRows(50, 12, 7);
    const ours = selectTopK(values, 12, 4);
    const reference = tf.topk(tf.tensor2d(values, [50, 12]), 4, true);
    expect(Array.from(ours.classIds)).toEqual(Array.from(reference.indices.dataSync()));
    expect(Array.from(ours.values)).toEqual(Array.from(reference.values.dataSync()));
    tf.dispose([reference.indices, reference.values]);
  });

  it('stores k values and k class ids a row and serves TopKLogits by id', async () => {
    const cache = new TeacherCache({ topK: 2 });
    cache.set([10, 20, 30], [[1, 5, 3], [9, 9, 0], [-1, -2, -3]]);
    expect(cache.topK).toBe(2);
    expect(cache.numClasses).toBe(3);
    expect(Array.from(cache.lookup([20]))).toEqual([9, 9]);
    expect(Array.from(cache.lookupClassIds([20, 10]))).toEqual([0, 1, 1, 2]);
    const top = asTopK(await cache.predict(tf.zeros([2, 1]), ctx([30, 10])));
    expect(top.ids.dtype).toBe('int32');
    expect(top.ids.arraySync()).toEqual([[0, 1], [1, 2]]);
    expect(top.logits.arraySync()).toEqual([[-1, -2], [5, 3]]);
    tf.dispose([top.ids, top.logits]);
    expect(() => cache.get([10])).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K', message: expect.stringContaining('getTopK') }));
    expect(() => new TeacherCache().getTopK([1])).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
  });

  it('keeps top-k rows given as TopKLogits or read from top-k batches, and lists them for the writers', async () => {
    const cache = new TeacherCache({ numClasses: 1000 });
    const ids = tf.tensor2d([[999, 3], [0, 1]], [2, 2], 'int32');
    const logits = tf.tensor2d([[4, 2], [1, 0.5]]);
    cache.set(['a', 'b'], { ids, logits });
    expect(cache.topK).toBe(2);
    const [batch] = [...cache.batches()];
    expect(batch).toMatchObject({ ids: ['a', 'b'], numClasses: 2, classCount: 1000 });
    expect(Array.from(batch!.topIds!)).toEqual([999, 3, 0, 1]);
    const copy = await TeacherCache.fromBatches(cache.batches());
    expect(copy.topK).toBe(2);
    expect(copy.numClasses).toBe(1000);
    expect(Array.from(copy.lookupClassIds(['a']))).toEqual([999, 3]);
    tf.dispose([ids, logits]);
  });

  it('refuses bad top-k rows with typed errors, storing nothing', () => {
    const batch = (topIds: number[], values: number[], extra: Partial<TeacherOutputBatch> = {}): TeacherOutputBatch => ({
      ids: [1, 2],
      logits: Float32Array.from(values),
      numClasses: 2,
      topIds: Int32Array.from(topIds),
      ...extra,
    });
    const cache = new TeacherCache({ numClasses: 5 });
    expect(() => cache.addBatch(batch([0, 5, 1, 2], [1, 0, 1, 0]))).toThrow(
      expect.objectContaining({ code: 'INVALID_TOP_K_IDS', message: expect.stringMatching(/row 0 .*class id 5 .*\[0, 5\)/) }),
    );
    expect(() => cache.addBatch(batch([0, 1, 3, 3], [1, 0, 1, 0]))).toThrow(
      expect.objectContaining({ code: 'INVALID_TOP_K_IDS', message: expect.stringContaining('appears twice') }),
    );
    expect(() => cache.addBatch(batch([0, 1, 2, 3], [1, NaN, 1, 0]))).toThrow(expect.objectContaining({ code: 'NON_FINITE_TEACHER_OUTPUT' }));
    expect(cache.size).toBe(0);
    cache.addBatch(batch([0, 1, 2, 3], [1, 0, 1, 0]));
    expect(() =>
      cache.addBatch({ ids: [3], logits: Float32Array.from([1, 0, 0]), numClasses: 3, topIds: Int32Array.from([0, 1, 2]) }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K', message: expect.stringContaining('same k') }));
    const full = new TeacherCache();
    full.set([1], [[1, 2, 3]]);
    expect(() => full.addBatch(batch([0, 1, 2, 0], [1, 0, 1, 0]))).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    expect(() => new TeacherCache({ topK: 3 }).set([1], [[1, 2, 3]])).toThrow(
      expect.objectContaining({ code: 'INVALID_TOP_K', message: expect.stringContaining('[1, 3)') }),
    );
    expect(() => new TeacherCache({ topK: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
    expect(() => new TeacherCache({ topK: 2.5 })).toThrow(expect.objectContaining({ code: 'INVALID_TOP_K' }));
  });

  it('fromTeacher and cachedTeacher with topK store what topKLogits gives, and the loss equals the top-k loss on full logits', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [6], kernelInitializer: 'glorotNormal' })] });
    const x = tf.randomNormal([8, 6], 0, 1, 'float32', 3);
    const idList = Array.from({ length: 8 }, (_, i) => i);
    const full = model.predict(x) as tf.Tensor2D;
    const reference = topKLogits(full, 3);
    const cache = await TeacherCache.fromTeacher(model, { x, ids: idList }, { topK: 3, batchSize: 3 });
    const served = asTopK(await cache.predict(x, ctx(idList)));
    expect(served.ids.arraySync()).toEqual(reference.ids.arraySync());
    expect(served.logits.arraySync()).toEqual(reference.logits.arraySync());

    const student = tf.randomNormal([8, 10], 0, 2, 'float32', 4);
    const fromCache = distillationLoss(student, served, { temperature: 2 });
    const fromFull = distillationLoss(student, full, { temperature: 2, topK: 3 });
    expect(fromCache.dataSync()[0]).toBeCloseTo(fromFull.dataSync()[0]!, 6);

    const cached = cachedTeacher(model, { topK: 3 });
    const first = asTopK(await cached.predict(x, ctx(idList)));
    const second = asTopK(await cached.predict(x, ctx(idList.slice().reverse())));
    expect(cached.teacherCalls).toBe(1);
    expect(first.ids.arraySync()).toEqual(reference.ids.arraySync());
    expect(second.logits.arraySync()).toEqual((reference.logits.arraySync() as number[][]).slice().reverse());
    tf.dispose([x, full, reference.ids, reference.logits, served.ids, served.logits, student, fromCache, fromFull]);
    tf.dispose([first.ids, first.logits, second.ids, second.logits]);
    model.dispose();
  });

  it('caches a teacher that returns top-k outputs itself (another top-k cache)', async () => {
    const source = new TeacherCache({ topK: 2 });
    source.set([0, 1], [[1, 2, 3], [3, 2, 1]]);
    const filled = await TeacherCache.fromTeacher(source, { x: tf.zeros([2, 1]), ids: [0, 1] });
    expect(filled.topK).toBe(2);
    expect(Array.from(filled.lookupClassIds([0, 1]))).toEqual([2, 1, 0, 1]);
    const cached = cachedTeacher(source);
    // Typed by what the source may return; a plain model without topK serves tensors, with topK top-k rows.
    expectTypeOf(cached.predict).returns.toEqualTypeOf<TeacherPrediction | Promise<TeacherPrediction>>();
    const plain = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [1] })] });
    expectTypeOf(cachedTeacher(plain).predict).returns.toEqualTypeOf<tf.Tensor | Promise<tf.Tensor>>();
    expectTypeOf(cachedTeacher(plain, { topK: 2 }).predict).returns.toEqualTypeOf<TopKLogits | Promise<TopKLogits>>();
    plain.dispose();
    const out = asTopK(await cached.predict(tf.zeros([2, 1]), ctx([1, 0])));
    expect(out.ids.arraySync()).toEqual([[0, 1], [2, 1]]);
    expect(cached.cache.topK).toBe(2);
    tf.dispose([out.ids, out.logits]);
  });

  it('leaks no tensors serving top-k batches', async () => {
    const cache = new TeacherCache({ topK: 4 });
    cache.set(Array.from({ length: 64 }, (_, i) => i), randomRows(64, 100, 1));
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 5, inputShape: [2] })] });
    const cached = cachedTeacher(model, { topK: 2 });
    const x = tf.randomNormal([16, 2]);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 20; step++) {
      const ids = Array.from({ length: 16 }, (_, i) => (i * 7 + step) % 64);
      const context = ctx(ids);
      const top = asTopK(await cache.predict(x, context));
      const fromModel = asTopK(await cached.predict(x, context));
      tf.dispose([top.ids, top.logits, fromModel.ids, fromModel.logits, context.ids]);
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });
});
