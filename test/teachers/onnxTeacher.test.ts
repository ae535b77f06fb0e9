import * as tf from '@tensorflow/tfjs-core';
import type * as ort from 'onnxruntime-web';
import { describe, expect, it, vi } from 'vitest';
import {
  cachedTeacher,
  computeTeacherLogits,
  Distiller,
  EnsembleTeacher,
  KdConfigError,
  KdDataError,
  KdShapeError,
  TeacherCache,
  type DistillationBatch,
} from '../../src/index.js';
import { onnxTeacher, type OnnxSessionLike, type OnnxTensorLike } from '../../src/teachers/index.js';
import { mlp } from '../distill/helpers.js';
import { countingSession, fixtureInputs, loadSession, maxDifference, readFixture } from './onnxFixtures.js';

/** Runs `f` and checks that it leaves no tfjs tensor behind (its result aside). */
async function noLeak<T>(f: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await f();
  const kept = result instanceof tf.Tensor ? 1 : 0;
  expect(tf.memory().numTensors).toBe(before + kept);
  return result;
}

/** The error `f` rejects with, checking that it leaks no tensor. */
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

const CONTEXT = { temperature: 1 };

describe('onnxTeacher: logits equal PyTorch (float64 fixtures, to 1e-4)', () => {
  it.each([
    ['mlp', 'float32 [batch, 8]'],
    ['cnn', 'MNIST CNN, float32 [batch, 784]'],
  ])('%s (%s), fed one tensor', async (name) => {
    const fixture = readFixture(name);
    const teacher = onnxTeacher(await loadSession(name));
    const [x] = Object.values(fixtureInputs(fixture));
    const logits = await noLeak(() => teacher.predict(x!, CONTEXT));
    expect(logits.dtype).toBe('float32');
    expect(await maxDifference(logits, fixture.logits)).toBeLessThan(1e-4);
    expect(teacher.runs).toBe(1);
    tf.dispose([x!, logits]);
  });

  it('two named inputs: int64 token ids (from int32) and float32 features, as a map, an array, or an array in another order', async () => {
    const fixture = readFixture('two_inputs');
    const session = await loadSession('two_inputs');
    const { token_ids: ids, features } = fixtureInputs(fixture) as Record<string, tf.Tensor>;
    expect(ids!.dtype).toBe('int32');
    const byMap = await noLeak(() => onnxTeacher(session).predict({ features: features!, token_ids: ids! }, CONTEXT));
    const byArray = await noLeak(() => onnxTeacher(session).predict([ids!, features!], CONTEXT));
    const reordered = await noLeak(() =>
      onnxTeacher(session, { inputNames: ['features', 'token_ids'] }).predict([features!, ids!], CONTEXT),
    );
    for (const logits of [byMap, byArray, reordered]) expect(await maxDifference(logits, fixture.logits)).toBeLessThan(1e-4);
    tf.dispose([ids!, features!, byMap, byArray, reordered]);
  });

  it('int32 ids and a bool mask', async () => {
    const fixture = readFixture('masked_ids');
    const inputs = fixtureInputs(fixture);
    expect(inputs.mask!.dtype).toBe('bool');
    const teacher = onnxTeacher(await loadSession('masked_ids'));
    const out = await noLeak(() => teacher.predict(inputs, CONTEXT));
    expect(await maxDifference(out, fixture.logits)).toBeLessThan(1e-4);
    tf.dispose([...Object.values(inputs), out]);
  });
});

describe('onnxTeacher: batches', () => {
  it('feeds a fixed-batch model (batch 4) in chunks of 4, padding the last, for any batch size', async () => {
    const fixture = readFixture('mlp');
    const session = countingSession(await loadSession('mlp_fixed_batch'));
    const teacher = onnxTeacher(session);
    const { features } = fixtureInputs(fixture);
    // 7 rows: one chunk of 4, one of 3 padded to 4.
    const logits = await noLeak(() => teacher.predict(features!, CONTEXT));
    expect(await maxDifference(logits, fixture.logits)).toBeLessThan(1e-4);
    expect(session.counts).toEqual({ runs: 2, rows: 8 });
    for (const rows of [1, 4, 5]) {
      const part = tf.slice(features!, [0], [rows]);
      const out = await noLeak(() => teacher.predict(part, CONTEXT));
      const expected = { shape: [rows, 3] as [number, number], data: fixture.logits.data.slice(0, rows * 3) };
      expect(await maxDifference(out, expected)).toBeLessThan(1e-4);
      tf.dispose([part, out]);
    }
    expect(session.counts.runs).toBe(2 + 1 + 1 + 2);
    tf.dispose([features!, logits]);
  });

  it('batchSize caps the rows per run of a model with a free batch dimension', async () => {
    const fixture = readFixture('mlp');
    const session = countingSession(await loadSession('mlp'));
    const { features } = fixtureInputs(fixture);
    const logits = await noLeak(() => onnxTeacher(session, { batchSize: 3 }).predict(features!, CONTEXT));
    expect(session.counts).toEqual({ runs: 3, rows: 7 });
    expect(await maxDifference(logits, fixture.logits)).toBeLessThan(1e-4);
    tf.dispose([features!, logits]);
  });

  it('passes ort.Tensor instances when given the constructor', async () => {
    const { Tensor } = await import('onnxruntime-web');
    const fixture = readFixture('two_inputs');
    const session = await loadSession('two_inputs');
    const run = vi.spyOn(session, 'run');
    const inputs = fixtureInputs(fixture);
    const logits = await noLeak(() => onnxTeacher(session, { Tensor }).predict(inputs, CONTEXT));
    const feeds = run.mock.calls[0]![0] as Record<string, unknown>;
    expect(feeds.token_ids).toBeInstanceOf(Tensor);
    expect((feeds.token_ids as ort.Tensor).type).toBe('int64');
    expect(await maxDifference(logits, fixture.logits)).toBeLessThan(1e-4);
    tf.dispose([...Object.values(inputs), logits]);
  });
});

describe('onnxTeacher: errors name the model inputs, leak nothing', () => {
  const twoInputs = async () => {
    const inputs = fixtureInputs(readFixture('two_inputs'));
    return { teacher: onnxTeacher(await loadSession('two_inputs')), ids: inputs.token_ids!, features: inputs.features! };
  };
  const described = /token_ids \(int64 \[batch, 6\]\), features \(float32 \[batch, 4\]\)/;

  it('an input name the model lacks, a missing input, one tensor for two inputs', async () => {
    const { teacher, ids, features } = await twoInputs();
    for (const [x, pattern] of [
      [{ token_ids: ids, features, extra: features }, /no input named "extra"/],
      [{ token_ids: ids }, /needs the input "features"/],
      [ids, /got 1 input tensor\(s\) for 2 model input\(s\)/],
    ] as const) {
      const error = await rejection(() => teacher.predict(x as never, CONTEXT));
      expect(error).toBeInstanceOf(KdShapeError);
      expect(error.code).toBe('MISSING_INPUT');
      expect(error.message).toMatch(pattern);
      expect(error.message).toMatch(described);
    }
    tf.dispose([ids, features]);
  });

  it('a wrong dtype: float32 token ids, int32 features', async () => {
    const { teacher, ids, features } = await twoInputs();
    const floatIds = tf.cast(ids, 'float32');
    const intFeatures = tf.cast(features, 'int32');
    const first = await rejection(() => teacher.predict({ token_ids: floatIds, features }, CONTEXT));
    expect(first).toBeInstanceOf(KdShapeError);
    expect(first.code).toBe('INPUT_DTYPE_MISMATCH');
    expect(first.message).toMatch(/"token_ids" is a float32 tensor but the model reads int64: cast it first: tf.cast\(x, 'int32'\)/);
    expect(first.message).toMatch(described);
    const second = await rejection(() => teacher.predict({ token_ids: ids, features: intFeatures }, CONTEXT));
    expect(second.code).toBe('INPUT_DTYPE_MISMATCH');
    tf.dispose([ids, features, floatIds, intFeatures]);
  });

  it('a wrong rank or width', async () => {
    const { teacher, ids, features } = await twoInputs();
    const flat = tf.reshape(ids, [-1]);
    const wide = tf.concat([features, features], 1);
    const rank = await rejection(() => teacher.predict({ token_ids: flat, features }, CONTEXT));
    expect(rank.code).toBe('RANK_MISMATCH');
    expect(rank.message).toMatch(described);
    const width = await rejection(() => teacher.predict({ token_ids: ids, features: wide }, CONTEXT));
    expect(width.code).toBe('INPUT_SHAPE_MISMATCH');
    expect(width.message).toMatch(/axis 1 must be 4/);
    tf.dispose([ids, features, flat, wide]);
  });

  it('inputs with different row counts', async () => {
    const { teacher, ids, features } = await twoInputs();
    const fewer = tf.slice(features, [0], [3]);
    const error = await rejection(() => teacher.predict({ token_ids: ids, features: fewer }, CONTEXT));
    expect(error.code).toBe('LENGTH_MISMATCH');
    tf.dispose([ids, features, fewer]);
  });

  it('onnxruntime failing (a token id out of range) is TEACHER_FAILED, its error the cause', async () => {
    const { teacher, ids, features } = await twoInputs();
    const outOfRange = tf.fill(ids.shape, 999, 'int32');
    const error = await rejection(() => teacher.predict({ token_ids: outOfRange, features }, CONTEXT));
    expect(error).toBeInstanceOf(KdConfigError);
    expect(error.code).toBe('TEACHER_FAILED');
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toMatch(/Fed token_ids: int64 \[7, 6\], features: float32 \[7, 4\]/);
    expect(error.message).toMatch(described);
    tf.dispose([ids, features, outOfRange]);
  });

  it('NaN outputs are NON_FINITE_TEACHER_OUTPUT, naming the row', async () => {
    const fixture = readFixture('mlp');
    const teacher = onnxTeacher(await loadSession('mlp'));
    const { features } = fixtureInputs(fixture);
    const withNaN = tf.tidy(() => tf.concat([tf.slice(features!, [0], [2]), tf.fill([1, 8], NaN), tf.slice(features!, [3], [4])]));
    const error = await rejection(() => teacher.predict(withNaN, CONTEXT));
    expect(error).toBeInstanceOf(KdDataError);
    expect(error.code).toBe('NON_FINITE_TEACHER_OUTPUT');
    expect(error.message).toMatch(/batch row 2/);
    tf.dispose([features!, withNaN]);
  });

  it('bad options and non-sessions are refused when the teacher is made', async () => {
    const session = await loadSession('two_inputs');
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return [(e as KdConfigError).constructor.name, (e as KdConfigError).code, (e as Error).message];
      }
      return undefined;
    };
    expect(codeOf(() => onnxTeacher(session, { inputNames: ['ids'] }))).toEqual([
      'KdConfigError',
      'INVALID_TEACHER',
      expect.stringMatching(described),
    ]);
    expect(codeOf(() => onnxTeacher(session, { outputName: 'probs' }))?.[1]).toBe('INVALID_TEACHER');
    expect(codeOf(() => onnxTeacher(session, { batchSize: 0 }))?.[1]).toBe('INVALID_OPTION');
    expect(codeOf(() => onnxTeacher(session, { outputs: 'scores' as never }))?.[1]).toBe('INVALID_OPTION');
    expect(codeOf(() => onnxTeacher({} as never))?.[1]).toBe('INVALID_TEACHER');
    const twoOutputs: OnnxSessionLike = { inputNames: ['x'], outputNames: ['a', 'b'], run: async () => ({}) };
    expect(codeOf(() => onnxTeacher(twoOutputs))?.[2]).toMatch(/2 outputs \(a, b\): pass outputName/);
  });

  it('an output of the wrong shape is refused, and every onnxruntime output is disposed', async () => {
    const disposed: string[] = [];
    const tensor = (name: string, dims: number[]): OnnxTensorLike => ({
      type: 'float32',
      dims,
      data: new Float32Array(dims.reduce((a, b) => a * b, 1)),
      dispose: () => disposed.push(name),
    });
    const session: OnnxSessionLike = {
      inputNames: ['x'],
      outputNames: ['logits', 'hidden'],
      run: async () => ({ logits: tensor('logits', [3, 2, 2]), hidden: tensor('hidden', [3, 5]) }),
    };
    const x = tf.ones([3, 4]);
    const error = await rejection(() => onnxTeacher(session).predict(x, CONTEXT));
    expect(error.code).toBe('BATCH_SIZE_MISMATCH');
    expect(disposed.sort()).toEqual(['hidden', 'logits']);
    x.dispose();
  });

  it('without metadata (older onnxruntime) it feeds by tfjs dtype and still names the inputs', async () => {
    const real = await loadSession('two_inputs');
    const bare: OnnxSessionLike = { inputNames: real.inputNames, outputNames: real.outputNames, run: (f, o) => real.run(f as never, o as never) };
    const { token_ids: ids, features } = fixtureInputs(readFixture('two_inputs'));
    // int32 ids go as int32, which this model refuses: onnxruntime's error, wrapped.
    const error = await rejection(() => onnxTeacher(bare).predict({ token_ids: ids!, features: features! }, CONTEXT));
    expect(error.code).toBe('TEACHER_FAILED');
    expect(error.message).toMatch(/Model inputs: token_ids \(type unknown\), features \(type unknown\)/);
    tf.dispose([ids!, features!]);
  });
});

describe('onnxTeacher in kd-ts', () => {
  /** Features the fixture MLP teacher reads, and held-out ones. */
  const data = (rows: number, seed: number) => tf.tidy(() => tf.randomNormal([rows, 8], 0, 1, 'float32', seed));

  it('a tfjs student distils from it (agreement ≥ 0.9 on held-out rows); the teacher runs once per batch', async () => {
    const session = countingSession(await loadSession('mlp'));
    const teacher = onnxTeacher(session);
    const student = mlp(8, 32, 3, 1);
    const x = data(512, 1);
    const heldOut = data(256, 2);
    const before = tf.memory().numTensors;
    const optimizer = tf.train.adam(0.01);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer, temperature: 2 });
    await distiller.fit(x, undefined, { epochs: 25, batchSize: 64, seed: 0 });
    expect(session.counts).toEqual({ runs: 25 * 8, rows: 25 * 512 });
    const logs = await distiller.evaluate(heldOut);
    expect(logs.agreement).toBeGreaterThanOrEqual(0.9);
    optimizer.dispose(); // Adam's moments: the Distiller leaves the optimizer to its owner
    expect(tf.memory().numTensors).toBe(before);
    student.dispose();
    tf.dispose([x, heldOut]);
  });

  it('cachedTeacher runs the session once per row, whatever the epochs', async () => {
    const session = countingSession(await loadSession('mlp'));
    const teacher = cachedTeacher(onnxTeacher(session));
    const student = mlp(8, 16, 3, 2);
    const rows = 96;
    const x = data(rows, 3);
    const batches = (): AsyncIterator<DistillationBatch> => {
      let start = 0;
      return {
        next: async () => {
          if (start >= rows) return { done: true, value: undefined };
          const size = Math.min(32, rows - start);
          const value = { xs: tf.slice(x, [start], [size]), id: tf.range(start, start + size, 1, 'int32') };
          start += size;
          return { done: false, value };
        },
      };
    };
    const optimizer = tf.train.adam(0.01);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer, temperature: 2 });
    await distiller.fitDataset({ iterator: async () => batches() }, { epochs: 4 });
    expect(session.counts).toEqual({ runs: 3, rows });
    expect(teacher.teacherCalls).toBe(3);
    expect(teacher.cache.size).toBe(rows);
    optimizer.dispose();
    student.dispose();
    x.dispose();
  });

  it('computeTeacherLogits, TeacherCache.fromTeacher and EnsembleTeacher take it', async () => {
    const fixture = readFixture('mlp');
    const { features } = fixtureInputs(fixture);
    const dynamic = onnxTeacher(await loadSession('mlp'));
    const fixed = onnxTeacher(await loadSession('mlp_fixed_batch'));
    const logits = await noLeak(() => computeTeacherLogits(fixed, features!, { batchSize: 3 }));
    expect(await maxDifference(logits, fixture.logits)).toBeLessThan(1e-4);
    const cache = await TeacherCache.fromTeacher(dynamic, { x: features!, ids: [10, 11, 12, 13, 14, 15, 16] }, { batchSize: 5 });
    const row = cache.lookup([12]);
    fixture.logits.data.slice(6, 9).forEach((v, c) => expect(row[c]).toBeCloseTo(v, 4));
    const ensemble = new EnsembleTeacher([dynamic, fixed], { combine: 'mean-logits' });
    const mean = await noLeak(async () => ensemble.predict(features!, CONTEXT));
    // Same weights, so the geometric mean of two equal distributions: the same logits up to a per-row constant.
    const centred = tf.tidy(() => tf.sub(mean, tf.mean(mean, 1, true)));
    const expected = tf.tidy(() => {
      const t = tf.tensor2d(fixture.logits.data, fixture.logits.shape);
      return tf.sub(t, tf.mean(t, 1, true));
    });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(centred, expected)))).dataSync()[0]).toBeLessThan(1e-4);
    tf.dispose([features!, logits, mean, centred, expected]);
  });
});
