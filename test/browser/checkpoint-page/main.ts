/**
 * The checkpoint test page: distils a tiny student (with dropout, Adam, a
 * seed) on the cpu backend, checkpointing to IndexedDB, and resumes from the
 * store when a previous load of the page left checkpoints there.
 *
 * URL parameters:
 * - `run`: the store's name (default `resume-test`); `mode=reference` trains
 *   without checkpoints (the uninterrupted run to compare with).
 * - `interruptAt=N`: on the first load of this tab, stop at step N (the page
 *   hangs in a callback, as a page frozen mid-run would) and say so in
 *   `data-status="interrupted"`, for the test to reload the page.
 * - `delayMs=M`: wait M ms after each step (numerics unchanged), so a reload
 *   at an arbitrary moment lands mid-run, possibly mid-write.
 * - `mode=store&phase=write|check`: the store alone (storeMode.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { Distiller, indexedDbCheckpointStore, seededRandom, withSeed } from 'kd-ts/distill';
import { storeMode } from './storeMode.js';

/** What the page reports in `window.__kdCheckpoint`. */
export interface CheckpointPageReport {
  mode: 'reference' | 'checkpointed' | 'store';
  /** The newest checkpoint in the store when the page loaded (undefined: a fresh run). */
  resumedFrom?: string;
  /** Steps this load of the page trained. */
  stepsThisLoad: number;
  /** The student's weights after the run, each tensor flattened. */
  weights?: number[][];
  /** `history.history` of the run. */
  history?: Record<string, number[]>;
  /** The store's records after the run. */
  checkpoints?: string[];
  error?: string;
}

declare global {
  interface Window {
    __kdCheckpoint?: CheckpointPageReport;
  }
}

const ROWS = 120;
const FEATURES = 8;
const CLASSES = 3;
const SEED = 7;
/** 15 steps an epoch, 60 in all. */
const BATCH_SIZE = 8;
const EPOCHS = 4;
const EVERY_STEPS = 4;

const params = new URLSearchParams(location.search);
const mode = params.get('mode') === 'reference' ? 'reference' : params.get('mode') === 'store' ? 'store' : 'checkpointed';
const runName = params.get('run') ?? 'resume-test';
const interruptAt = Number(params.get('interruptAt') ?? -1);
const delayMs = Number(params.get('delayMs') ?? 0);
const report: CheckpointPageReport = { mode, stepsThisLoad: 0 };
window.__kdCheckpoint = report;

function setStatus(status: string, text: string): void {
  document.body.dataset.status = status;
  document.getElementById('status')!.textContent = text;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
  const { x, y, teacher } = problem();
  const student = withSeed(SEED, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 16, activation: 'relu', inputShape: [FEATURES] }),
        tfl.layers.dropout({ rate: 0.2 }),
        tfl.layers.dense({ units: CLASSES }),
      ],
    }),
  );
  const distiller = new Distiller({ teacher, student });
  distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.3 });

  const store = mode === 'checkpointed' ? indexedDbCheckpointStore(runName) : undefined;
  report.resumedFrom = (await store?.list())?.filter((name) => name.startsWith('step-') || name.startsWith('epoch-')).at(-1);
  const firstLoad = sessionStorage.getItem(`started:${runName}`) === null;
  sessionStorage.setItem(`started:${runName}`, '1');
  setStatus('running', report.resumedFrom === undefined ? 'training' : `resuming from ${report.resumedFrom}`);

  const callbacks = {
    onBatchEnd: async () => {
      report.stepsThisLoad += 1;
      document.body.dataset.step = String(report.stepsThisLoad);
      if (firstLoad && report.stepsThisLoad === interruptAt) {
        setStatus('interrupted', `stopped at step ${interruptAt}: reload the page to resume`);
        await new Promise(() => undefined); // hangs until the page reloads
      }
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    },
  };
  // A variable, not a literal: the options type-check before and after fit's checkpoint options exist.
  const fitArgs = {
    epochs: EPOCHS,
    batchSize: BATCH_SIZE,
    seed: SEED,
    callbacks,
    ...(store === undefined ? {} : { checkpoint: { store, everySteps: EVERY_STEPS }, resume: true }),
  };
  const history = await distiller.fit(x, y, fitArgs);
  report.history = history.history as Record<string, number[]>;
  report.weights = student.getWeights().map((weight) => Array.from(weight.dataSync()));
  report.checkpoints = await store?.list();
  setStatus('done', `done: ${report.stepsThisLoad} steps in this load${report.resumedFrom === undefined ? '' : `, resumed from ${report.resumedFrom}`}`);
}

/** A fixed problem from the seed: inputs, labels, and a linear teacher. */
function problem(): { x: tf.Tensor2D; y: tf.Tensor1D; teacher: (input: unknown) => tf.Tensor } {
  const random = seededRandom(SEED);
  const values = Float32Array.from({ length: ROWS * FEATURES }, () => random() * 2 - 1);
  const projection = tf.tensor2d(Float32Array.from({ length: FEATURES * CLASSES }, () => random() * 2 - 1), [FEATURES, CLASSES]);
  const x = tf.tensor2d(values, [ROWS, FEATURES]);
  const y = tf.tidy(() => tf.argMax(tf.matMul(x, projection), 1) as tf.Tensor1D);
  return { x, y, teacher: (input) => tf.tidy(() => tf.mul(tf.matMul(input as tf.Tensor2D, projection), 3)) };
}

(mode === 'store' ? storeMode(params.get('phase') ?? 'check', setStatus) : main()).catch((error: unknown) => {
  report.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  setStatus('error', report.error);
});
