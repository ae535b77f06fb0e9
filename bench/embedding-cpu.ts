/**
 * The Embedding gradient on tfjs's cpu backend: tfjs-backend-cpu's stock
 * `UnsortedSegmentSum` against kd-ts's `registerCpuTrainingKernels()`, at
 * Tang et al.'s SST-2 sizes (vocabulary 15,000 × 300, batch 50 × 20 tokens).
 *
 * Run: `npx tsx bench/embedding-cpu.ts [--runs 5] [--stock-segments 300] [--stock-full]`
 *
 * Table: (1) the kernel alone, as the gradient of the embedding lookup calls
 * it (x [1000, 300], 15,000 segments); (2) one whole KD training step of
 * `buildBiLstmStudent`'s default student (forward, backward, Adam). The stock
 * kernel's cost grows linearly with the number of segments (one masked pass
 * over all rows per segment), so by default it is timed on `--stock-segments`
 * segments and scaled to 15,000, and the stock step is our step with the
 * kernel's time swapped; `--stock-full` runs the real thing instead (minutes).
 * Medians of `--runs` runs after one warm-up; the stock figures are medians of
 * 3 runs. Shared machines are noisy: the load average is printed.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { parseArgs } from 'node:util';
import { buildBiLstmStudent, createTrainStep, withSeed } from '../src/index.js';
import { registerCpuTrainingKernels } from '../src/backend/index.js';
import { formatTable, loadAverage, machine, median } from './util.js';

const VOCABULARY = 15_000;
const EMBEDDING = 300;
const BATCH = 50;
const TOKENS = 20;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      'stock-segments': { type: 'string', default: '300' },
      'stock-full': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const stockSegments = Number(values['stock-segments']);
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  console.log(`${machine()}; load average before: ${loadAverage()}; tfjs ${tf.version_core}, cpu backend`);

  const rows = BATCH * TOKENS;
  const x = withSeed(0, () => tf.randomNormal([rows, EMBEDDING]));
  const ids = withSeed(1, () => tf.randomUniform([rows], 1, VOCABULARY, 'int32'));
  const kernelTime = (segments: number, repeats: number): number =>
    median(Array.from({ length: repeats }, () => timed(() => tf.unsortedSegmentSum(x, ids as tf.Tensor1D, segments).dataSync())));

  // Stock first: registering kd-ts's kernel replaces it for the rest of the process.
  timed(() => tf.unsortedSegmentSum(x, ids as tf.Tensor1D, 10).dataSync());
  const stockKernel = values['stock-full'] ? kernelTime(VOCABULARY, 1) : (kernelTime(stockSegments, 3) * VOCABULARY) / stockSegments;
  let stockStep: number | undefined;
  if (values['stock-full']) stockStep = await stepTime(1);

  registerCpuTrainingKernels();
  kernelTime(VOCABULARY, 1);
  const oursKernel = kernelTime(VOCABULARY, runs);
  const oursStep = await stepTime(runs);
  stockStep ??= oursStep - oursKernel + stockKernel;
  tf.dispose([x, ids]);

  const how = values['stock-full'] ? 'measured' : `timed on ${stockSegments} segments, scaled ×${VOCABULARY / stockSegments}`;
  console.log(
    formatTable(
      ['what', 'stock tfjs-backend-cpu', 'kd-ts registerCpuTrainingKernels()', 'speed-up'],
      [
        ['UnsortedSegmentSum, x [1000, 300] → 15,000 segments', `${seconds(stockKernel)} (${how})`, seconds(oursKernel), `${(stockKernel / oursKernel).toFixed(0)}×`],
        [
          'KD step, BiLSTM student (15,000 × 300 embedding, h 150, batch 50 × 20)',
          `${seconds(stockStep)}${values['stock-full'] ? '' : ' (ours − our kernel + stock kernel)'}`,
          seconds(oursStep),
          `${(stockStep / oursStep).toFixed(0)}×`,
        ],
      ],
    ),
  );
  console.log(`load average after: ${loadAverage()}`);
}

/** Median seconds of one training step of the default BiLSTM student, after one warm-up step. */
async function stepTime(runs: number): Promise<number> {
  const student = withSeed(2, () => buildBiLstmStudent({ vocabSize: VOCABULARY, numClasses: 2 }));
  const step = createTrainStep({ student, optimizer: tf.train.adam(1e-3), kind: 'mse' });
  const tokens = withSeed(3, () => tf.randomUniform([BATCH, TOKENS], 1, VOCABULARY, 'int32'));
  const teacherLogits = withSeed(4, () => tf.randomNormal([BATCH, 2]));
  const once = async () => {
    const start = performance.now();
    await step({ inputs: tokens, teacherLogits });
    return (performance.now() - start) / 1000;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  tf.dispose([tokens, teacherLogits]);
  student.dispose();
  return median(times);
}

function timed(fn: () => unknown): number {
  const start = performance.now();
  fn();
  return (performance.now() - start) / 1000;
}

function seconds(value: number): string {
  return value >= 1 ? `${value.toFixed(1)} s` : `${(value * 1000).toFixed(1)} ms`;
}

await main();
