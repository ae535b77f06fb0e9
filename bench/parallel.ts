/**
 * Data-parallel training on worker threads (`workerPool` from kd-ts/node):
 * samples/s of `Distiller.fit` in one process against 1, 2, ... workers, for
 * the three bench students (bench/models.ts; the BiLSTM with kd-ts's
 * FastLSTM), on wasm with kd-ts's kernels, at batch 256; then a LayersModel
 * teacher replicated in the workers against the same teacher run once per
 * batch in the main thread; then PyTorch (bench/reference/kd_step.py, batch
 * 128) on 1 thread and on every core, in the same run.
 *
 * Run: `npx tsx bench/parallel.ts [--runs 3] [--rounds 3] [--steps N] [--batch 256]
 *       [--models mlp,bilstm,conv] [--workers 1,2,16] [--no-teacher] [--no-torch]
 *       [--no-split] [--no-students]`
 *
 * The split table (`--no-split` skips it) times a worker's step piece by
 * piece in one thread, so that the scaling can be argued beyond the cores at
 * hand: the forward and backward passes at 1/1, 1/2, ... 1/16 of the batch
 * (each replica's share), tfjs's Adam update of every value (what one process
 * runs), and what a worker adds: its gradients copied into shared memory, the
 * reduce and sharded Adam update of its 1/N chunk, the weights written back
 * as tensors; then the whole exchange on 2 threads.
 *
 * Steps per epoch: `--steps`, else 24 (MLP), 12 (conv), 6 (BiLSTM), epochs of
 * 1.5 s or more in one process (see DEFAULT_STEPS).
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
import {
  applyUpdate,
  chunkOf,
  exchangeLayout,
  exchangeMemory,
  floats,
  regions,
  updateKernels,
  type ExchangeLayout,
  type UpdateKernels,
} from '../src/node/workers/sharedUpdate.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string' },
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
const rounds = Number(values.rounds);
const batch = Number(values.batch);
/**
 * Steps per epoch: enough for an epoch of about 1.5 s or more in one process,
 * so that what a parallel run does once per epoch (the weights pulled into
 * the student, the first step after the main thread's epoch-end work) weighs
 * as little as in real training, where epochs have hundreds of steps.
 */
const DEFAULT_STEPS: Record<ModelName, number> = { mlp: 24, conv: 12, bilstm: 6 };
/** Rows per epoch for one model: `--steps` batches, or its default. */
const rowsFor = (name: ModelName) => batch * (values.steps === undefined ? DEFAULT_STEPS[name] : Number(values.steps));
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
  console.log(
    `load average before: ${loadBefore}; batch ${batch}, rows per epoch ${MODEL_NAMES.map((m) => `${m} ${rowsFor(m)}`).join(', ')}; median of ${runs} epochs after one warm-up epoch; ` +
      `students: median of ${rounds} rounds, every setup once per round\n`,
  );

  const setups: Setup[] = [{ label: '1 process' }, ...workerCounts.map((n) => ({ label: `${n} worker${n > 1 ? 's' : ''}`, workers: n }))];
  const table: string[][] = [];
  for (const name of (values.students ? values.models.split(',') : []) as ModelName[]) {
    // Rounds of every setup in turn, so a noisy minute of a shared machine does not land on one setup only.
    const perRound: Rate[][] = [];
    for (let r = 0; r < rounds; r++) {
      const round: Rate[] = [];
      for (const setup of setups) round.push(await studentRate(name, setup));
      perRound.push(round);
    }
    const rates = setups.map((_, i) => medianRate(perRound.map((round) => round[i]!)));
    const two = setups.findIndex((s) => s.workers === 2);
    const ratios = perRound.map((round) => round[two]!.rate / round[0]!.rate);
    table.push([
      name === 'bilstm' ? 'bilstm (FastLSTM)' : name,
      ...rates.map(cell),
      two < 0 ? '' : `${(rates[two]!.rate / rates[0]!.rate).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
    ]);
    console.error(`${name}: ${rates.map(cell).join(' / ')}`);
  }
  if (values.students) {
    console.log('## Students: samples/s (CPU ms per sample, all threads), teacher outputs fixed\n');
    console.log(formatTable(['model', ...setups.map((s) => s.label), '2 workers / 1 process (range over rounds)'], table));
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
  const rows = inputs.shape[0]!;
  return { rate: rows / median(seconds.slice(1)), cpuPerSample: (median(cpuSeconds.slice(1)) / rows) * 1e3 };
}

/** Wall-clock samples/s, and CPU milliseconds (every thread of the process) per sample. */
interface Rate {
  rate: number;
  cpuPerSample: number;
}

/** The median rate and the median CPU cost of several measurements of one setup. */
function medianRate(rates: Rate[]): Rate {
  return { rate: median(rates.map((r) => r.rate)), cpuPerSample: median(rates.map((r) => r.cpuPerSample)) };
}

function cell(rate: Rate): string {
  return `${rate.rate.toFixed(0)} (${rate.cpuPerSample.toFixed(2)})`;
}

function inputsFor(name: ModelName, count = rowsFor(name)): tf.Tensor {
  if (name === 'mlp') return tf.randomUniform([count, MODEL_SETTINGS.mlp.sizes[0]], 0, 1);
  if (name === 'conv') return tf.randomUniform([count, ...MODEL_SETTINGS.conv.image], 0, 1);
  const s = MODEL_SETTINGS.bilstm;
  return tf.randomUniform([count, s.tokens], 1, s.vocabulary, 'int32');
}

/** Splits of the batch timed by {@link splitTable}: a replica's share with 1, 2, ... 16 workers. */
const SPLITS = [1, 2, 4, 8, 16];

/**
 * What a worker's optimizer does in a step, on one thread, barriers aside:
 * the gradients copied out of the backend into its slot, the reduce of its
 * 1/N chunk over N slots, the sharded Adam update of that chunk, and every
 * weight written back as a fresh tensor (so the next forward pass repacks the
 * weights, as in a real step).
 */
class WorkerLikeUpdate extends tf.Optimizer {
  static className = 'BenchWorkerLikeUpdate';
  private readonly layout: ExchangeLayout;
  private readonly memory: WebAssembly.Memory;
  private readonly kernels: UpdateKernels;
  private readonly spec = { kind: 'adam' as const, iterations: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

  constructor(private readonly variables: tf.Variable[], workers: number) {
    super();
    this.layout = exchangeLayout(workers, variables.reduce((n, v) => n + v.size, 0), 2);
    this.memory = exchangeMemory(this.layout);
    this.kernels = updateKernels(this.memory);
    writeWeights(this.memory, this.layout, variables);
  }

  override applyGradients(gradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    const { layout, memory, kernels, variables } = this;
    const map = Array.isArray(gradients) ? Object.fromEntries(gradients.map((g) => [g.name, g.tensor])) : gradients;
    const slot = floats(memory, regions.slot(layout, 0), layout.size);
    const heap = tf.engine().backend as unknown as { typedArrayFromHeap(info: tf.TensorInfo): Float32Array };
    let offset = 0;
    for (const v of variables) {
      slot.set(heap.typedArrayFromHeap(map[v.name]!), offset);
      offset += v.size;
    }
    const [from, to] = chunkOf(layout, 0);
    for (let w = 0; w < layout.workers; w++) {
      kernels.addScaled(regions.grad(layout) + from * 4, regions.slot(layout, 0) + from * 4, to - from, 1 / layout.workers, w === 0 ? 1 : 0);
    }
    applyUpdate(kernels, layout, 0, this.spec, MODEL_SETTINGS.learningRate);
    this.spec.iterations++;
    const weights = floats(memory, regions.weights(layout), layout.size);
    offset = 0;
    for (const v of variables) {
      const fresh = tf.tensor(weights.subarray(offset, offset + v.size), v.shape, 'float32');
      v.assign(fresh);
      fresh.dispose();
      offset += v.size;
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

function writeWeights(memory: WebAssembly.Memory, layout: ExchangeLayout, variables: tf.Variable[]): void {
  let offset = regions.weights(layout);
  for (const v of variables) {
    floats(memory, offset, v.size).set(v.dataSync() as Float32Array);
    offset += v.size * 4;
  }
}

/**
 * A worker's step, in this thread (ms, median of `--runs` after one
 * warm-up): one process's training step (createTrainStep with tfjs's Adam)
 * on the whole batch; a worker's step on its 1/N of the batch with
 * {@link WorkerLikeUpdate} (everything but the barriers and the wait for the
 * others); tfjs's Adam update alone; the whole exchange on 2 real threads.
 */
async function splitTable(): Promise<string> {
  const body: string[][] = [];
  for (const name of values.models.split(',') as ModelName[]) {
    const built = withSeed(1, () => benchCase(name, 'fast'));
    const classes = built.teacherLogits.shape[1]!;
    tf.dispose([built.inputs, built.teacherLogits]);
    const variables = built.student.trainableWeights.map((w) => w.read() as tf.Variable);
    const size = variables.reduce((n, v) => n + v.size, 0);
    const timeStep = async (optimizer: tf.Optimizer, count: number) => {
      const step = createTrainStep({ student: built.student, optimizer, temperature: MODEL_SETTINGS.temperature, kind: built.kind });
      const inputs = withSeed(2, () => inputsFor(name, count));
      const teacherLogits = withSeed(3, () => tf.randomNormal([count, classes]));
      const ms = await timeMs(() => step({ inputs, teacherLogits }));
      tf.dispose([inputs, teacherLogits]);
      return ms;
    };
    const adam = tf.train.adam(MODEL_SETTINGS.learningRate);
    const singleMs = await timeStep(adam, batch);
    const workerMs: number[] = [];
    for (const split of SPLITS) {
      const update = new WorkerLikeUpdate(variables, split);
      workerMs.push(await timeStep(update, Math.ceil(batch / split)));
      update.dispose();
    }
    const grads = variables.map((v) => ({ name: v.name, tensor: withSeed(4, () => tf.randomNormal(v.shape)) }));
    const adamMs = await timeMs(async () => {
      adam.applyGradients(grads);
      await variables[0]!.data();
    });
    const threadsMs = await exchangeMs(size, 2);
    body.push([
      name === 'bilstm' ? 'bilstm (FastLSTM)' : name,
      size.toLocaleString('en-US'),
      singleMs.toFixed(1),
      adamMs.toFixed(1),
      ...workerMs.map((ms) => ms.toFixed(1)),
      threadsMs.toFixed(1),
      `${(singleMs / workerMs[1]!).toFixed(2)}×`,
      `${(singleMs / workerMs[SPLITS.length - 1]!).toFixed(1)}×`,
    ]);
    tf.dispose(grads.map((g) => g.tensor));
    adam.dispose();
    built.student.dispose();
    console.error(`split ${name}: ${body[body.length - 1]!.join(' / ')}`);
  }
  return [
    `## Where a step goes (ms, one thread, median of ${runs} after one warm-up; batch ${batch} split N ways)\n`,
    formatTable(
      [
        'model',
        'trainable values',
        '1 process: step',
        'of which tfjs Adam',
        ...SPLITS.map((n) => `worker step, N = ${n}`),
        'exchange on 2 threads',
        'bound, 2 workers',
        'bound, 16 workers',
      ],
      body,
    ),
    '',
    "worker step, N: a worker's step on batch/N rows, barriers aside: forward and backward, its gradients copied into shared memory, " +
      'the reduce and sharded Adam update of its 1/N chunk (update.wat), the weights written back as tensors. ' +
      'bound, N workers: 1 process step / worker step: the speed-up if each worker had a core of its own and the main thread cost nothing. ' +
      '"exchange on 2 threads": the exchange alone on 2 worker threads (slot written, barrier, reduce and Adam, barrier, weights read), ' +
      'slowest thread, barriers and any wait for a thread the OS has not scheduled included.',
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

/** Median ms of one SharedExchange step (slot written, reduce, sharded Adam, weights read) of `size` values across `workers` threads. */
async function exchangeMs(size: number, workers: number): Promise<number> {
  const source = new URL('../src/node/workers/allReduce.ts', import.meta.url).href;
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `(async () => {
    const { workerData, parentPort } = await import('node:worker_threads');
    (await import(${JSON.stringify(tsx)})).register();
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const { SharedExchange } = await import(${JSON.stringify(source)});
    const { control, memory, layout, index, rounds } = workerData;
    const exchange = new SharedExchange(control, memory, layout, index);
    const part = tf.fill([layout.size], index + 1);
    const spec = { kind: 'adam', iterations: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
    const times = [];
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      exchange.reduce([part], [layout.size], 0.5, undefined);
      exchange.update(spec, 1e-3).slice();
      times.push(performance.now() - start);
    }
    parentPort.postMessage(times);
  })();`;
  const control = new SharedArrayBuffer(CONTROL.LENGTH * 4);
  const layout = exchangeLayout(workers, size, 2);
  const memory = exchangeMemory(layout);
  const rounds = Math.max(5, runs * 3);
  const results = await Promise.all(
    Array.from({ length: workers }, (_, index) =>
      new Promise<number[]>((resolve, reject) => {
        const worker = new Worker(code, { eval: true, workerData: { control, memory, layout, index, rounds } });
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
