import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Distiller, KdBackendError, KdConfigError, withSeed, type DistillerCompileArgs } from '../../src/index.js';
import { workerPool } from '../../src/node/index.js';
import { combineLogs, shardWeights } from '../../src/node/workers/workerRun.js';
import type { DistillationBatch } from '../../src/inputs/batches.js';
import type { ModelInputs } from '../../src/inputs/modelInputs.js';
import { CrashInWorker, ThrowInWorker } from './fixtures/workerLayers.js';

const SETUP = fileURLToPath(new URL('./fixtures/workerLayers.ts', import.meta.url));
const pool = workerPool({ workers: 2 });
afterAll(() => pool.close());

function mlp(seed: number, hidden: number, extra?: tfl.layers.Layer): tfl.Sequential {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: hidden, activation: 'relu', inputShape: [12] }),
        ...(extra === undefined ? [] : [extra]),
        tfl.layers.dense({ units: 4 }),
      ],
    }),
  );
}

function data(rows = 201): { x: tf.Tensor; y: tf.Tensor } {
  return withSeed(9, () => ({ x: tf.randomNormal([rows, 12]), y: tf.randomUniform([rows], 0, 4, 'int32') }));
}

interface TrainOptions {
  epochs?: number;
  dropout?: boolean;
  optimizer?: () => tf.Optimizer;
  teacher?: 'model' | 'function';
  callbacks?: tfl.CustomCallbackArgs | tfl.Callback[];
  pool?: typeof pool;
  compile?: Partial<DistillerCompileArgs>;
}

// 201 rows in batches of 64: the last batch (9 rows) splits 5/4 across the two workers.
async function train(parallel: boolean, options: TrainOptions = {}) {
  const teacher = mlp(1, 32);
  const student = mlp(2, 16, options.dropout ? tfl.layers.dropout({ rate: 0.2 }) : undefined);
  const distiller = new Distiller({
    teacher: options.teacher === 'function' ? (inputs: ModelInputs) => teacher.predict(inputs as tf.Tensor) as tf.Tensor : teacher,
    student,
  });
  const optimizer = options.optimizer?.() ?? tf.train.adam(0.01);
  distiller.compile({ optimizer, temperature: 2, alpha: 0.3, ...options.compile });
  const { x, y } = data();
  const history = await distiller.fit(x, y, {
    epochs: options.epochs ?? 3,
    batchSize: 64,
    seed: 5,
    ...(parallel ? { parallel: options.pool ?? pool } : {}),
    ...(options.callbacks === undefined ? {} : { callbacks: options.callbacks }),
  });
  const weights = student.getWeights().map((w) => Array.from(w.dataSync()));
  const state = await optimizer.getWeights();
  const optimizerState = state.map((w) => Array.from(w.tensor.dataSync()));
  state[0]?.tensor.dispose();
  tf.dispose([x, y]);
  teacher.dispose();
  student.dispose();
  optimizer.dispose();
  return { history: history.history as Record<string, number[]>, weights, optimizerState };
}

describe('workerPool', () => {
  it.each([
    ['sgd, a LayersModel teacher replicated in the workers', { optimizer: () => tf.train.sgd(0.5) }],
    ['adam, a function teacher run in the main thread', { teacher: 'function' as const }],
    // The worker's step is built from the compiled step's options: a KL step there would log other losses.
    ["kind 'jsd' with beta 0.3, the divergence the workers must rebuild from the step options", { compile: { kind: 'jsd' as const, beta: 0.3 } }],
    ["kind 'kl' with topK 2 on a full-logit teacher", { compile: { topK: 2 } }],
    // The rate must reach the real optimizer behind each replica's all-reduce wrapper; the norm is the averaged gradient's.
    ['sgd with compile({ learningRate, clipNorm })', { optimizer: () => tf.train.sgd(0.5), compile: { learningRate: 0.2, clipNorm: 0.5 } }],
    // The sharded update (update.wat) for Adam, Momentum and SGD; any other class is applied by every replica.
    ['momentum with Nesterov, sharded', { optimizer: () => tf.train.momentum(0.2, 0.9, true) }],
    ['adam with clipNorm, the norm taken across the replicas\' chunks', { compile: { clipNorm: 0.1 } }],
    ['rmsprop, applied whole by every replica', { optimizer: () => tf.train.rmsprop(0.01) }],
  ])('gives the losses of a single-process run within 1 %% and updates the student in the main thread (%s)', async (_, options) => {
    const single = await train(false, options);
    const parallel = await train(true, options);
    for (const key of ['loss', 'distillation_loss', 'student_loss']) {
      single.history[key]!.forEach((value, epoch) => {
        expect(Math.abs(parallel.history[key]![epoch]! - value) / Math.abs(value)).toBeLessThan(0.01);
      });
    }
    expect(parallel.history.loss!.length).toBe(3);
    expect(Object.keys(parallel.history).sort()).toEqual(Object.keys(single.history).sort());
    if ((options as TrainOptions).compile?.learningRate !== undefined) expect(parallel.history.learningRate).toEqual([0.2, 0.2, 0.2]);
    // The student's weights moved, and to where the single-process run took them (up to rounding).
    const initial = mlp(2, 16).getWeights().map((w) => Array.from(w.dataSync()));
    expect(parallel.weights[0]![0]).not.toBe(initial[0]![0]);
    parallel.weights.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(single.weights[i]![j]!, 3)));
  });

  it.each([
    ['adam', () => tf.train.adam(0.01)],
    ['momentum', () => tf.train.momentum(0.1, 0.9)],
    ['rmsprop', () => tf.train.rmsprop(0.01)],
  ])("hands the replicas' optimizer state (%s: step count, moments) back to the user's optimizer, as one process leaves it", async (_, optimizer) => {
    const single = await train(false, { optimizer });
    const parallel = await train(true, { optimizer });
    expect(parallel.optimizerState.length).toBe(single.optimizerState.length);
    expect(parallel.optimizerState[0]).toEqual([12]); // 4 batches × 3 epochs
    expect(single.optimizerState.length).toBeGreaterThan(1);
    parallel.optimizerState.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(single.optimizerState[i]![j]!, 4)));
  });

  it('is deterministic on cpu from run to run, dropout included', async () => {
    const a = await train(true, { epochs: 2, dropout: true });
    const b = await train(true, { epochs: 2, dropout: true });
    expect(b.history).toEqual(a.history);
    expect(b.weights).toEqual(a.weights);
  });

  it('draws dropout masks from per-replica streams: with dropout the run is not the single-process run (docs/parallel.md)', async () => {
    const single = await train(false, { epochs: 1, dropout: true });
    const parallel = await train(true, { epochs: 1, dropout: true });
    // Same seed, other masks: the replicas' streams are derived from the seed and their index, not the single process's stream.
    expect(parallel.weights).not.toEqual(single.weights);
    expect(Math.abs(parallel.history.loss![0]! - single.history.loss![0]!) / single.history.loss![0]!).toBeLessThan(0.2);
  });
});

/** Epoch losses of a single-process and a parallel fit of the same students within 1 %, the same log keys. */
async function expectSameRun(fitOnce: (parallel: boolean) => Promise<Record<string, number[]>>): Promise<void> {
  const single = await fitOnce(false);
  const parallel = await fitOnce(true);
  expect(Object.keys(parallel).sort()).toEqual(Object.keys(single).sort());
  for (const key of ['loss', 'distillation_loss', 'student_loss', 'acc', 'agreement']) {
    single[key]!.forEach((value, epoch) => expect(Math.abs(parallel[key]![epoch]! - value)).toBeLessThanOrEqual(0.01 * Math.abs(value) + 1e-6));
  }
}

describe('workerPool: teacher outputs and token-level runs', () => {
  it('ships top-k teacher outputs ({ ids, logits }) from a main-thread teacher to the shards', async () => {
    await expectSameRun(async (parallel) => {
      const teacher = mlp(1, 32);
      const student = mlp(2, 16);
      // A Teacher whose predict returns only the 2 largest of 4 logits per row (what a top-k cache serves).
      const topK = {
        predict: (inputs: ModelInputs) =>
          tf.tidy(() => {
            const { values, indices } = tf.topk(teacher.predict(inputs as tf.Tensor) as tf.Tensor, 2);
            return { ids: indices, logits: values };
          }),
      };
      const distiller = new Distiller({ teacher: topK, student });
      distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.3 });
      const { x, y } = data();
      const history = await distiller.fit(x, y, { epochs: 2, batchSize: 64, seed: 5, ...(parallel ? { parallel: pool } : {}) });
      tf.dispose([x, y]);
      teacher.dispose();
      student.dispose();
      return history.history as Record<string, number[]>;
    });
  });

  it('weighs each shard by its examples with an unmasked token (the loss) and by its unmasked tokens (acc, agreement)', () => {
    const mask = tf.tensor2d([[1, 1], [0, 0], [0, 0], [1, 0]]);
    const weights = shardWeights([[0, 1], [1, 3], [3, 4]], [mask, mask.dataSync() as Float32Array]);
    // The middle shard has rows but no token: it takes no rows, only part in the reduction.
    expect(weights).toEqual({ examples: [1, 0, 1], totalExamples: 2, tokens: [2, 0, 1] });
    expect(combineLogs([{ loss: 1, acc: 1 }, {}, { loss: 3, acc: 0 }], weights.examples, weights.tokens)).toEqual({ loss: 2, acc: 2 / 3 });
    mask.dispose();
  });

  it('splits a token-level mask with the rows: per-token losses within 1 % of one process', async () => {
    const tokens = (seed: number) =>
      withSeed(seed, () => tfl.sequential({ layers: [tfl.layers.dense({ units: 8, activation: 'relu', inputShape: [5, 3] }), tfl.layers.dense({ units: 4 })] }));
    await expectSameRun(async (parallel) => {
      const teacher = tokens(1);
      const student = tokens(2);
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.3 });
      const { x, y, mask } = withSeed(9, () => ({
        x: tf.randomNormal([101, 5, 3]),
        y: tf.randomUniform([101, 5], 0, 4, 'int32'),
        // Padding at the end of each row: 0 to 5 real tokens (a row without any drops out of the loss's mean).
        mask: tf.tidy(() => tf.cast(tf.less(tf.expandDims(tf.range(0, 5, 1, 'int32'), 0), tf.randomUniform([101, 1], 0, 6, 'int32')), 'float32')),
      }));
      const history = await distiller.fit(x, y, { epochs: 2, batchSize: 32, seed: 5, mask, ...(parallel ? { parallel: pool } : {}) });
      tf.dispose([x, y, mask]);
      teacher.dispose();
      student.dispose();
      return history.history as Record<string, number[]>;
    });
    expect(await pool.workerTensors()).toEqual([0, 0]);
  });
});

describe('workerPool: the rest of fit', () => {
  it('runs tfjs callbacks in the main thread: earlyStopping stops the run', async () => {
    const { history } = await train(true, {
      epochs: 20,
      optimizer: () => tf.train.sgd(0),
      callbacks: [tfl.callbacks.earlyStopping({ monitor: 'loss', patience: 1, minDelta: 1e-4 })],
    });
    // Nothing learns at learning rate 0: the loss stays put and patience 1 stops after the second epoch.
    expect(history.loss!.length).toBe(2);
  });

  it('trains from fitDataset, with validation scored by the main thread on the pulled weights', async () => {
    const teacher = mlp(1, 32);
    const student = mlp(2, 16);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2 });
    const { x, y } = data();
    const batches = [0, 64, 128].map((start) => ({ xs: tf.slice(x, start, 64), ys: tf.slice(y, start, 64) }));
    const dataset = {
      iterator: async () => {
        let i = 0;
        return {
          next: async (): Promise<IteratorResult<DistillationBatch>> => {
            const b = batches[i++];
            return b === undefined ? { done: true, value: undefined } : { done: false, value: { xs: b.xs.clone(), ys: b.ys.clone() } };
          },
        };
      },
    };
    const history = await distiller.fitDataset(dataset, { epochs: 2, validationData: [x, y], parallel: pool });
    expect(history.history.val_loss![1]).toBeCloseTo((await distiller.evaluate(x, y)).loss!, 5);
    tf.dispose([x, y, ...batches.flatMap((b) => [b.xs, b.ys])]);
    teacher.dispose();
    student.dispose();
  });

  it('leaks no tensors in the main thread or in the workers', async () => {
    await train(true, { epochs: 1 }); // the first run creates tfjs's and the optimizer's one-off state
    const before = tf.memory().numTensors;
    await train(true, { epochs: 2 });
    expect(tf.memory().numTensors).toBe(before);
    expect(await pool.workerTensors()).toEqual([0, 0]);
  });

  it('refuses what the replicas cannot reproduce with PARALLEL_UNSUPPORTED', async () => {
    const student = mlp(2, 16);
    const distiller = new Distiller({ teacher: mlp(1, 32), student });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    const { x } = data();
    const fit = (extra: object) => distiller.fit(x, undefined, { parallel: pool, ...extra });
    await expect(fit({ checkpoint: { store: {} } })).rejects.toMatchObject({ code: 'PARALLEL_UNSUPPORTED' });
    // Schedules are functions: the replicas cannot receive them.
    distiller.compile({ optimizer: 'adam', temperature: () => 2 });
    await expect(fit({})).rejects.toMatchObject({ code: 'PARALLEL_UNSUPPORTED', message: expect.stringMatching(/temperature schedule/) });
    distiller.compile({ optimizer: 'adam', temperature: 2, learningRate: ({ step }) => 0.01 / (1 + step) });
    await expect(fit({})).rejects.toMatchObject({ code: 'PARALLEL_UNSUPPORTED', message: expect.stringMatching(/learningRate schedule/) });
    await expect(distiller.fit(x, undefined, { parallel: {} as never })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    x.dispose();
  });

  it('refuses a pool size that is not a positive integer', () => {
    expect(() => workerPool({ workers: 0 })).toThrow(KdConfigError);
    expect(() => workerPool({ workers: 1.5 })).toThrow(/positive integer/);
  });
});

/** Registered in the main thread only: a pool without `setup` cannot rebuild a model holding it. */
class MainThreadOnly extends tfl.layers.Layer {
  static className = 'KdTest>MainThreadOnly';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return Array.isArray(inputs) ? inputs[0]! : inputs;
  }
}
tf.serialization.registerClass(MainThreadOnly);

describe('workerPool: failures', () => {
  it('ends the fit as it starts with WORKER_FAILED when a layer is not registered in the workers, leaving nothing behind there', async () => {
    const student = tfl.sequential({
      layers: [tfl.layers.dense({ units: 16, inputShape: [12] }), new MainThreadOnly({ name: 'main_thread_only' }), tfl.layers.dense({ units: 4 })],
    });
    const distiller = new Distiller({ teacher: mlp(1, 32), student });
    distiller.compile({ optimizer: 'adam', temperature: 2 });
    const { x } = data();
    const error = await distiller.fit(x, undefined, { parallel: pool }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KdBackendError);
    expect(error).toMatchObject({ code: 'WORKER_FAILED' });
    expect((error as Error).message).toMatch(/MainThreadOnly[\s\S]*workerPool\(\{ setup \}\)/);
    expect(await pool.workerTensors()).toEqual([0, 0]);
    x.dispose();
  });

  it('ends the fit with TEACHER_FAILED when the teacher throws inside a worker, and the pool trains again', async () => {
    const failing = workerPool({ workers: 2, setup: SETUP });
    try {
      const teacher = tfl.sequential({
        layers: [tfl.layers.dense({ units: 4, inputShape: [12] }), new ThrowInWorker({ name: 'throw_in_worker' })],
      });
      const student = mlp(2, 16);
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: 'adam', temperature: 2 });
      const { x } = data();
      const before = student.getWeights().map((w) => Array.from(w.dataSync()));
      const error = await distiller.fit(x, undefined, { parallel: failing }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KdConfigError);
      expect(error).toMatchObject({ code: 'TEACHER_FAILED' });
      expect((error as Error).message).toMatch(/refuses to run in a worker/);
      // No step was applied: the student is as it was.
      expect(student.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
      // The same pool trains the next fit (a teacher that runs in the main thread).
      const ok = new Distiller({ teacher: (inputs: ModelInputs) => teacher.predict(inputs as tf.Tensor) as tf.Tensor, student });
      ok.compile({ optimizer: 'adam', temperature: 2 });
      await ok.fit(x, undefined, { parallel: failing });
      expect(await failing.workerTensors()).toEqual([0, 0]);
      x.dispose();
    } finally {
      await failing.close();
    }
  });

  it('ends the fit with WORKER_CRASHED when a worker dies, and starts new workers for the next fit', async () => {
    const crashing = workerPool({ workers: 2, setup: SETUP });
    try {
      const student = tfl.sequential({
        layers: [tfl.layers.dense({ units: 16, inputShape: [12] }), new CrashInWorker({ name: 'crash_in_worker' }), tfl.layers.dense({ units: 4 })],
      });
      const distiller = new Distiller({ teacher: mlp(1, 32), student });
      distiller.compile({ optimizer: 'adam', temperature: 2 });
      const { x } = data();
      const error = await distiller.fit(x, undefined, { parallel: crashing }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KdBackendError);
      expect(error).toMatchObject({ code: 'WORKER_CRASHED' });
      expect((error as Error).message).toMatch(/exited with code 3/);
      const healthy = new Distiller({ teacher: mlp(1, 32), student: mlp(2, 16) });
      healthy.compile({ optimizer: 'adam', temperature: 2 });
      const history = await healthy.fit(x, undefined, { parallel: crashing });
      expect(history.history.loss).toHaveLength(1);
      x.dispose();
    } finally {
      await crashing.close();
    }
  });
});

describe('workerPool: process exit', () => {
  it.each(['close', 'no-close'])('leaves no handle open after a fit (%s): the process exits by itself', async (mode) => {
    const script = fileURLToPath(new URL('./fixtures/poolExit.ts', import.meta.url));
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit within 30 s (${mode}): a handle is left open`));
      }, 30_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve({ stdout: out, code: exitCode });
      });
    });
    expect(stdout).toContain('trained 1 epoch');
    expect(code).toBe(0);
  });
});
