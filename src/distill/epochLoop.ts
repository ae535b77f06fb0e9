import type * as tfl from '@tensorflow/tfjs-layers';
import { positiveInteger } from '../inputs/batches.js';
import { runCallbacks } from './callbacks.js';
import type { BaseFitArgs } from './distillerOptions.js';
import { withSeed } from './seed.js';
import type { StepLogs } from './trainStep.js';
import type { TrainingRun } from './checkpointing.js';

/**
 * The epoch loop shared by `Distiller.fit` and `fitDataset`: callbacks
 * around every epoch and batch, example-weighted epoch logs, validation
 * logs with a `val_` prefix, early stopping through `student.stopTraining`,
 * and the whole run seeded when `args.seed` is given.
 *
 * @param student - The model being trained (the callbacks' model).
 * @param args - Epochs, callbacks, verbosity, seed.
 * @param params - What tfjs callbacks see of the run (`samples`, `steps`, `batchSize`).
 * @param validate - Scores the validation data at the end of every epoch.
 * @param runEpoch - Runs one epoch's batches, each through `onBatch`.
 * @param run - The run's seeded streams and checkpoints (resume point, saves after steps and epochs).
 * @returns The tfjs `History`.
 * @internal
 */
export async function runEpochs(
  student: tfl.LayersModel,
  args: BaseFitArgs,
  params: { samples?: number; steps: number | null; batchSize?: number },
  validate: (() => Promise<Record<string, number>>) | undefined,
  runEpoch: (onBatch: OnBatch) => Promise<void>,
  run?: TrainingRun,
): Promise<tfl.History> {
  // A resumed run that had already finished: its History, no training.
  if (run?.finishedHistory !== undefined) return run.finishedHistory;
  const epochs = positiveInteger(args.epochs ?? 1, 'epochs');
  const initialEpoch = args.initialEpoch ?? 0;
  const callbackParams = { ...params, epochs, initialEpoch, verbose: args.verbose ?? 0, doValidation: validate !== undefined };
  const train = () =>
    runCallbacks(student, args.callbacks, callbackParams, async (hooks, history) => {
      // Steps are counted from the run's start (epoch 0), so a schedule sees the same step after a resume.
      let step = run?.start?.step ?? (params.steps === null ? 0 : initialEpoch * params.steps);
      run?.restoreCallbacks(history);
      for (let epoch = run?.start?.epoch ?? initialEpoch; epoch < epochs; epoch++) {
        await hooks.onEpochBegin(epoch);
        const totals = run?.epochTotals(epoch) ?? new MeanLogs();
        await runEpoch(async (batch, size, runStep) => {
          await hooks.onBatchBegin(batch, size);
          const logs = await runStep({ epoch, step, epochs, stepsPerEpoch: params.steps });
          step++;
          totals.add(logs, size);
          await hooks.onBatchEnd(batch, { ...logs, batch, size });
          await run?.afterBatch(epoch, batch + 1, step, totals, history);
          return student.stopTraining;
        });
        const epochLogs = totals.mean();
        if (validate !== undefined) {
          // The settings (temperature, learningRate...) are the training step's, already logged.
          for (const [k, v] of Object.entries(await validate())) if (!SCHEDULED_LOG_KEYS.has(k)) epochLogs[`val_${k}`] = v;
        }
        await hooks.onEpochEnd(epoch, epochLogs);
        await run?.afterEpoch(epoch, step, epochLogs, history, student.stopTraining);
        if (student.stopTraining) break;
      }
    });
  if (run !== undefined) return run.seeded(train);
  return args.seed === undefined ? train() : withSeed(args.seed, train);
}

/** Where a training step falls in the run: what schedules are evaluated at. */
export interface StepContext {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based step counted from the run's start. */
  step: number;
  /** Total epochs of the run. */
  epochs: number;
  /** Steps per epoch, or null when a dataset's length is unknown. */
  stepsPerEpoch: number | null;
}

/** Runs one batch's step between the batch callbacks; resolves true when training should stop. */
export type OnBatch = (batch: number, size: number, runStep: (context: StepContext) => Promise<StepLogs>) => Promise<boolean>;

/**
 * Log keys that hold a scheduled setting rather than a per-batch measure:
 * an epoch reports the value at its last step, not a mean.
 */
export const SCHEDULED_LOG_KEYS: ReadonlySet<string> = new Set(['temperature', 'alpha', 'beta', 'learningRate']);

/** A {@link MeanLogs}' running sums, for checkpoints taken mid-epoch. */
export interface MeanLogsState {
  sums: Record<string, number>;
  last: Record<string, number>;
  count: number;
}

/** Example-weighted running means of batch logs; {@link SCHEDULED_LOG_KEYS} keep their last value. */
export class MeanLogs {
  /** Continues from sums saved by {@link MeanLogs.state}. */
  static fromState(state: MeanLogsState): MeanLogs {
    const logs = new MeanLogs();
    Object.assign(logs.sums, state.sums);
    Object.assign(logs.last, state.last);
    logs.count = state.count;
    return logs;
  }

  /** The running sums (a copy). */
  state(): MeanLogsState {
    return { sums: { ...this.sums }, last: { ...this.last }, count: this.count };
  }

  private readonly sums: Record<string, number> = {};
  private readonly last: Record<string, number> = {};
  private count = 0;

  add(logs: Record<string, number>, size: number): void {
    for (const [k, v] of Object.entries(logs)) {
      if (SCHEDULED_LOG_KEYS.has(k)) this.last[k] = v;
      else this.sums[k] = (this.sums[k] ?? 0) + v * size;
    }
    this.count += size;
  }

  mean(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.sums)) out[k] = v / Math.max(this.count, 1);
    return { ...out, ...this.last };
  }
}
