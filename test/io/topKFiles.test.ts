import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { distillationLoss, TeacherCache } from '../../src/index.js';
import type { TopKLogits } from '../../src/losses/index.js';
import {
  alignTeacherOutputs,
  encodeNpyTopKTeacherOutputs,
  readJsonlTeacherOutputs,
  readNpyTopKTeacherOutputs,
  type TeacherOutputBatch,
} from '../../src/io/index.js';
import { npyHeader } from '../../src/io/npy.js';
import { readTeacherCache, readTeacherOutputs, writeTeacherOutputs, writeTeacherShards } from '../../src/node/index.js';

const FIXTURES = path.join(__dirname, 'fixtures');
const expected = JSON.parse(await fs.readFile(path.join(FIXTURES, 'topk_expected.json'), 'utf8')) as {
  ids: string[];
  numClasses: number;
  k: number;
  temperature: number;
  topIds: number[][];
  topLogitsBits: number[][];
  studentBits: number[][];
  loss: number;
};
const floats = (bits: number[][]) => Array.from(new Float32Array(Uint32Array.from(bits.flat()).buffer));
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kd-topk-'));
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

async function collect(batches: AsyncIterable<TeacherOutputBatch>) {
  const out = { ids: [] as unknown[], topIds: [] as number[], logits: [] as number[], k: 0 };
  for await (const b of batches) {
    out.ids.push(...b.ids);
    out.topIds.push(...b.topIds!);
    out.logits.push(...b.logits);
    out.k = b.numClasses;
  }
  return out;
}

function topKCache(rows: number, classes: number, k: number): TeacherCache {
  const cache = new TeacherCache({ topK: k });
  const values = Float32Array.from({ length: rows * classes }, (_, i) => Math.fround(Math.sin(i * 12.9898) * 43758.5453) % 7);
  cache.set(Array.from({ length: rows }, (_, i) => i), values);
  return cache;
}

describe('top-k teacher files', () => {
  it('reads the Python-made JSONL and NPY pair (int64 class ids) bit for bit', async () => {
    for (const file of ['topk.jsonl', 'topk.npy', 'topk.top_logits.npy']) {
      const got = await collect(readTeacherOutputs(path.join(FIXTURES, file), { numClasses: expected.numClasses }));
      expect(got.ids).toEqual(expected.ids);
      expect(got.k).toBe(expected.k);
      expect(got.topIds).toEqual(expected.topIds.flat());
      expect(got.logits).toEqual(floats(expected.topLogitsBits));
    }
  });

  it('a top-k file row gives the PyTorch float64 top-k loss', async () => {
    const cache = await readTeacherCache(path.join(FIXTURES, 'topk.jsonl'));
    expect(cache.topK).toBe(expected.k);
    const ids = tf.tensor1d(expected.ids, 'string');
    const top = (await cache.predict(tf.zeros([1]), { temperature: expected.temperature, ids })) as TopKLogits;
    const student = tf.tensor2d(floats(expected.studentBits), [expected.ids.length, expected.numClasses]);
    const loss = distillationLoss(student, top, { temperature: expected.temperature });
    expect(Math.abs(loss.dataSync()[0]! - expected.loss) / expected.loss).toBeLessThan(2e-5);
    tf.dispose([ids, top.ids, top.logits, student, loss]);
  });

  it('writes a top-k cache as JSONL, NPY pair and NPY shards that read back identical', async () => {
    const cache = topKCache(300, 40, 5);
    const want = await collect((async function* () { yield* cache.batches(128); })());
    for (const file of ['rt.jsonl', 'rt.npy']) {
      const written = await writeTeacherOutputs(cache, path.join(dir, file));
      expect(written.rows).toBe(300);
      const back = await readTeacherCache(path.join(dir, file), { numClasses: 40 });
      expect(back.topK).toBe(5);
      expect(await collect((async function* () { yield* back.batches(128); })())).toEqual(want);
    }
    expect((await fs.readdir(dir)).filter((n) => n.startsWith('rt.')).sort()).toEqual([
      'rt.ids.json',
      'rt.jsonl',
      'rt.top_ids.npy',
      'rt.top_logits.npy',
    ]);
    await writeTeacherShards(cache, path.join(dir, 'shards'), { format: 'npy', rowsPerShard: 128 });
    expect(await collect(readTeacherOutputs(path.join(dir, 'shards')))).toEqual(want);
    await expect(writeTeacherOutputs(cache, path.join(dir, 'rt.arrow'))).rejects.toMatchObject({ code: 'INVALID_TOP_K' });
    const aligned = alignTeacherOutputs([{ id: 0 }], cache.batches(), { idOf: (input: { id: number }) => input.id });
    await expect(aligned.next()).rejects.toMatchObject({ code: 'INVALID_TOP_K', message: expect.stringContaining('TeacherCache') });
  });

  it('cuts a full-logit file to top-k through readTeacherCache({ topK })', async () => {
    const full = new TeacherCache();
    full.set(['a', 'b'], [[0.5, 3, -1, 2], [7, 7, 1, 8]]);
    await writeTeacherOutputs(full, path.join(dir, 'cut-full.npy'));
    const top = await readTeacherCache(path.join(dir, 'cut-full.npy'), { topK: 2 });
    await writeTeacherOutputs(top, path.join(dir, 'cut-top.npy'));
    const back = await collect(readTeacherOutputs(path.join(dir, 'cut-top.npy'), { numClasses: 4 }));
    expect(back).toEqual({ ids: ['a', 'b'], topIds: [1, 3, 3, 0], logits: [3, 2, 8, 7], k: 2 });
  });

  it('a 1,000-class teacher file with k = 10 is at least 40 times smaller, JSONL and NPY', async () => {
    const rows = 200;
    const values = Float32Array.from({ length: rows * 1000 }, (_, i) => Math.fround(Math.cos(i * 0.731) * 6.3 + Math.sin(i * 0.017)));
    const ids = Array.from({ length: rows }, (_, i) => i);
    const full = new TeacherCache();
    full.set(ids, values);
    const top = new TeacherCache({ topK: 10 });
    top.set(ids, values);
    const bytes = async (files: string[]) => (await Promise.all(files.map((f) => fs.stat(f)))).reduce((a, s) => a + s.size, 0);
    for (const format of ['jsonl', 'npy'] as const) {
      const fullBytes = await bytes((await writeTeacherOutputs(full, path.join(dir, `size-full.${format}`))).files);
      const topBytes = await bytes((await writeTeacherOutputs(top, path.join(dir, `size-top.${format}`))).files);
      expect(fullBytes / topBytes, `${format}: ${fullBytes} / ${topBytes} bytes`).toBeGreaterThanOrEqual(40);
    }
  });

  it('refuses bad top-k JSONL rows with typed errors naming the line', async () => {
    const read = (text: string, numClasses?: number) =>
      collect(readJsonlTeacherOutputs(text, { source: 't.jsonl', ...(numClasses === undefined ? {} : { numClasses }) }));
    const row = (id: number, topIds: unknown[], logits: unknown[]) => JSON.stringify({ id, top_ids: topIds, top_logits: logits });
    await expect(read(`${row(0, [1, 2], [3, 1])}\n${row(1, [9, 2], [3, 1])}\n`, 5)).rejects.toMatchObject({
      code: 'INVALID_TOP_K_IDS',
      message: expect.stringMatching(/t\.jsonl line 2 \(id 1\).*class id 9/),
    });
    await expect(read(`${row(0, [1, 1], [3, 1])}\n`)).rejects.toMatchObject({ code: 'INVALID_TOP_K_IDS', message: expect.stringContaining('twice') });
    await expect(read(`${row(0, [1, -1], [3, 1])}\n`)).rejects.toMatchObject({ code: 'INVALID_TOP_K_IDS' });
    await expect(read(`${row(0, [1, 0.5], [3, 1])}\n`)).rejects.toMatchObject({ code: 'INVALID_TOP_K_IDS' });
    await expect(read(`${row(0, [1, 2], [3, 1])}\n${row(1, [1, 2, 3], [3, 1, 0])}\n`)).rejects.toMatchObject({
      code: 'INVALID_TOP_K',
      message: expect.stringContaining('line 2'),
    });
    await expect(read(`${row(0, [1, 2], [3])}\n`)).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
    await expect(read(`${row(0, [1, 2], [3, null])}\n`)).rejects.toMatchObject({ code: 'NON_FINITE_TEACHER_OUTPUT' });
    await expect(read(`{"id": 0, "top_ids": [1, 2]}\n`)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining('top_logits') });
    await expect(read(`${row(0, [1, 2], [3, 1])}\n{"id": 1, "logits": [1, 2]}\n`)).rejects.toMatchObject({
      code: 'INVALID_TOP_K',
      message: expect.stringContaining('one form'),
    });
  });

  it('refuses bad NPY pairs with typed errors', async () => {
    const npy = (descr: '<f4' | '<i4', rows: number, k: number, data: Float32Array | Int32Array) => {
      const header = npyHeader(rows, k, undefined, descr);
      const out = new Uint8Array(header.length + data.byteLength);
      out.set(header);
      out.set(new Uint8Array(data.buffer), header.length);
      return out;
    };
    const logits = npy('<f4', 2, 2, Float32Array.from([3, 1, 2, 0]));
    const read = (ids: Uint8Array, numClasses?: number) =>
      collect(readNpyTopKTeacherOutputs(logits, ids, ['a', 'b'], { ...(numClasses === undefined ? {} : { numClasses }), topIdsSource: 'x.top_ids.npy' }));
    expect((await read(npy('<i4', 2, 2, Int32Array.from([4, 1, 0, 2])), 5)).topIds).toEqual([4, 1, 0, 2]);
    await expect(read(npy('<i4', 2, 2, Int32Array.from([5, 1, 0, 2])), 5)).rejects.toMatchObject({
      code: 'INVALID_TOP_K_IDS',
      message: expect.stringContaining('x.top_ids.npy row 0'),
    });
    await expect(read(npy('<f4', 2, 2, Float32Array.from([4, 1, 0, 2])))).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining('int32') });
    await expect(read(npy('<i4', 2, 3, Int32Array.from([4, 1, 0, 2, 3, 6])))).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
    await expect(read(npy('<i4', 2, 2, Int32Array.from([4, 1, 0, 2])).subarray(0, 136))).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
    // The encoder writes what the reader reads.
    const batch = { ids: ['a', 'b'], logits: Float32Array.from([3, 1, 2, 0]), topIds: Int32Array.from([4, 1, 0, 2]), numClasses: 2 };
    const bytes = async (part: 'top_logits' | 'top_ids') => {
      const chunks: Uint8Array[] = [];
      for await (const c of encodeNpyTopKTeacherOutputs([batch], { rows: 2, k: 2 }, part)) chunks.push(c.slice());
      return Uint8Array.from(chunks.flatMap((c) => Array.from(c)));
    };
    const back = await collect(readNpyTopKTeacherOutputs(await bytes('top_logits'), await bytes('top_ids'), ['a', 'b']));
    expect(back).toEqual({ ids: ['a', 'b'], topIds: [4, 1, 0, 2], logits: [3, 1, 2, 0], k: 2 });
    await fs.writeFile(path.join(dir, 'lonely.top_logits.npy'), logits);
    await fs.writeFile(path.join(dir, 'lonely.ids.json'), '["a", "b"]');
    await expect(collect(readTeacherOutputs(path.join(dir, 'lonely.npy')))).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining('lonely.top_ids.npy is missing'),
    });
  });
});
