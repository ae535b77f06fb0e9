/**
 * Resuming the demo's distillation after a reload: the Distiller checkpoints
 * to IndexedDB at every epoch end (`indexedDbCheckpointStore`), one store per
 * set of settings, and a small note in `localStorage` says a run with those
 * settings started and has not finished, with the test accuracies measured so
 * far (the checkpoints hold the student and the optimizer, not the chart).
 * When the run ends, its checkpoints are removed: a new run starts fresh.
 */
import { indexedDbCheckpointStore, type CheckpointStore } from 'kd-ts/distill';
import type { RunSettings } from './experiment.js';

/** A run that started in this browser and has not finished. */
export interface PendingRun {
  /** The settings and the backend, as `runKey` reads them. */
  key: string;
  settings: RunSettings;
  backend: string;
  /** Test accuracy of the distilled student after each finished epoch (index 0: before training). */
  points: number[];
}

const NOTE = 'kd-ts-demo-pending-run';

/** One name per set of settings: a checkpoint never meets a run it does not fit. */
export function runKey(settings: RunSettings, backend: string): string {
  const { temperature, alpha, epochs, teacher, teacherEpochs, seed } = settings;
  return [backend, temperature, alpha, epochs, teacher, teacher === 'train' ? teacherEpochs : '-', seed].join('/');
}

/** The interrupted run, if the last one did not finish. */
export function pendingRun(): PendingRun | undefined {
  try {
    const text = localStorage.getItem(NOTE);
    return text === null ? undefined : (JSON.parse(text) as PendingRun);
  } catch {
    return undefined; // storage off (private mode) or an unreadable note: nothing to resume
  }
}

/** The checkpoint store of a run, or undefined where the browser gives the page no IndexedDB. */
export function checkpointStore(key: string): CheckpointStore | undefined {
  if (typeof indexedDB === 'undefined') return undefined;
  return indexedDbCheckpointStore(`kd-ts-demo/${key}`);
}

/** Notes that a run started (or resumed), and each accuracy it measures. */
export function notePoint(run: PendingRun): void {
  try {
    localStorage.setItem(NOTE, JSON.stringify(run));
  } catch {
    // storage off: the run trains, it just cannot resume after a reload
  }
}

/** The run finished: forget the note and remove its checkpoints. */
export async function finishRun(store: CheckpointStore | undefined): Promise<void> {
  try {
    localStorage.removeItem(NOTE);
  } catch {
    // storage off
  }
  if (store === undefined) return;
  for (const name of await store.list()) await store.remove(name);
}

/** The newest checkpoint in a store (kd-ts names them so that they sort by age). */
export async function newestCheckpoint(store: CheckpointStore | undefined): Promise<string | undefined> {
  return (await store?.list())?.filter((name) => name !== 'best').at(-1);
}
