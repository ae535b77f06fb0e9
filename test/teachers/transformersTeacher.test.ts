import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  cachedTeacher,
  Distiller,
  KdConfigError,
  KdDataError,
  KdShapeError,
  TeacherCache,
  withSeed,
  type DistillationBatch,
} from '../../src/index.js';
import { transformersTeacher, type TransformersModelLike, type TransformersTensorLike } from '../../src/teachers/index.js';
import { fixtureTokenizer, onnxModel, readTinyBertFixture } from './tinyBert.js';

// transformersTeacher on the tiny BERT of examples/onnx-teacher, run by
// onnxruntime-web with a stand-in tokenizer (the fixture's ids). The same
// teacher on transformers.js itself is tested by the opt-in suite
// (test/transformers, npm run test:transformers).

const fixture = readTinyBertFixture();
const N = fixture.sentences.length;

/** Runs `f` and checks that it leaves no tfjs tensor behind (its result aside). */
async function noLeak<T>(f: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await f();
  expect(tf.memory().numTensors).toBe(before + (result instanceof tf.Tensor ? 1 : 0));
  return result;
}

async function rejection(f: () => Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  const before = tf.memory().numTensors;
  const error = await f().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(tf.memory().numTensors).toBe(before);
  expect(error, 'expected a rejection').toBeInstanceOf(Error);
  return error!;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));

describe('transformersTeacher on the tiny BERT (onnxruntime-web, fixture tokenizer)', () => {
  it('reads sentences by id and returns PyTorch\'s logits (to 1e-4), in the batch\'s order', async () => {
    const { model, calls } = await onnxModel();
    const tok = fixtureTokenizer(fixture);
    const teacher = transformersTeacher(model, tok.tokenizer, { texts: fixture.sentences, batchSize: 8 });
    // The batch in a shuffled order: row k holds example order[k].
    const order = Array.from({ length: N }, (_, i) => (i * 7) % N);
    const ids = tf.tensor1d(order, 'int32');
    const logits = await noLeak(() => teacher.predict(ids, { temperature: 1, ids }));
    expect(logits.shape).toEqual([N, 2]);
    const expected = order.flatMap((i) => fixture.logits[i]!);
    expect(maxDiff(await logits.data(), expected)).toBeLessThan(1e-4);
    expect(calls.count).toBe(Math.ceil(N / 8));
    expect(teacher.modelCalls).toBe(Math.ceil(N / 8));
    expect(teacher.rowsScored).toBe(N);
    // Every tokenizer tensor disposed: three per call.
    expect(tok.disposed.count).toBe(3 * Math.ceil(N / 8));
    tf.dispose([ids, logits]);
  });

  it('a sentence scores the same alone and padded in a batch', async () => {
    const { model } = await onnxModel();
    const tok = fixtureTokenizer(fixture);
    const teacher = transformersTeacher(model, tok.tokenizer, { texts: fixture.sentences, batchSize: N, sortByLength: false });
    const together = await teacher.scoreTexts(fixture.sentences);
    const values = await together.data();
    for (let i = 0; i < N; i += 5) {
      const alone = await teacher.scoreTexts([fixture.sentences[i]!]);
      expect(maxDiff(await alone.data(), values.subarray(2 * i, 2 * i + 2))).toBeLessThan(1e-5);
      alone.dispose();
    }
    // The longest sentence set the padding of the one call: every shorter one was padded.
    const lengths = fixture.inputIds.map((ids) => ids.length);
    expect(tok.paddedTokens()).toBe(Math.max(...lengths) * N + lengths.filter((_, i) => i % 5 === 0).reduce((a, b) => a + b, 0));
    together.dispose();
  });

  it('sorts each batch by length before cutting it into calls: less padding than in the given order', async () => {
    const { model } = await onnxModel();
    const sorted = fixtureTokenizer(fixture);
    const unsorted = fixtureTokenizer(fixture);
    const a = await transformersTeacher(model, sorted.tokenizer, { texts: fixture.sentences, batchSize: 6 }).scoreTexts(fixture.sentences);
    const b = await transformersTeacher(model, unsorted.tokenizer, { texts: fixture.sentences, batchSize: 6, sortByLength: false }).scoreTexts(
      fixture.sentences,
    );
    for (const call of sorted.calls) expect(call.map((s) => s.length)).toEqual([...call.map((s) => s.length)].sort((x, y) => x - y));
    expect(sorted.paddedTokens()).toBeLessThan(unsorted.paddedTokens() * 0.85);
    expect(maxDiff(await a.data(), await b.data())).toBeLessThan(1e-5);
    tf.dispose([a, b]);
  });

  it('texts as a Map with string ids, or a function; a text-classification pipeline', async () => {
    const { model } = await onnxModel();
    const { tokenizer } = fixtureTokenizer(fixture);
    const byName = new Map(fixture.sentences.map((s, i) => [`s${i}`, s]));
    const ids = tf.tensor1d(['s3', 's0'], 'string');
    const fromMap = await transformersTeacher(model, tokenizer, { texts: byName }).predict(ids, { temperature: 1, ids });
    const fromFunction = await transformersTeacher({ model, tokenizer }, { texts: (id) => byName.get(String(id)) }).predict(ids, {
      temperature: 1,
      ids,
    });
    const expected = [...fixture.logits[3]!, ...fixture.logits[0]!];
    expect(maxDiff(await fromMap.data(), expected)).toBeLessThan(1e-4);
    expect(maxDiff(await fromFunction.data(), expected)).toBeLessThan(1e-4);
    tf.dispose([ids, fromMap, fromFunction]);
  });

  it('fills a TeacherCache, each row once (fromTeacher, and cachedTeacher under the Distiller)', async () => {
    const { model, calls } = await onnxModel();
    const { tokenizer } = fixtureTokenizer(fixture);
    const teacher = transformersTeacher(model, tokenizer, { texts: fixture.sentences, batchSize: 16 });
    const ids = Array.from({ length: N }, (_, i) => i);
    const x = tf.tensor1d(ids, 'int32');
    const cache = await TeacherCache.fromTeacher(teacher, { x, ids }, { batchSize: 20 });
    x.dispose();
    expect(cache.size).toBe(N);
    expect(maxDiff(cache.lookup(ids), fixture.logits.flat())).toBeLessThan(1e-4);
    expect(calls.count).toBe(2 + 1); // 20 ids → 16 + 4, then 14 ids → one call

    // The Tang path: the student reads token ids of its own (here: the fixture's), the teacher the sentences, by id.
    const cached = cachedTeacher(transformersTeacher(model, tokenizer, { texts: fixture.sentences }));
    const student = withSeed(0, () =>
      tfl.sequential({
        layers: [
          tfl.layers.embedding({ inputDim: 2000, outputDim: 8, inputLength: 8 }),
          tfl.layers.globalAveragePooling1d({}),
          tfl.layers.dense({ units: 2 }),
        ],
      }),
    );
    const tokens = fixture.inputIds.map((row) => [...row.slice(0, 8), ...new Array<number>(Math.max(0, 8 - row.length)).fill(0)]);
    const dataset = {
      iterator: async () => {
        let start = 0;
        return {
          next: async (): Promise<IteratorResult<DistillationBatch>> => {
            if (start >= N) return { done: true, value: undefined };
            const end = Math.min(N, start + 10);
            const value = { xs: tf.tensor2d(tokens.slice(start, end), [end - start, 8], 'int32'), id: tf.range(start, end, 1, 'int32') };
            start = end;
            return { done: false, value };
          },
        };
      },
    };
    const before = tf.memory().numTensors;
    const optimizer = tf.train.adam(0.01);
    const distiller = new Distiller({ teacher: cached, student });
    distiller.compile({ optimizer, kind: 'mse', alpha: 0 });
    const modelCallsBefore = calls.count;
    await distiller.fitDataset(dataset, { epochs: 3 });
    expect(cached.teacherCalls).toBe(Math.ceil(N / 10));
    expect(calls.count - modelCallsBefore).toBe(Math.ceil(N / 10));
    expect(cached.cache.size).toBe(N);
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    student.dispose();
  });
});

describe('transformersTeacher: errors', () => {
  const ids = () => tf.tensor1d([0, 1, 2], 'int32');
  const stub = (logits: TransformersTensorLike | undefined, disposed: string[]): TransformersModelLike => async () => ({
    ...(logits === undefined ? {} : { logits: { ...logits, dispose: () => disposed.push('logits') } }),
  });
  const tokenizerOf = (disposed: string[]) => (texts: string[]) => ({
    input_ids: { type: 'int64', dims: [texts.length, 1], data: new BigInt64Array(texts.length), dispose: () => disposed.push('input_ids') },
  });
  const floats = (dims: number[], fill = 0): TransformersTensorLike => ({
    type: 'float32',
    dims,
    data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill),
  });

  it('no ids in the batch: IDS_REQUIRED; an id without a sentence: MISSING_ID', async () => {
    const disposed: string[] = [];
    const teacher = transformersTeacher(stub(floats([3, 2]), disposed), tokenizerOf(disposed), { texts: ['a', 'b'] });
    const x = ids();
    const noIds = await rejection(() => teacher.predict(x, { temperature: 1 }));
    expect(noIds).toBeInstanceOf(KdConfigError);
    expect(noIds.code).toBe('IDS_REQUIRED');
    const missing = await rejection(() => teacher.predict(x, { temperature: 1, ids: x }));
    expect(missing).toBeInstanceOf(KdDataError);
    expect(missing.code).toBe('MISSING_ID');
    expect(missing.message).toMatch(/no sentence for id 2 \(batch row 2\)/);
    x.dispose();
  });

  it.each([
    ['logits of the wrong shape', floats([3, 2, 1]), 'BATCH_SIZE_MISMATCH', KdShapeError],
    ['no logits', undefined, 'INVALID_TEACHER', KdConfigError],
    ['NaN logits', floats([3, 2], NaN), 'NON_FINITE_TEACHER_OUTPUT', KdDataError],
    ['int64 logits', { type: 'int64', dims: [3, 2], data: new BigInt64Array(6) }, 'INVALID_TEACHER', KdConfigError],
  ])('%s: %s, every tensor disposed', async (_, logits, code, kind) => {
    const disposed: string[] = [];
    const teacher = transformersTeacher(stub(logits, disposed), tokenizerOf(disposed), { texts: ['a', 'b', 'c'] });
    const x = ids();
    const error = await rejection(() => teacher.predict(x, { temperature: 1, ids: x }));
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(code);
    expect(disposed).toEqual(logits === undefined ? ['input_ids'] : ['input_ids', 'logits']);
    x.dispose();
  });

  it('the model or tokenizer throwing: TEACHER_FAILED with the cause, the encoding disposed', async () => {
    const disposed: string[] = [];
    const boom = new Error('session failed');
    const teacher = transformersTeacher(async () => Promise.reject(boom), tokenizerOf(disposed), { texts: ['a', 'b', 'c'] });
    const x = ids();
    const error = await rejection(() => teacher.predict(x, { temperature: 1, ids: x }));
    expect(error.code).toBe('TEACHER_FAILED');
    expect(error.cause).toBe(boom);
    expect(error.message).toMatch(/model failed on 3 sentence\(s\)/);
    expect(disposed).toEqual(['input_ids']);
    const failingTokenizer = transformersTeacher(stub(floats([3, 2]), disposed), () => {
      throw new Error('bad text');
    }, { texts: ['a', 'b', 'c'] });
    expect((await rejection(() => failingTokenizer.predict(x, { temperature: 1, ids: x }))).message).toMatch(/tokenizer failed/);
    x.dispose();
  });

  it('bad arguments are refused when the teacher is made', () => {
    const model = stub(floats([1, 2]), []);
    const tokenizer = tokenizerOf([]);
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as KdConfigError).code;
      }
      return undefined;
    };
    expect(codeOf(() => transformersTeacher({} as never, tokenizer, { texts: [] }))).toBe('INVALID_TEACHER');
    expect(codeOf(() => transformersTeacher({ model } as never, { texts: [] }))).toBe('INVALID_TEACHER');
    expect(codeOf(() => transformersTeacher(model, tokenizer, {} as never))).toBe('INVALID_OPTION');
    expect(codeOf(() => transformersTeacher(model, tokenizer, { texts: [], batchSize: 0 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => transformersTeacher(model, tokenizer, { texts: [], maxLength: 1.5 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => transformersTeacher(model, tokenizer, { texts: [], outputs: 'scores' as never }))).toBe('INVALID_OPTION');
  });
});
