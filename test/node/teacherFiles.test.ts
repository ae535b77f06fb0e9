import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Distiller, TeacherCache, type ExampleId, type TeacherOutputBatch } from '../../src/index.js';
import { zipTeacherOutputs } from '../../src/teachers/index.js';
import { mlp } from '../distill/helpers.js';
import {
  listTeacherShards,
  readTeacherCache,
  readTeacherOutputs,
  writeTeacherOutputs,
  writeTeacherShards,
} from '../../src/node/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kd-ts-teacher-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const C = 5;
/** Values that a careless text writer would not round-trip: -0, subnormals, max float, 0.1. */
function trickyCache(ids: ExampleId[]): TeacherCache {
  const values = new Float32Array(ids.length * C);
  const specials = [-0, 1e-45, 3.4028234663852886e38, 0.1, 1 / 3, -1.1754942e-38, 65504.0078125];
  for (let k = 0; k < values.length; k++) values[k] = k < specials.length ? specials[k]! : Math.sin(k) * 10 ** ((k % 9) - 4);
  const cache = new TeacherCache();
  cache.set(ids, values);
  return cache;
}

async function collect(batches: AsyncIterable<TeacherOutputBatch> | Iterable<TeacherOutputBatch>) {
  const ids: ExampleId[] = [];
  const parts: Float32Array[] = [];
  for await (const b of batches) {
    ids.push(...b.ids);
    parts.push(b.logits.slice());
  }
  const values = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    values.set(p, o);
    o += p.length;
  }
  return { ids, bits: Array.from(new Uint32Array(values.buffer)) };
}

const bitsOf = (cache: TeacherCache) => collect(cache.batches(7));

describe('writeTeacherOutputs / readTeacherOutputs', () => {
  const files = ['t.jsonl', 't.npy', 't.arrow', 't.arrows'];
  for (const name of files) {
    for (const kind of ['int', 'string'] as const) {
      it(`round-trips ${name} with ${kind} ids bit for bit`, async () => {
        const ids = Array.from({ length: 23 }, (_, i) => (kind === 'int' ? i * 3 + 1 : `ex-${i}-"é"`));
        const cache = trickyCache(ids);
        const file = join(dir, name);
        const written = await writeTeacherOutputs(cache, file, name.endsWith('.arrows') ? { arrowFormat: 'stream' } : {});
        expect(written.rows).toBe(23);
        const back = await readTeacherCache(file, { batchSize: 4 });
        expect(await bitsOf(back)).toEqual(await bitsOf(cache));
        expect(back.idKind).toBe(kind === 'int' ? 'number' : 'string');
        // Nothing but the outputs (and the NPY id list) is left in the directory.
        expect((await readdir(dir)).sort()).toEqual(name === 't.npy' ? ['t.ids.json', 't.npy'] : [name]);
      });
    }
  }

  it('reads the numpy fixtures from disk, finding the id list next to the .npy', async () => {
    const fixtures = join(__dirname, '..', 'io', 'fixtures');
    const expected = JSON.parse(await readFile(join(fixtures, 'expected.json'), 'utf8'));
    const f64 = await collect(readTeacherOutputs(join(fixtures, 'teacher_f64.npy')));
    expect(f64.ids).toEqual(expected.idsInt);
    expect(f64.bits).toEqual(expected.f64AsF32Bits);
    const jsonl = await collect(readTeacherOutputs(join(fixtures, 'teacher_str.jsonl')));
    expect(jsonl.bits).toEqual(expected.f32Bits);
  });

  it('converts between formats as a stream', async () => {
    const cache = trickyCache(Array.from({ length: 40 }, (_, i) => i));
    await writeTeacherShards(cache, join(dir, 'in'), { format: 'jsonl', rowsPerShard: 9 });
    await writeTeacherOutputs(readTeacherOutputs(join(dir, 'in')), join(dir, 'out.npy'));
    await writeTeacherOutputs(readTeacherOutputs(join(dir, 'out.npy')), join(dir, 'out.arrow'));
    expect(await collect(readTeacherOutputs(join(dir, 'out.arrow')))).toEqual(await bitsOf(cache));
  });

  it('leaves the previous file and no temporary file when a write fails', async () => {
    for (const name of ['t.jsonl', 't.npy', 't.arrow']) {
      const file = join(dir, name);
      await writeTeacherOutputs(trickyCache([1, 2]), file);
      const before = await readFile(file);
      async function* failing(): AsyncGenerator<TeacherOutputBatch> {
        yield { ids: [7], logits: new Float32Array(C), numClasses: C };
        throw new Error('disk full');
      }
      await expect(writeTeacherOutputs(failing(), file)).rejects.toThrow('disk full');
      expect(await readFile(file)).toEqual(before);
      expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    }
  });

  it('names the file for truncated files', async () => {
    const cache = trickyCache(Array.from({ length: 10 }, (_, i) => `id${i}`));
    for (const [name, pattern] of [
      ['t.npy', /t\.npy's header says 10 rows of 5 <f4 values but the data stops after/],
      ['t.arrow', /t\.arrow: the ARROW1 magic at the end of the file is missing/],
      ['t.arrows', /t\.arrows: the end-of-stream marker is missing/],
      ['t.jsonl', /t\.jsonl line 10 \(id "id9"\): invalid JSON .*truncated/],
    ] as const) {
      const file = join(dir, name);
      await writeTeacherOutputs(cache, file, name === 't.arrows' ? { arrowFormat: 'stream' } : {});
      const size = (await readFile(file)).length;
      await truncate(file, size - 12);
      await expect(collect(readTeacherOutputs(file))).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(pattern) });
    }
  });

  it('names what is missing: the file, the NPY id list, an unknown extension', async () => {
    await expect(collect(readTeacherOutputs(join(dir, 'nope.jsonl')))).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
    await writeTeacherOutputs(trickyCache([1]), join(dir, 'a.npy'));
    await rm(join(dir, 'a.ids.json'));
    await expect(collect(readTeacherOutputs(join(dir, 'a.npy')))).rejects.toThrow(/a\.npy has no id list: write the ids next to it as a\.ids\.json/);
    await writeFile(join(dir, 'a.csv'), 'x');
    await expect(collect(readTeacherOutputs(join(dir, 'a.csv')))).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('shards', () => {
  it('writes part-NNNNN files and _SUCCESS, and reads them back in name order as one stream', async () => {
    for (const format of ['jsonl', 'npy', 'arrow'] as const) {
      const cache = trickyCache(Array.from({ length: 20 }, (_, i) => `s${i}`));
      const shards = join(dir, format);
      const written = await writeTeacherShards(cache, shards, { format, rowsPerShard: 7 });
      expect(written.rows).toBe(20);
      const names = (await readdir(shards)).sort();
      expect(names).toContain('_SUCCESS');
      const { files } = await listTeacherShards(shards);
      expect(files.map((f) => f.slice(shards.length + 1))).toEqual(['part-00000', 'part-00001', 'part-00002'].map((p) => `${p}.${format}`));
      await writeFile(join(shards, '.part-00000.crc'), 'checksum');
      expect(await collect(readTeacherOutputs(shards, { batchSize: 3 }))).toEqual(await bitsOf(cache));
    }
  });

  it('names the file and line of an id found in two shards', async () => {
    await writeTeacherShards(trickyCache([1, 2, 3]), dir, { format: 'jsonl', rowsPerShard: 2 });
    await writeFile(join(dir, 'part-00002.jsonl'), `{"id": 2, "logits": [0, 0, 0, 0, 0]}\n`);
    await expect(readTeacherCache(dir)).rejects.toMatchObject({
      code: 'DUPLICATE_ID',
      message: expect.stringContaining(`${join(dir, 'part-00002.jsonl')} line 1 (id 2): this id is already in the cache`),
    });
  });

  it("reads Spark's df.write.json output (part-*-c000.json JSON Lines, .crc files, _SUCCESS)", async () => {
    const line = (id: number) => JSON.stringify({ id, logits: [id, 1] });
    await writeFile(join(dir, 'part-00001-5f1c-c000.json'), `${line(2)}\n${line(3)}\n`);
    await writeFile(join(dir, 'part-00000-5f1c-c000.json'), `${line(0)}\n${line(1)}\n`);
    await writeFile(join(dir, '.part-00000-5f1c-c000.json.crc'), 'x');
    await writeFile(join(dir, '_SUCCESS'), '');
    const got = await collect(readTeacherOutputs(dir));
    expect(got.ids).toEqual([0, 1, 2, 3]);
  });

  it('streams shards from disk into Distiller.fitDataset with zipTeacherOutputs', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => i);
    const cache = new TeacherCache();
    cache.set(ids, ids.map((i) => [i / 10, -i / 10, 1]));
    await writeTeacherShards(cache, dir, { format: 'npy', rowsPerShard: 8 });
    const { dataset, teacher } = zipTeacherOutputs(
      () => ids.map((id) => ({ id, x: [id / 30, 1 - id / 30] })),
      () => readTeacherOutputs(dir),
      { batchSize: 7, toTensors: (rows) => ({ xs: tf.tensor2d(rows.map((r) => r.x)) }) },
    );
    const distiller = new Distiller({ teacher, student: mlp(2, 4, 3, 1) });
    distiller.compile({ optimizer: tf.train.sgd(0.1), temperature: 2 });
    const before = tf.memory().numTensors;
    const history = await distiller.fitDataset(dataset, { epochs: 2 });
    expect(history.history.loss!.length).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a directory mixing formats, or holding none', async () => {
    await expect(listTeacherShards(dir)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await writeTeacherOutputs(trickyCache([1]), join(dir, 'part-00000.jsonl'));
    await writeTeacherOutputs(trickyCache([2]), join(dir, 'part-00001.arrow'));
    await expect(listTeacherShards(dir)).rejects.toThrow(/mixes formats/);
    expect((await listTeacherShards(dir, 'arrow')).files.length).toBe(1);
  });
});
