import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointArray } from '../checkpoints/format.js';
import type { CheckpointRecord, CheckpointStore } from '../checkpoints/store.js';
import { readOptimizerState, writeOptimizerState, assertResumableOptimizer } from '../compat/optimizerState.js';
import { readEarlyStopping, writeEarlyStopping, type EarlyStoppingState } from '../compat/earlyStoppingState.js';
import { withMathRandom } from '../compat/mathRandom.js';
import { KdConfigError, KdDataError, KdError } from '../errors.js';
import { disposeBatch, positiveInteger, type DatasetLike, type DistillationBatch } from '../inputs/batches.js';
import type { DistillerCallbacks } from './callbacks.js';
import { MeanLogs, type MeanLogsState } from './epochLoop.js';
import { assertSameRun, runFingerprint, type RunData, type RunFingerprint } from './runFingerprint.js';
import { seededStream, type SeededStream } from './seed.js';
import type { TrainStep } from './trainStep.js';

/** The `checkpoint` option of `fit` and `fitDataset` (see docs/checkpoints.md). */
export interface CheckpointOptions {
  /** Where checkpoints go: `fileCheckpointStore(dir)` (kd-ts/node), `indexedDbCheckpointStore(name)`, or your own {@link CheckpointStore}. */
  store: CheckpointStore;
  /** Also write one every this many steps (counted from the run's start). */
  everySteps?: number;
  /** Write one at the end of every this many epochs (default 1 without `everySteps`). The run's end always writes one. */
  everyEpochs?: number;
  /** Keep the best epoch apart as the record `best` (never removed by `keep`); `restore: true` loads its weights into the student when the run ends. */
  keepBest?: { monitor: string; mode?: 'min' | 'max'; restore?: boolean };
}

/** What the Distiller hands the run: its student and train step. @internal */
export interface RunSource {
  student: tfl.LayersModel;
  step: TrainStep;
}

/** The fit options a run reads. @internal */
export interface RunArgs {
  epochs?: number;
  seed?: number | string;
  callbacks?: DistillerCallbacks;
  parallel?: unknown;
  checkpoint?: CheckpointOptions;
  resume?: boolean;
  deterministic?: boolean;
}

/** Where a run stands, as a checkpoint saves it. */
interface Position {
  /** The epoch to run next (or the one in progress). */
  epoch: number;
  /** Batches of that epoch already done. */
  batch: number;
  /** Steps done since the run's start. */
  step: number;
  /** Early stopping (or a callback) stopped the run. */
  stopped: boolean;
}

interface SavedState {
  kdRun: 1;
  position: Position;
  fingerprint: RunFingerprint;
  random: { shuffle: object; global: object } | null;
  history: { epoch: number[]; history: Record<string, number[]> };
  totals: MeanLogsState | null;
  iteratorPosition: number;
  earlyStopping: EarlyStoppingState[];
  best: number | null;
  optimizer: { className: string; iterations: number; scalars: Record<string, number> };
}

/**
 * One `fit`/`fitDataset` call's state beyond the weights: its seeded random
 * streams and, with `checkpoint`, the checkpoints it writes and resumes from.
 * @internal
 */
export class TrainingRun {
  /** The shuffle stream (`Math.random` when the run is not seeded). */
  readonly random: () => number;
  /** The History to return without training: the resumed run had already finished. */
  finishedHistory?: tfl.History;
  private readonly shuffle?: SeededStream;
  private readonly global?: SeededStream;
  private resumed?: SavedState;
  private order?: Int32Array;
  private pendingOrder?: Int32Array;
  private pendingBatch = 0;
  private iteratorPosition = 0;
  private pendingSkip = 0;
  private best: number | null = null;
  private lastSaved = -1;
  private readonly corrupt: string[] = [];
  private readonly everySteps?: number;
  private readonly everyEpochs?: number;

  constructor(
    private readonly source: RunSource,
    private readonly args: RunArgs,
    private readonly fingerprint: RunFingerprint,
  ) {
    if (args.seed !== undefined) {
      this.shuffle = seededStream(args.seed);
      this.global = seededStream(args.seed);
    }
    this.random = this.shuffle?.next ?? Math.random;
    const c = args.checkpoint;
    if (c !== undefined) {
      this.everySteps = c.everySteps === undefined ? undefined : positiveInteger(c.everySteps, 'checkpoint.everySteps');
      this.everyEpochs = c.everyEpochs === undefined ? (c.everySteps === undefined ? 1 : undefined) : positiveInteger(c.everyEpochs, 'checkpoint.everyEpochs');
    }
  }

  /** Runs the training loop with `Math.random` drawing from the run's seeded stream. */
  seeded<T>(train: () => Promise<T>): Promise<T> {
    return this.global === undefined ? train() : withMathRandom(this.global.next, train);
  }

  /** The resumed position: epoch, steps done, and the epoch's running logs. */
  get start(): { epoch: number; step: number } | undefined {
    return this.resumed === undefined ? undefined : { epoch: this.resumed.position.epoch, step: this.resumed.position.step };
  }

  /** After `onTrainBegin`: puts the saved History and early-stopping state back. */
  restoreCallbacks(history: tfl.History): void {
    if (this.resumed === undefined) return;
    history.epoch = [...this.resumed.history.epoch];
    history.history = Object.fromEntries(Object.entries(this.resumed.history.history).map(([k, v]) => [k, [...v]]));
    writeEarlyStopping(this.args.callbacks, this.resumed.earlyStopping);
  }

  /** The running logs of an epoch: restored for the resumed epoch, fresh otherwise. */
  epochTotals(epoch: number): MeanLogs {
    const saved = this.resumed;
    if (saved !== undefined && saved.totals !== null && saved.position.epoch === epoch && this.pendingBatch > 0) return MeanLogs.fromState(saved.totals);
    return new MeanLogs();
  }

  /** `fit`: this epoch's order (the saved one in a resumed epoch) and the first batch to run. */
  epochOrder(draw: () => Int32Array): { order: Int32Array; firstBatch: number } {
    const firstBatch = this.pendingBatch;
    this.order = this.pendingOrder ?? draw();
    this.pendingOrder = undefined;
    this.pendingBatch = 0;
    return { order: this.order, firstBatch };
  }

  /** `fitDataset`: the first batch of this epoch to run (batches already done are skipped by {@link iterator}). */
  firstBatch(): number {
    const first = this.pendingBatch;
    this.pendingBatch = 0;
    return first;
  }

  /** `fitDataset`: a new iterator, counted; a resumed run skips the batches it had drawn (`deterministic: true`). */
  async iterator(dataset: DatasetLike<DistillationBatch>): Promise<{ next(): Promise<IteratorResult<DistillationBatch>> }> {
    const inner = await dataset.iterator();
    this.iteratorPosition = 0;
    for (; this.pendingSkip > 0; this.pendingSkip--) {
      const next = await inner.next();
      if (next.done) break;
      disposeBatch(next.value);
      this.iteratorPosition++;
    }
    this.pendingSkip = 0;
    return {
      next: async () => {
        const next = await inner.next();
        // A finished iterator is replaced by a fresh one in the next epoch: nothing of it to skip on resume.
        if (next.done) this.iteratorPosition = 0;
        else this.iteratorPosition++;
        return next;
      },
    };
  }

  /** After a step's callbacks: a checkpoint every `everySteps` steps. */
  async afterBatch(epoch: number, batchesDone: number, step: number, totals: MeanLogs, history: tfl.History): Promise<void> {
    if (this.everySteps === undefined || step % this.everySteps !== 0) return;
    await this.save({ epoch, batch: batchesDone, step, stopped: false }, totals, history);
  }

  /** After an epoch's callbacks: the best checkpoint, and a rolling one every `everyEpochs` epochs and at the run's end. */
  async afterEpoch(epoch: number, step: number, logs: Record<string, number>, history: tfl.History, stopped: boolean): Promise<void> {
    const c = this.args.checkpoint;
    if (c === undefined) return;
    const position = { epoch: epoch + 1, batch: 0, step, stopped };
    const last = stopped || epoch + 1 >= (this.args.epochs ?? 1);
    if (c.keepBest !== undefined) {
      const value = logs[c.keepBest.monitor];
      if (value === undefined) {
        throw new KdConfigError('INVALID_OPTION', `checkpoint.keepBest.monitor ${c.keepBest.monitor} is not in the epoch logs (${Object.keys(logs).join(', ')}): monitor one of those (val_ ones need validationData)`);
      }
      const better = c.keepBest.mode === 'max' ? value > (this.best ?? -Infinity) : value < (this.best ?? Infinity);
      if (better) {
        this.best = value;
        await c.store.write(await this.record('best', position, null, history));
      }
    }
    if (last || (this.everyEpochs !== undefined && (epoch + 1) % this.everyEpochs === 0)) await this.save(position, null, history);
    if (last) await this.restoreBest();
  }

  /** `keepBest.restore`: the best epoch's student weights, at the run's end. */
  private async restoreBest(): Promise<void> {
    const c = this.args.checkpoint;
    if (c?.keepBest?.restore !== true || this.best === null) return;
    const { arrays } = decodeCheckpoint(await c.store.read('best'));
    restoreVariables(this.source.student.weights.map((w) => w.read() as tf.Variable), arrays.filter((a) => a.group === 'student'), 'student');
  }

  /** Reads the newest good checkpoint and restores the student, optimizer, projections and streams from it. */
  async resume(): Promise<void> {
    const store = this.args.checkpoint!.store;
    const rolling = (await store.list()).filter((n) => n.startsWith('step-')).sort().reverse();
    for (const name of rolling) {
      let decoded: { state: Record<string, unknown>; arrays: CheckpointArray[] };
      try {
        decoded = decodeCheckpoint(await store.read(name));
        if ((decoded.state as Partial<SavedState>).kdRun !== 1) throw new KdDataError('CHECKPOINT_CORRUPT', `checkpoint ${name}: no run state in its manifest`);
      } catch (error) {
        if (error instanceof KdError && error.code !== 'CHECKPOINT_CORRUPT') throw error;
        console.warn(`kd-ts: checkpoint ${name} cannot be used (${(error as Error).message}); falling back to the previous one`);
        this.corrupt.push(name);
        continue;
      }
      const saved = decoded.state as unknown as SavedState;
      assertSameRun(name, saved.fingerprint, this.fingerprint);
      await this.apply(saved, decoded.arrays);
      return;
    }
    if (rolling.length > 0) {
      throw new KdDataError('CHECKPOINT_CORRUPT', `no checkpoint in the store can be read (${rolling.join(', ')} are all damaged): remove them to start afresh, or resume from a copy`);
    }
  }

  private async apply(saved: SavedState, arrays: CheckpointArray[]): Promise<void> {
    const { student, step } = this.source;
    restoreVariables(student.weights.map((w) => w.read() as tf.Variable), arrays.filter((a) => a.group === 'student'), 'student');
    restoreVariables([...step.projectionVariables], arrays.filter((a) => a.group === 'projections'), 'projections');
    const slots = arrays.filter((a) => a.group === 'optimizer').map((a) => ({ name: a.name, tensor: tf.tensor(a.data, a.shape, a.dtype) }));
    try {
      await writeOptimizerState(step.options.optimizer, { ...saved.optimizer, slots });
    } finally {
      tf.dispose(slots.map((s) => s.tensor));
    }
    if (saved.random !== null) {
      this.shuffle?.restore(saved.random.shuffle);
      this.global?.restore(saved.random.global);
    }
    this.resumed = saved;
    this.best = saved.best;
    this.lastSaved = saved.position.step;
    this.pendingBatch = saved.position.batch;
    this.pendingOrder = arrays.find((a) => a.group === 'order')?.data as Int32Array | undefined;
    this.pendingSkip = this.args.deterministic === true ? saved.iteratorPosition : 0;
    if (saved.position.stopped || saved.position.epoch >= (this.args.epochs ?? 1)) {
      const history = new tfl.History();
      this.restoreCallbacks(history);
      this.finishedHistory = history;
      await this.restoreBest();
    }
  }

  private async save(position: Position, totals: MeanLogs | null, history: tfl.History): Promise<void> {
    const store = this.args.checkpoint!.store;
    if (position.step === this.lastSaved && position.batch > 0) return;
    const written = `step-${String(position.step).padStart(9, '0')}`;
    await store.write(await this.record(written, position, totals, history));
    this.lastSaved = position.step;
    // Damaged checkpoints the resume skipped go (unless this write just replaced one under its name) and do not
    // count toward `keep`; older good ones go only once a newer one is written.
    const damaged = new Set(this.corrupt.splice(0).filter((name) => name !== written));
    const rolling = (await store.list()).filter((n) => n.startsWith('step-') && !damaged.has(n)).sort();
    const excess = rolling.slice(0, Math.max(0, rolling.length - (store.keep ?? 2)));
    for (const name of [...excess, ...damaged]) await store.remove(name);
  }

  private async record(name: string, position: Position, totals: MeanLogs | null, history: tfl.History): Promise<CheckpointRecord> {
    const { student, step } = this.source;
    const optimizer = await readOptimizerState(step.options.optimizer);
    const arrays: CheckpointArray[] = [];
    try {
      const add = async (group: string, name: string, t: tf.Tensor) => {
        if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new KdConfigError('CHECKPOINT_UNSUPPORTED', `${group} ${name} is ${t.dtype}: checkpoints hold float32 and int32 tensors only`);
        arrays.push({ group, name, dtype: t.dtype, shape: [...t.shape], data: (await t.data()) as Float32Array | Int32Array });
      };
      for (const w of student.weights) await add('student', w.originalName, w.read());
      for (const v of step.projectionVariables) await add('projections', v.name, v);
      for (const s of optimizer.slots) await add('optimizer', s.name, s.tensor);
    } finally {
      tf.dispose(optimizer.slots.map((s) => s.tensor));
    }
    if (position.batch > 0 && this.order !== undefined) arrays.push({ group: 'order', name: 'order', dtype: 'int32', shape: [this.order.length], data: this.order });
    const state: SavedState = {
      kdRun: 1,
      position,
      fingerprint: this.fingerprint,
      random: this.shuffle === undefined || this.global === undefined ? null : { shuffle: this.shuffle.state(), global: this.global.state() },
      history: { epoch: [...history.epoch], history: history.history as Record<string, number[]> },
      totals: position.batch > 0 && totals !== null ? totals.state() : null,
      iteratorPosition: this.iteratorPosition,
      earlyStopping: readEarlyStopping(this.args.callbacks),
      best: this.best,
      optimizer: { className: optimizer.className, iterations: optimizer.iterations, scalars: optimizer.scalars },
    };
    return encodeCheckpoint(name, arrays, state as unknown as Record<string, unknown>);
  }
}

/**
 * Starts a run's state: checks the checkpoint options and, with `resume`,
 * restores the newest good checkpoint (see {@link TrainingRun.resume}).
 *
 * @throws {@link KdConfigError} `INVALID_OPTION` for `resume` without a store or `everySteps` on a dataset
 *   without `deterministic`, `PARALLEL_UNSUPPORTED` with `parallel`, `CHECKPOINT_UNSUPPORTED` for Adamax,
 *   `CHECKPOINT_MISMATCH` for another run's checkpoint.
 * @throws {@link KdDataError} `CHECKPOINT_CORRUPT` when every checkpoint in the store is damaged.
 * @internal
 */
export async function startRun(source: RunSource, args: RunArgs, data: RunData): Promise<TrainingRun> {
  const checkpoint = args.checkpoint;
  if (args.resume === true && checkpoint === undefined) {
    throw new KdConfigError('INVALID_OPTION', 'resume: true needs checkpoint: { store } (where the run\'s checkpoints are): pass the store the interrupted run wrote to');
  }
  if (checkpoint === undefined) return new TrainingRun(source, args, {} as RunFingerprint);
  if (args.parallel !== undefined) {
    throw new KdConfigError('PARALLEL_UNSUPPORTED', 'checkpoint cannot be combined with parallel yet (the replicas\' optimizer state is not saved): train in one process to checkpoint, or drop checkpoint');
  }
  if (checkpoint.store === undefined || typeof checkpoint.store.write !== 'function') {
    throw new KdConfigError('INVALID_OPTION', 'checkpoint.store must be a CheckpointStore (fileCheckpointStore(dir) from kd-ts/node, indexedDbCheckpointStore(name), or your own)');
  }
  if (data.samples === null && checkpoint.everySteps !== undefined && args.deterministic !== true) {
    throw new KdConfigError('INVALID_OPTION', 'fitDataset: checkpoint.everySteps needs deterministic: true (kd-ts cannot skip the batches done in an epoch of a dataset that may change between passes): pass deterministic: true if every iterator() yields the same batches, or checkpoint at epoch ends only');
  }
  assertResumableOptimizer(source.step.options.optimizer);
  const run = new TrainingRun(source, args, runFingerprint(source.student, source.step, data));
  if (args.resume === true) await run.resume();
  return run;
}

function restoreVariables(variables: tf.Variable[], arrays: CheckpointArray[], what: string): void {
  if (variables.length !== arrays.length || variables.some((v, i) => v.shape.join() !== arrays[i]!.shape.join())) {
    throw new KdConfigError('CHECKPOINT_MISMATCH', `the checkpoint's ${what} weights (${arrays.length}) do not match the run's (${variables.length}) in number or shape: resume with the same model`);
  }
  tf.tidy(() => variables.forEach((v, i) => v.assign(tf.tensor(arrays[i]!.data, arrays[i]!.shape, v.dtype))));
}
