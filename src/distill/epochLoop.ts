import type * as tfl from '@tensorflow/tfjs-layers';
import { positiveInteger } from '../inputs/batches.js';
import { runCallbacks } from './callbacks.js';
import type { BaseFitArgs } from './Distiller.js';
import { withSeed } from './seed.js';
import type { StepLogs } from './trainStep.js';

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
 * @returns The tfjs `History`.
 * @internal
 */
export async function runEpochs(
  student: tfl.LayersModel,
  args: BaseFitArgs,
  params: { samples?: number; steps: number | null; batchSize?: number },
  validate: (() => Promise<Record<string, number>>) | undefined,
  runEpoch: (onBatch: OnBatch) => Promise<void>,
): Promise<tfl.History> {
  const epochs = positiveInteger(args.epochs ?? 1, 'epochs');
  const initialEpoch = args.initialEpoch ?? 0;
  const callbackParams = { ...params, epochs, initialEpoch, verbose: args.verbose ?? 0, doValidation: validate !== undefined };
  const train = () =>
    runCallbacks(student, args.callbacks, callbackParams, async (hooks) => {
      // Steps are counted from the run's start (epoch 0), so a schedule sees the same step after a resume.
      let step = params.steps === null ? 0 : initialEpoch * params.steps;
      for (let epoch = initialEpoch; epoch < epochs; epoch++) {
        await hooks.onEpochBegin(epoch);
        const totals = new MeanLogs();
        await runEpoch(async (batch, size, runStep) => {
          await hooks.onBatchBegin(batch, size);
          const logs = await runStep({ epoch, step, epochs, stepsPerEpoch: params.steps });
          step++;
          totals.add(logs, size);
          await hooks.onBatchEnd(batch, { ...logs, batch, size });
          return student.stopTraining;
        });
        const epochLogs = totals.mean();
        if (validate !== undefined) {
          // The settings (temperature, learningRate...) are the training step's, already logged.
          for (const [k, v] of Object.entries(await validate())) if (!SCHEDULED_LOG_KEYS.has(k)) epochLogs[`val_${k}`] = v;
        }
        await hooks.onEpochEnd(epoch, epochLogs);
        if (student.stopTraining) break;
      }
    });
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

/** Example-weighted running means of batch logs; {@link SCHEDULED_LOG_KEYS} keep their last value. */
export class MeanLogs {
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
