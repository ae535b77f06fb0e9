/**
 * The opt-in transformers.js suite (`npm run test:transformers`, after
 * `npm ci --prefix examples/onnx-teacher`): kd-ts's transformersTeacher on a
 * real transformers.js model and tokenizer, the tiny BERT of this folder,
 * loaded from disk only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pipeline } from '@huggingface/transformers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedTeacher, enableWasmTraining, TeacherCache, transformersTeacher } from '../../../src/index.js';
import { loadTinyBert, TINY_BERT } from '../tinyBert.js';

interface Fixture {
  sentences: string[];
  inputIds: number[][];
  logits: number[][];
}
const MODEL_DIR = join(import.meta.dirname, '..', TINY_BERT);
const fixture = JSON.parse(readFileSync(join(MODEL_DIR, 'fixture.json'), 'utf8')) as Fixture;
const N = fixture.sentences.length;
const SST2 = process.env.KD_SST2_DIR ?? join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'data', 'sst2');
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));

describe('transformersTeacher on transformers.js (tiny BERT, local files only)', () => {
  it('the transformers.js tokenizer gives the ids of train_tiny_bert.py\'s tokenizer', async () => {
    const { tokenizer } = await loadTinyBert();
    for (let i = 0; i < N; i++) expect(tokenizer.encode(fixture.sentences[i]!), fixture.sentences[i]).toEqual(fixture.inputIds[i]);
  });

  it('gives the logits of onnxruntime run directly on the same tokens (1e-5) and of PyTorch (1e-4)', async () => {
    const { model, tokenizer } = await loadTinyBert();
    const teacher = transformersTeacher(model, tokenizer, { texts: fixture.sentences, batchSize: 8 });
    const ids = tf.tensor1d(Array.from({ length: N }, (_, i) => i), 'int32');
    const before = tf.memory().numTensors;
    const logits = await teacher.predict(ids, { temperature: 1, ids });
    expect(tf.memory().numTensors).toBe(before + 1);
    const values = await logits.data();
    expect(maxDiff(values, fixture.logits.flat())).toBeLessThan(1e-4);

    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(readFileSync(join(MODEL_DIR, 'onnx', 'model.onnx')));
    for (let i = 0; i < N; i++) {
      const row = fixture.inputIds[i]!;
      const tensor = (fill: (v: number) => number) => new ort.Tensor('int64', BigInt64Array.from(row, (v) => BigInt(fill(v))), [1, row.length]);
      const out = await session.run({ input_ids: tensor((v) => v), attention_mask: tensor(() => 1), token_type_ids: tensor(() => 0) });
      expect(maxDiff(out.logits!.data as Float32Array, values.subarray(2 * i, 2 * i + 2))).toBeLessThan(1e-5);
    }
    expect(teacher.modelCalls).toBe(Math.ceil(N / 8));
    tf.dispose([ids, logits]);
    await model.dispose();
  });

  it('a sentence scores the same alone and padded in a batch', async () => {
    const { model, tokenizer } = await loadTinyBert();
    const teacher = transformersTeacher(model, tokenizer, { texts: [], batchSize: N, sortByLength: false });
    const together = await teacher.scoreTexts(fixture.sentences);
    const values = await together.data();
    for (let i = 0; i < N; i += 3) {
      const alone = await teacher.scoreTexts([fixture.sentences[i]!]);
      expect(maxDiff(await alone.data(), values.subarray(2 * i, 2 * i + 2))).toBeLessThan(1e-5);
      alone.dispose();
    }
    together.dispose();
    await model.dispose();
  });

  it('feeds a TeacherCache, as a model + tokenizer or as a text-classification pipeline', async () => {
    const classifier = await pipeline('text-classification', TINY_BERT, { dtype: 'fp32' });
    const teacher = transformersTeacher(classifier, { texts: fixture.sentences, batchSize: 16 });
    const ids = Array.from({ length: N }, (_, i) => i);
    const x = tf.tensor1d(ids, 'int32');
    const cache = await TeacherCache.fromTeacher(teacher, { x, ids }, { batchSize: 20 });
    x.dispose();
    expect(cache.size).toBe(N);
    expect(maxDiff(cache.lookup(ids), fixture.logits.flat())).toBeLessThan(1e-4);
    expect(teacher.rowsScored).toBe(N);
    // cachedTeacher: the second pass over the same ids reads the cache.
    const cached = cachedTeacher(teacher);
    const idTensor = tf.tensor1d(ids.slice(0, 5), 'int32');
    for (let pass = 0; pass < 2; pass++) (await cached.predict(idTensor, { temperature: 1, ids: idTensor })).dispose();
    expect(cached.teacherCalls).toBe(1);
    idTensor.dispose();
    await classifier.dispose();
  });

});

describe.skipIf(!existsSync(join(SST2, 'train.tsv')))('the SST-2 run on wasm, as the example does', () => {
  beforeAll(async () => {
    setWasmPaths(join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    // IS_TEST turns on tfjs's per-kernel data-id check, which wasm's fused matMul trips (see test/sst2).
    tf.env().set('IS_TEST', false);
    enableWasmTraining();
    expect(await tf.setBackend('wasm')).toBe(true);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('end to end on 300 rows: the transformers.js teacher scores the transfer set, the BiLSTM student distils from it', async () => {
    const { runSst2 } = await import('../sst2.js');
    const before = tf.memory().numTensors;
    const r = await runSst2({
      data: SST2,
      trainRows: 300,
      epochs: 1,
      augPasses: 1,
      augSeed: 0,
      maxLength: 50,
      teacherBatchSize: 64,
      threads: 1,
      teacherOut: undefined,
      seed: 0,
      batchSize: 50,
      learningRate: 1e-3,
      dropout: 0,
      teacherMembers: 0,
      teacherEpochs: 0,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.trainRows).toBe(300);
    expect(r.transferRows).toBeGreaterThan(300);
    // The committed model's dev accuracy (train_tiny_bert.py: 79.9 %).
    expect(r.teacher.devAccuracy).toBeCloseTo(0.7993, 3);
    expect(r.speed.map((s) => s.model)).toEqual(['teacher (tiny BERT, transformers.js)', 'BiLSTM student']);
    for (const s of r.speed) expect(s.msPer1000).toBeGreaterThan(0);
  });
});
