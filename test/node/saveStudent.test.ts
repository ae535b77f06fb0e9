import { mkdtemp, readFile, rm, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Distiller, KdDataError } from '../../src/index.js';
import { loadStudent, progressBar, saveStudent } from '../../src/node/index.js';
import { mlp, toyData } from '../distill/helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kd-ts-save-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('saveStudent / loadStudent', () => {
  it('round-trips a trained student with identical predictions', async () => {
    const { x, y } = toyData(32);
    const student = mlp(6, 5, 3, 2, [tfl.layers.dropout({ rate: 0.1 })]);
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    await distiller.fit(x, y, { epochs: 1 });
    await saveStudent(student, dir);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    const loaded = await loadStudent(dir);
    const a = student.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([a, b, x, y]);
  });

  it('names the problem for a missing, corrupt or truncated model', async () => {
    await expect(loadStudent(dir)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
    await writeFile(join(dir, 'model.json'), '{ not json');
    await expect(loadStudent(dir)).rejects.toBeInstanceOf(KdDataError);
    await saveStudent(mlp(6, 5, 3, 2), dir);
    await truncate(join(dir, 'weights.bin'), 10);
    await expect(loadStudent(dir)).rejects.toThrow(/hold 10 bytes but model.json describes/);
  });
});

describe('progressBar', () => {
  it('prints one line per epoch when the stream is not a terminal', async () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    const { x } = toyData(32);
    const distiller = new Distiller({ teacher: mlp(6, 8, 3, 1), student: mlp(6, 5, 3, 2) });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    await distiller.fit(x, undefined, { epochs: 2, batchSize: 8, callbacks: [progressBar({ stream })] });
    const lines = chunks.join('').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^Epoch 2\/2 loss=\d+\.\d{4} distillation_loss=\d+\.\d{4} agreement=/);
    x.dispose();
  });
});
