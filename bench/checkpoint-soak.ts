/**
 * Checkpoint soak (issue #12; a bench, not a test): a long `fit` of the MLP
 * student 784-800-800-10 with a checkpoint every 100 steps into a
 * `fileCheckpointStore` in a temporary folder. Reports
 * - `tf.memory().numTensors` and the process's RSS after the first
 *   checkpoint and at the end, and their range over every checkpoint
 *   (goal: flat);
 * - what a checkpoint costs: the step that writes one against the median
 *   step, and that extra time spread over the 100 steps between checkpoints,
 *   as a share of the step time (goal: ≤ 5 %);
 * - the same run without checkpoints, alternated with the checkpointed one
 *   (wall time per step), as a second, coarser view of the cost.
 *
 * The teacher is a fixed linear map (784 → 10), so the step time is nearly all
 * the student's: the cheapest step, hence the largest share a checkpoint can
 * take. Batches of 128 synthetic digits (uniform pixels, a fixed set of
 * 12,800 rows: 100 steps an epoch), Adam, KL at T = 4.
 *
 * Run: `nice -n 15 npx tsx bench/checkpoint-soak.ts [--steps 10000] [--runs 1] [--backend wasm|cpu] [--every 100] [--plain-first | --checkpointed-only]`
 * (`--checkpointed-only` skips the plain run: half the time, no "without" column)
 * (10,000 steps take ~10-20 minutes on 2 idle cores on wasm; `--steps 1000` for a short run).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { Distiller, pickTrainingBackend, withSeed } from '../src/index.js';
import type { CheckpointStore } from '../src/distill/index.js';
import { fileCheckpointStore } from '../src/node/index.js';
import { formatTable, loadAverage, machine, median } from './util.js';

const BATCH = 128;
const ROWS = 12_800;
/** Steps between checkpoints (`--every`; the goal is stated for 100). */
let EVERY_STEPS = 100;
const MB = 1024 * 1024;

/** What one run measured. */
interface SoakRun {
  checkpointed: boolean;
  steps: number;
  seconds: number;
  /** Per step: ms between consecutive batch ends. */
  stepMs: number[];
  /** Indices (into stepMs) of the steps during which a checkpoint was written. */
  checkpointSteps: number[];
  /** ms spent inside the store's write (file, fsync, rename) per checkpoint. */
  writeMs: number[];
  /** numTensors and RSS (MB) sampled right after each checkpoint's write returns. */
  tensors: number[];
  rssMb: number[];
  tensorsEnd: number;
  rssEndMb: number;
  checkpointBytes: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '10000' },
      runs: { type: 'string', default: '1' },
      backend: { type: 'string', default: 'wasm' },
      every: { type: 'string', default: '100' },
      'plain-first': { type: 'boolean', default: false },
      'checkpointed-only': { type: 'boolean', default: false },
    },
  });
  EVERY_STEPS = Number(values.every);
  const steps = Number(values.steps);
  const runs = Number(values.runs);
  if (!Number.isInteger(steps) || steps < ROWS / BATCH || steps % (ROWS / BATCH) !== 0) {
    throw new Error(`--steps must be a positive multiple of ${ROWS / BATCH}, got ${values.steps}`);
  }
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: [values.backend as 'wasm' | 'cpu'] });
  const loadBefore = loadAverage();
  console.log(`checkpoint soak: ${machine()}, backend ${tf.getBackend()} (${choice.reasons.join('; ')}), load before ${loadBefore}`);
  console.log(`MLP 784-800-800-10, batch ${BATCH}, ${steps} steps, a checkpoint every ${EVERY_STEPS} steps, ${runs} run(s) ${values['checkpointed-only'] ? 'with checkpoints only' : 'each way'}\n`);

  const x = tf.randomUniform([ROWS, 784], 0, 1, 'float32', 11) as tf.Tensor2D;
  const projection = tf.randomNormal([784, 10], 0, 0.1, 'float32', 12);
  const teacher = (input: unknown) => tf.matMul(input as tf.Tensor2D, projection);

  const results: SoakRun[] = [];
  // Alternate: checkpointed, plain, checkpointed, plain...: load from other processes falls on both.
  for (let run = 0; run < runs; run++) {
    const ways = values['checkpointed-only'] ? [true] : values['plain-first'] ? [false, true] : [true, false];
    for (const checkpointed of ways) {
      const result = await soak(teacher, x, steps, checkpointed);
      results.push(result);
      console.log(`  run ${run + 1} ${checkpointed ? 'with checkpoints' : 'without'}: ${result.seconds.toFixed(1)} s, median step ${median(result.stepMs).toFixed(1)} ms, load ${loadAverage()}`);
    }
  }
  report(results, steps, loadBefore);
  tf.dispose([x, projection]);
}

async function soak(teacher: (input: unknown) => tf.Tensor, x: tf.Tensor2D, steps: number, checkpointed: boolean): Promise<SoakRun> {
  const student = withSeed(0, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 800, activation: 'relu', inputShape: [784] }),
        tfl.layers.dense({ units: 800, activation: 'relu' }),
        tfl.layers.dense({ units: 10 }),
      ],
    }),
  );
  const optimizer = tf.train.adam(1e-3);
  const distiller = new Distiller({ teacher, student });
  distiller.compile({ optimizer, temperature: 4 });
  const directory = await mkdtemp(path.join(tmpdir(), 'kd-ts-soak-'));
  const result: SoakRun = {
    checkpointed,
    steps,
    seconds: 0,
    stepMs: [],
    checkpointSteps: [],
    writeMs: [],
    tensors: [],
    rssMb: [],
    tensorsEnd: 0,
    rssEndMb: 0,
    checkpointBytes: 0,
  };
  const files = fileCheckpointStore(directory);
  // The store as kd-ts sees it, timing each write and sampling memory after it.
  const store: CheckpointStore = {
    keep: files.keep ?? 2,
    list: () => files.list(),
    read: (name) => files.read(name),
    remove: (name) => files.remove(name),
    write: async (record) => {
      const started = performance.now();
      await files.write(record);
      result.writeMs.push(performance.now() - started);
      result.checkpointSteps.push(result.stepMs.length); // the step under way
      result.checkpointBytes = record.weights.byteLength;
      result.tensors.push(tf.memory().numTensors);
      result.rssMb.push(process.memoryUsage().rss / MB);
    },
  };
  let last = performance.now();
  const started = last;
  const callbacks = {
    onBatchEnd: async () => {
      const now = performance.now();
      result.stepMs.push(now - last);
      last = now;
    },
  };
  const fitArgs = {
    epochs: steps / (ROWS / BATCH),
    batchSize: BATCH,
    seed: 0,
    callbacks,
    ...(checkpointed ? { checkpoint: { store, everySteps: EVERY_STEPS } } : {}),
  };
  await distiller.fit(x, undefined, fitArgs);
  result.seconds = (performance.now() - started) / 1000;
  result.tensorsEnd = tf.memory().numTensors;
  result.rssEndMb = process.memoryUsage().rss / MB;
  optimizer.dispose();
  student.dispose();
  await rm(directory, { recursive: true, force: true });
  return result;
}

function report(results: SoakRun[], steps: number, loadBefore: string): void {
  const withCheckpoints = results.filter((r) => r.checkpointed);
  const without = results.filter((r) => !r.checkpointed);
  if (withCheckpoints.some((r) => r.writeMs.length === 0)) throw new Error('fit wrote no checkpoint: this kd-ts has no fit(..., { checkpoint })');
  const rows = withCheckpoints.map((r, i) => {
    const plainSteps = r.stepMs.filter((_, k) => !r.checkpointSteps.includes(k) && k > 0);
    const step = median(plainSteps);
    // The run's last checkpoint is written after its last step: only those written during a step count here.
    const during = r.checkpointSteps.map((k) => r.stepMs[k]).filter((v): v is number => v !== undefined);
    const checkpointStep = during.length === 0 ? NaN : median(during);
    const extra = checkpointStep - step;
    const baseline = without[i];
    const wallPerStep = (r.seconds * 1000) / r.steps;
    const baselinePerStep = baseline === undefined ? NaN : (baseline.seconds * 1000) / baseline.steps;
    return [
      String(i + 1),
      `${r.tensors[0]} → ${r.tensorsEnd} (${Math.min(...r.tensors)}–${Math.max(...r.tensors)})`,
      `${r.rssMb[0]!.toFixed(0)} → ${r.rssEndMb.toFixed(0)} (${Math.min(...r.rssMb).toFixed(0)}–${Math.max(...r.rssMb).toFixed(0)})`,
      `${(r.checkpointBytes / MB).toFixed(1)} MB`,
      `${step.toFixed(1)} / ${(plainSteps.reduce((a, b) => a + b, 0) / plainSteps.length).toFixed(1)} / ${percentile(plainSteps, 0.9).toFixed(1)}`,
      `${checkpointStep.toFixed(1)} (write ${median(r.writeMs).toFixed(1)})`,
      `${((100 * extra) / (EVERY_STEPS * step)).toFixed(2)} %`,
      baseline === undefined
        ? `${wallPerStep.toFixed(1)} / — (no plain run)`
        : `${wallPerStep.toFixed(1)} / ${baselinePerStep.toFixed(1)} (${((100 * (wallPerStep - baselinePerStep)) / baselinePerStep).toFixed(1)} %)`,
    ];
  });
  console.log(`\n${steps} steps per run; load before ${loadBefore}, after ${loadAverage()}; backend ${tf.getBackend()}; ${machine()}\n`);
  console.log(
    formatTable(
      [
        'run',
        'numTensors: first ckpt → end (range)',
        'RSS MB: first ckpt → end (range)',
        'checkpoint',
        'step ms: median / mean / p90',
        'checkpoint step ms (store write)',
        'checkpoint cost / step',
        'wall ms/step with / without',
      ],
      rows,
    ),
  );
  withCheckpoints.forEach((r, i) => console.log(`\nrun ${i + 1} over time: ${trend(r)}`));
}

/** RSS and numTensors at the first checkpoint, each quarter of the run, and the last: the trend the range hides. */
function trend(r: SoakRun): string {
  const n = r.rssMb.length;
  const at = [0, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 1];
  return at.map((k) => `ckpt ${k + 1}: ${r.rssMb[k]!.toFixed(0)} MB, ${r.tensors[k]} tensors`).join('; ');
}

function percentile(values: readonly number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
