import { mkdtemp, readFile, rm, stat, writeFile, truncate } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** Serves a directory over HTTP, as a browser would fetch a saved model. */
async function serve(directory: string): Promise<{ server: Server; url: string }> {
  const server = createServer(async (request, response) => {
    try {
      const body = await readFile(join(directory, (request.url ?? '/').slice(1)));
      response.writeHead(200, { 'content-type': request.url?.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('saveStudent with quantize', () => {
  const model = () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 64, activation: 'relu', inputShape: [784], kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
        tfl.layers.dense({ units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });

  it('writes tfjs quantized weights that stock tf.loadLayersModel reads over HTTP and loadStudent reads from disk', async () => {
    const student = model();
    const x = tf.randomUniform([500, 784], 0, 1, 'float32', 3);
    const reference = student.predict(x) as tf.Tensor;
    await saveStudent(student, join(dir, 'float32'));
    const floatBytes = (await stat(join(dir, 'float32', 'weights.bin'))).size;
    const { server, url } = await serve(dir);
    try {
      for (const quantize of ['uint8', 'uint16', 'float16'] as const) {
        // Saving quantized and loading back leave no tensor behind.
        const before = tf.memory().numTensors;
        const result = await saveStudent(student, join(dir, quantize), { quantize });
        const bytes = (await stat(join(dir, quantize, 'weights.bin'))).size;
        expect(bytes / floatBytes).toBeLessThanOrEqual(quantize === 'uint8' ? 0.3 : 0.55);
        expect(result.quantization).toMatchObject({ dtype: quantize, bytesBefore: floatBytes, bytesAfter: bytes });
        // The 784 × 64 kernel is quantized; the biases and the 64 × 10 output kernel stay float32.
        expect(result.quantization!.weights.map((w) => w.storedAs)).toEqual([quantize, 'float32', 'float32', 'float32']);
        const json = JSON.parse(await readFile(join(dir, quantize, 'model.json'), 'utf8'));
        expect(json.weightsManifest[0].weights[0].quantization.dtype).toBe(quantize);

        for (const loaded of [await tfl.loadLayersModel(`${url}/${quantize}/model.json`), await loadStudent(join(dir, quantize))]) {
          const predicted = loaded.predict(x) as tf.Tensor;
          const agree = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(predicted, -1), tf.argMax(reference, -1)), 'float32')).dataSync()[0]!);
          expect(agree).toBeGreaterThanOrEqual(0.95);
          predicted.dispose();
          loaded.dispose();
        }
        expect(tf.memory().numTensors).toBe(before);
      }
    } finally {
      server.close();
      tf.dispose([x, reference]);
      student.dispose();
    }
  });

  it('loadStudent names a corrupt quantization entry (stock tfjs loads NaN weights or throws a plain Error)', async () => {
    const student = model();
    await saveStudent(student, dir, { quantize: 'uint8' });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const edit = async (change: (q: Record<string, unknown>) => void) => {
      const copy = structuredClone(json);
      change(copy.weightsManifest[0].weights[0].quantization);
      await writeFile(join(dir, 'model.json'), JSON.stringify(copy));
    };
    await edit((q) => (q.min = 'NaN'));
    // Stock tfjs, reading the same files over HTTP: no error, NaN weights.
    const { server, url } = await serve(dir);
    const stock = await tfl.loadLayersModel(`${url}/model.json`).finally(() => server.close());
    expect(Number.isNaN(stock.getWeights()[0]!.dataSync()[0])).toBe(true);
    stock.dispose();
    await expect(loadStudent(dir)).rejects.toMatchObject({ name: 'KdDataError', code: 'CORRUPT_FILE', message: expect.stringMatching(/min "NaN"/) });
    await edit((q) => (q.dtype = 'uint4'));
    await expect(loadStudent(dir)).rejects.toThrow(/quantization dtype "uint4"/);
    await edit((q) => delete q.scale);
    await expect(loadStudent(dir)).rejects.toThrow(/scale missing/);
    student.dispose();
  });

  it('refuses an unknown quantization with a typed error, writing nothing', async () => {
    const student = model();
    await expect(saveStudent(student, join(dir, 'bad'), { quantize: 'int8' as 'uint8' })).rejects.toMatchObject({ name: 'KdConfigError', code: 'INVALID_OPTION' });
    await expect(stat(join(dir, 'bad', 'model.json'))).rejects.toThrow();
    student.dispose();
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
