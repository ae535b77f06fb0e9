/**
 * Data-parallel training on worker threads (`workerPool` from kd-ts/node):
 * samples/s of `Distiller.fit` in one process against 1, 2, ... workers, for
 * the three bench students (bench/models.ts; the BiLSTM with kd-ts's
 * FastLSTM), on wasm with kd-ts's kernels, at batch 256; then a LayersModel
 * teacher replicated in the workers against the same teacher run once per
 * batch in the main thread; then PyTorch (bench/reference/kd_step.py, batch
 * 128) on 1 thread and on every core, in the same run.
 *
 * Run: `npx tsx bench/parallel.ts [--runs 3] [--steps 6] [--batch 256]
 *       [--models mlp,bilstm,conv] [--workers 1,2,16] [--no-teacher] [--no-torch]
 *       [--no-split] [--no-students]`
 *
 * The split table (`--no-split` skips it) times a worker's step piece by
 * piece in one thread, so that the scaling can be argued beyond the cores at
 * hand: the training step at 1/1, 1/2, ... 1/16 of the batch (each replica's
 * share), the optimizer's update alone (every replica repeats it in full),
 * and the gradient exchange (gradients read out of the backend, the shared
 * memory all-reduce on 1 and on 2 threads, the sum written back as tensors).
 *
 * Each figure: rows per epoch / median epoch time over `--runs` epochs of one
 * fit, after a warm-up epoch (the replication of the models at the start of
 * a fit is not counted; the weights copied back at each epoch's end are).
 * The students' teacher outputs are fixed and random (a function teacher, in
 * the main thread), as in bench/run.ts. Shared machines are noisy: the load
 * average before and after is printed; compare ratios within one run.
 */
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { createTrainStep, Distiller, pickTrainingBackend, withSeed, type DistillationKind } from '../src/index.js';
import { workerPool } from '../src/node/index.js';
import { benchCase, mlp, MODEL_NAMES, MODEL_SETTINGS, type ModelName } from './models.js';
import { formatTable, loadAverage, machine, median } from './util.js';
import { CONTROL } from '../src/node/workers/protocol.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    steps: { type: 'string', default: '6' },
    batch: { type: 'string', default: '256' },
    models: { type: 'string', default: MODEL_NAMES.join(',') },
    workers: { type: 'string' },
    teacher: { type: 'boolean', default: true },
    torch: { type: 'boolean', default: true },
    split: { type: 'boolean', default: true },
    students: { type: 'boolean', default: true },
  },
  allowNegative: true,
});
const runs = Number(values.runs);
const batch = Number(values.batch);
const rows = batch * Number(values.steps);
const cores = os.availableParallelism();
const workerCounts = values.workers?.split(',').map(Number) ?? [...new Set([1, 2, cores])];

/** How one configuration trains: in this process, or on a pool of workers. */
interface Setup {
  label: string;
  workers?: number;
  replicateTeacher?: boolean;
}

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  const backend = await pickTrainingBackend({ prefer: ['wasm'] });
  const loadBefore = loadAverage();
  console.log(`# Data-parallel training: ${machine()}, Node ${process.version}, backend ${backend.backend} (${backend.additions.length} kd-ts additions)`);
  console.log(`load average before: ${loadBefore}; batch ${batch}, ${rows} rows per epoch, median of ${runs} epochs after one warm-up epoch\n`);

  const setups: Setup[] = [{ label: '1 process' }, ...workerCounts.map((n) => ({ label: `${n} worker${n > 1 ? 's' : ''}`, workers: n }))];
  const table: string[][] = [];
  for (const name of (values.students ? values.models.split(',') : []) as ModelName[]) {
    const rates: Rate[] = [];
    for (const setup of setups) rates.push(await studentRate(name, setup));
    const two = setups.findIndex((s) => s.workers === 2);
    table.push([
      name === 'bilstm' ? 'bilstm (FastLSTM)' : name,
      ...rates.map(cell),
      two < 0 ? '' : `${(rates[two]!.rate / rates[0]!.rate).toFixed(2)}×`,
    ]);
    console.error(`${name}: ${rates.map(cell).join(' / ')}`);
  }
  if (values.students) {
    console.log('## Students: samples/s (CPU ms per sample, all threads), teacher outputs fixed\n');
    console.log(formatTable(['model', ...setups.map((s) => s.label), '2 workers / 1 process'], table));
  }

  if (values.teacher) {
    const teacherSetups: Setup[] = [
      { label: '1 process' },
      { label: '2 workers, teacher replicated', workers: 2, replicateTeacher: true },
      { label: '2 workers, teacher in main thread', workers: 2, replicateTeacher: false },
    ];
    const rates: Rate[] = [];
    for (const setup of teacherSetups) rates.push(await teacherRate(setup));
    console.log('\n## MLP student, LayersModel teacher 784-1200-1200-10 run every batch: samples/s (CPU ms per sample)\n');
    console.log(formatTable(teacherSetups.map((s) => s.label), [rates.map(cell)]));
  }

  if (values.split) console.log(`\n${await splitTable()}`);
  if (values.torch) console.log(`\n## PyTorch (bench/reference/kd_step.py, batch 128, same run)\n\n${torchTable()}`);
  console.log(`\nload average after: ${loadAverage()}`);
}

/** Samples/s of one student under one setup. */
async function studentRate(name: ModelName, setup: Setup): Promise<Rate> {
  const built = withSeed(1, () => benchCase(name, 'fast'));
  tf.dispose([built.inputs, built.teacherLogits]);
  const inputs = withSeed(2, () => inputsFor(name));
  const logits = withSeed(3, () => tf.randomNormal([batch, built.teacherLogits.shape[1]!]));
  // Fixed teacher outputs, one row per example of the batch (the last batch may be shorter).
  const teacher = (x: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap) => tf.slice(logits, 0, (x as tf.Tensor).shape[0]);
  const rate = await timeFit(built.student, teacher, inputs, built.kind, setup);
  tf.dispose([inputs, logits]);
  built.student.dispose();
  return rate;
}

/** Samples/s of the MLP student with a LayersModel teacher run on every batch. */
async function teacherRate(setup: Setup): Promise<Rate> {
  const student = withSeed(1, () => mlp(MODEL_SETTINGS.mlp.sizes));
  const teacher = withSeed(4, () => mlp([784, 1200, 1200, 10]));
  const inputs = withSeed(2, () => inputsFor('mlp'));
  const rate = await timeFit(student, teacher, inputs, 'kl', setup);
  inputs.dispose();
  student.dispose();
  teacher.dispose();
  return rate;
}

async function timeFit(
  student: tfl.LayersModel,
  teacher: tfl.LayersModel | ((x: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap) => tf.Tensor),
  inputs: tf.Tensor,
  kind: DistillationKind,
  setup: Setup,
): Promise<Rate> {
  const distiller = new Distiller({ teacher, student });
  const optimizer = tf.train.adam(MODEL_SETTINGS.learningRate);
  distiller.compile({ optimizer, temperature: MODEL_SETTINGS.temperature, kind });
  const pool =
    setup.workers === undefined
      ? undefined
      : workerPool({ workers: setup.workers, ...(setup.replicateTeacher === undefined ? {} : { replicateTeacher: setup.replicateTeacher }) });
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  let started = 0;
  let cpuStarted = process.cpuUsage();
  try {
    await distiller.fit(inputs, undefined, {
      epochs: runs + 1,
      batchSize: batch,
      seed: 7,
      ...(pool === undefined ? {} : { parallel: pool }),
      callbacks: {
        onEpochBegin: async () => {
          started = performance.now();
          cpuStarted = process.cpuUsage();
        },
        onEpochEnd: async () => {
          seconds.push((performance.now() - started) / 1000);
          const cpu = process.cpuUsage(cpuStarted);
          cpuSeconds.push((cpu.user + cpu.system) / 1e6);
        },
      },
    });
  } finally {
    await pool?.close();
    optimizer.dispose();
  }
  return { rate: rows / median(seconds.slice(1)), cpuPerSample: (median(cpuSeconds.slice(1)) / rows) * 1e3 };
}

/** Wall-clock samples/s, and CPU milliseconds (every thread of the process) per sample. */
interface Rate {
  rate: number;
  cpuPerSample: number;
}

function cell(rate: Rate): string {
  return `${rate.rate.toFixed(0)} (${rate.cpuPerSample.toFixed(2)})`;
}

function inputsFor(name: ModelName, count = rows): tf.Tensor {
  if (name === 'mlp') return tf.randomUniform([count, MODEL_SETTINGS.mlp.sizes[0]], 0, 1);
  if (name === 'conv') return tf.randomUniform([count, ...MODEL_SETTINGS.conv.image], 0, 1);
  const s = MODEL_SETTINGS.bilstm;
  return tf.randomUniform([count, s.tokens], 1, s.vocabulary, 'int32');
}

/** Splits of the batch timed by {@link splitTable}: a replica's share with 1, 2, ... 16 workers. */
const SPLITS = [1, 2, 4, 8, 16];

/**
 * A worker's step, piece by piece, in this thread (ms, median of `--runs`
 * after one warm-up): the training step (createTrainStep, forward + backward
 * + Adam + one read) on batch/N rows; Adam's update alone on every trainable
 * value; and the exchange: the gradients read out of the backend, the
 * all-reduce (SharedGradients plus the copy of the sum) on 1 thread and,
 * barriers included, on 2, the sum written back as tensors.
 */
async function splitTable(): Promise<string> {
  const body: string[][] = [];
  for (const name of values.models.split(',') as ModelName[]) {
    const built = withSeed(1, () => benchCase(name, 'fast'));
    const classes = built.teacherLogits.shape[1]!;
    tf.dispose([built.inputs, built.teacherLogits]);
    const variables = built.student.trainableWeights.map((w) => w.read() as tf.Variable);
    const size = variables.reduce((n, v) => n + v.size, 0);
    const optimizer = tf.train.adam(MODEL_SETTINGS.learningRate);
    const step = createTrainStep({ student: built.student, optimizer, temperature: MODEL_SETTINGS.temperature, kind: built.kind });
    const stepMs: number[] = [];
    for (const split of SPLITS) {
      const count = Math.ceil(batch / split);
      const inputs = withSeed(2, () => inputsFor(name, count));
      const teacherLogits = withSeed(3, () => tf.randomNormal([count, classes]));
      stepMs.push(await timeMs(() => step({ inputs, teacherLogits })));
      tf.dispose([inputs, teacherLogits]);
    }
    const grads = variables.map((v) => ({ name: v.name, tensor: withSeed(4, () => tf.randomNormal(v.shape)) }));
    const adamMs = await timeMs(async () => {
      optimizer.applyGradients(grads);
      await variables[0]!.data();
    });
    const readMs = await timeMs(async () => {
      for (const g of grads) g.tensor.dataSync();
    });
    const sum = new Float32Array(size);
    const writeMs = await timeMs(async () => {
      let offset = 0;
      const tensors = variables.map((v) => {
        const t = tf.tensor(sum.subarray(offset, offset + v.size), v.shape, 'float32');
        offset += v.size;
        return t;
      });
      await tensors[0]!.data();
      tf.dispose(tensors);
    });
    // One thread: the copies and the sum alone; two: barriers too, and waiting for a thread the OS has not scheduled.
    const reduceAloneMs = await allReduceMs(size, 1);
    const reduceMs = await allReduceMs(size, 2);
    const exchange = readMs + reduceAloneMs + writeMs;
    body.push([
      name === 'bilstm' ? 'bilstm (FastLSTM)' : name,
      size.toLocaleString('en-US'),
      ...stepMs.map((ms) => ms.toFixed(1)),
      adamMs.toFixed(1),
      `${readMs.toFixed(1)} + ${reduceAloneMs.toFixed(1)} + ${writeMs.toFixed(1)}`,
      reduceMs.toFixed(1),
      // Two workers' step, if nothing else ran: half the batch, then the exchange.
      `${(stepMs[0]! / (stepMs[1]! + exchange)).toFixed(2)}×`,
      `${(stepMs[0]! / (stepMs[SPLITS.length - 1]! + exchange)).toFixed(1)}×`,
    ]);
    tf.dispose(grads.map((g) => g.tensor));
    optimizer.dispose();
    built.student.dispose();
    console.error(`split ${name}: ${body[body.length - 1]!.join(' / ')}`);
  }
  return [
    `## Where a worker's step goes (ms, one thread, median of ${runs} after one warm-up; batch ${batch} split N ways)\n`,
    formatTable(
      [
        'model',
        'trainable values',
        ...SPLITS.map((n) => `step, batch/${n}`),
        'Adam alone',
        'exchange: read + all-reduce (1 thread) + write',
        'all-reduce, 2 threads',
        'bound, 2 workers',
        'bound, 16 workers',
      ],
      body,
    ),
    '',
    "bound, N workers: step(batch) / (step(batch/N) + exchange): the speed-up if each worker had a core of its own and the main thread cost nothing. " +
      "The exchange's all-reduce is timed on 1 thread (the copies and the sum: per worker about one write, one summed read and one copy of every value, whatever N); " +
      '"all-reduce, 2 threads" adds the barriers, and on a loaded machine the wait for a thread that is not running.',
  ].join('\n');
}

/** Median ms of `fn` over `--runs` calls after one warm-up call. */
async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** Median ms of one SharedGradients.allReduce (plus the copy of the sum) of `size` floats across `workers` threads. */
async function allReduceMs(size: number, workers: number): Promise<number> {
  const source = new URL('../src/node/workers/allReduce.ts', import.meta.url).href;
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `(async () => {
    const { workerData, parentPort } = await import('node:worker_threads');
    (await import(${JSON.stringify(tsx)})).register();
    const { SharedGradients } = await import(${JSON.stringify(source)});
    const { control, gradients, index, workers, size, rounds } = workerData;
    const reducer = new SharedGradients(control, gradients, index, workers, size);
    const part = new Float32Array(size).fill(index + 1);
    const times = [];
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      reducer.allReduce([part], [size], 0.5).slice();
      times.push(performance.now() - start);
    }
    parentPort.postMessage(times);
  })();`;
  const control = new SharedArrayBuffer(CONTROL.LENGTH * 4);
  const gradients = new SharedArrayBuffer((workers + 1) * size * 4);
  const rounds = Math.max(5, runs * 3);
  const results = await Promise.all(
    Array.from({ length: workers }, (_, index) =>
      new Promise<number[]>((resolve, reject) => {
        const worker = new Worker(code, { eval: true, workerData: { control, gradients, index, workers, size, rounds } });
        worker.once('message', (times: number[]) => {
          resolve(times);
          void worker.terminate();
        });
        worker.once('error', reject);
      }),
    ),
  );
  // Each round's time is the slowest thread's; the first round (start-up skew) is dropped.
  return median(results[0]!.slice(1).map((_, r) => Math.max(...results.map((t) => t[r + 1]!))));
}

/** PyTorch's step rates on 1 thread and on every core (batch 128), or why not. */
function torchTable(): string {
  const threads = [...new Set([1, cores])];
  const results = threads.map((n) => {
    const run = spawnSync('/usr/bin/python3', ['bench/reference/kd_step.py', '--runs', String(runs), '--threads', String(n)], {
      encoding: 'utf8',
    });
    if (run.status !== 0) return undefined;
    const json = JSON.parse(run.stdout.trim().split('\n').pop()!) as { results: Array<{ model: string; samples_per_s: number }> };
    return new Map(json.results.map((r) => [r.model, r.samples_per_s]));
  });
  if (results.some((r) => r === undefined)) return 'PyTorch not available (python3 with torch).';
  const body = MODEL_NAMES.map((name) => [
    name,
    ...results.map((r) => r!.get(name)!.toFixed(0)),
    `${(results[results.length - 1]!.get(name)! / results[0]!.get(name)!).toFixed(2)}×`,
  ]);
  return formatTable(['model', ...threads.map((n) => `${n} thread${n > 1 ? 's' : ''}`), `${cores} / 1`], body);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
