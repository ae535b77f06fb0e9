/**
 * Teacher scoring speed (rows per second) of the ONNX and transformers.js
 * teachers, as a transfer set is scored: the MNIST CNN through onnxTeacher
 * on onnxruntime-web (WebAssembly), and the tiny BERT through
 * transformersTeacher on onnxruntime-node (transformers.js's runtime in Node)
 * and on onnxruntime-web (the same tokenizer, the session run by
 * onnxruntime-web: the runtime transformers.js uses in browsers). One thread
 * each; median of 5 passes after a warm-up. Results go to docs/benchmarks.md.
 *
 * Run: `npx tsx examples/onnx-teacher/bench.ts [--data ../shared/data/sst2]`
 * (after `npm ci --prefix examples/onnx-teacher`). Without SST-2, the BERT
 * rows score the tiny BERT's fixture sentences, repeated to 872.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as ort from 'onnxruntime-web';
import { onnxTeacher, transformersTeacher, type TransformersModelLike } from '../../src/index.js';
import { loadMnistSplit } from '../shared/mnist.js';
import { printMarkdownTable } from '../shared/table.js';
import { readSplit } from '../sst2/data.js';
import { CNN_ONNX } from './mnist.js';
import { loadTinyBert, TINY_BERT } from './tinyBert.js';

const PASSES = 5;

async function rowsPerSecond(rows: number, pass: () => Promise<void>): Promise<number> {
  await pass();
  const times: number[] = [];
  for (let r = 0; r < PASSES; r++) {
    const started = performance.now();
    await pass();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return rows / (times[Math.floor(PASSES / 2)]! / 1000);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { data: { type: 'string' } } });
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  ort.env.wasm.numThreads = 1;
  const table: string[][] = [];

  // The MNIST CNN on the 2,000 test digits, batches of 256.
  const cnn = onnxTeacher(await ort.InferenceSession.create(readFileSync(CNN_ONNX)), { batchSize: 256 });
  const { test } = loadMnistSplit({ testPerClass: 200, seed: 0 });
  const digits = tf.tensor2d(test.x, [test.size, 784]);
  const cnnRate = await rowsPerSecond(test.size, async () => (await cnn.predict(digits)).dispose());
  digits.dispose();
  table.push(['MNIST CNN (20,490 parameters)', 'onnxTeacher', 'onnxruntime-web 1.31, wasm', '256', cnnRate.toFixed(0)]);

  // The tiny BERT on SST-2's dev sentences, batches of 64, sorted by length.
  const dataDir = values.data ?? process.env.KD_SST2_DIR;
  const fixture = JSON.parse(readFileSync(join(import.meta.dirname, TINY_BERT, 'fixture.json'), 'utf8')) as { sentences: string[] };
  const sentences =
    dataDir !== undefined && existsSync(join(dataDir, 'dev.tsv'))
      ? readSplit(join(dataDir, 'dev.tsv')).sentences
      : Array.from({ length: 872 }, (_, i) => fixture.sentences[i % fixture.sentences.length]!);
  const { model, tokenizer } = await loadTinyBert({ threads: 1 });
  const viaNode = transformersTeacher(model, tokenizer, { texts: [], batchSize: 64 });
  const nodeRate = await rowsPerSecond(sentences.length, async () => (await viaNode.scoreTexts(sentences)).dispose());
  table.push(['tiny BERT (85,602 parameters)', 'transformersTeacher', 'transformers.js 4.3, onnxruntime-node 1.30, 1 thread', '64', nodeRate.toFixed(0)]);

  const session = await ort.InferenceSession.create(readFileSync(join(import.meta.dirname, TINY_BERT, 'onnx', 'model.onnx')));
  const webModel: TransformersModelLike = async (encoding) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) feeds[name] = new ort.Tensor('int64', encoding[name]!.data as BigInt64Array, [...encoding[name]!.dims]);
    return { logits: (await session.run(feeds)).logits! };
  };
  const viaWeb = transformersTeacher(webModel, tokenizer, { texts: [], batchSize: 64 });
  const webRate = await rowsPerSecond(sentences.length, async () => (await viaWeb.scoreTexts(sentences)).dispose());
  table.push(['tiny BERT (85,602 parameters)', 'transformersTeacher', 'transformers.js tokenizer, onnxruntime-web 1.31, wasm', '64', webRate.toFixed(0)]);

  const what = dataDir !== undefined && existsSync(join(dataDir, 'dev.tsv')) ? 'SST-2 dev sentences' : 'fixture sentences (no SST-2 given)';
  console.log(`\nTeacher scoring speed: ${test.size} MNIST test digits, ${sentences.length} ${what}; median of ${PASSES} passes\n`);
  printMarkdownTable(['teacher', 'kd-ts adapter', 'runtime (1 thread)', 'batch', 'rows/s'], table);
  await model.dispose();
  await session.release();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
