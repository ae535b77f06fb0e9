import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';
import { disposeBatch, type DistillationBatch } from '../inputs/batches.js';
import type { ModelInputs } from '../inputs/modelInputs.js';
import type { TopKLogits } from '../losses/topK.js';
import { isLayersModel, type Teacher, type TeacherLike } from '../teachers/teacher.js';
import type { Seed } from './seed.js';
import { callTeacher, type TeacherCallPlace } from './teacherCall.js';
import type { StepLogs, TrainStep, TrainStepOptions } from './trainStep.js';

// The core's side of data-parallel training: an interface that `fit` and
// `fitDataset` call when `parallel` is given, and the checks and glue around
// it. Everything that touches threads lives in kd-ts/node (`workerPool`).

/**
 * Trains a Distiller's student data-parallel: each batch split across
 * replicas, gradients averaged synchronously, one identical optimizer step on
 * every replica. `workerPool` in `kd-ts/node` is the implementation; the
 * Distiller only calls this interface, so the core stays free of threads.
 *
 * @example
 * ```ts
 * import { workerPool } from 'kd-ts/node';
 * import type { ParallelTrainer } from 'kd-ts/distill';
 *
 * const pool: ParallelTrainer = workerPool({ workers: 2 });
 * console.log(pool.workers); // 2
 * ```
 */
export interface ParallelTrainer {
  /** Number of replicas a batch is split across. */
  readonly workers: number;
  /**
   * Starts one run (one `fit`): replicates the student (and the teacher when
   * {@link ParallelRunSpec.teacherModel} is set) with its weights and optimizer state.
   */
  begin(spec: ParallelRunSpec): Promise<ParallelRun>;
}

/** What a {@link ParallelTrainer} needs to replicate a compiled Distiller's training step. */
export interface ParallelRunSpec {
  /** The user's student: replicated at the start, updated from the replicas by {@link ParallelRun.pullWeights}. */
  student: tfl.LayersModel;
  /** A LayersModel teacher the replicas may run themselves; absent when the teacher must run in the caller's thread. */
  teacherModel?: tfl.LayersModel;
  /** The optimizer the Distiller was compiled with: its class, settings and state are replicated. */
  optimizer: tf.Optimizer;
  /** The training step's options, student and optimizer aside (plain, structured-clonable values). */
  stepOptions: Omit<TrainStepOptions, 'student' | 'optimizer'>;
  /** The temperature passed to the teacher. */
  temperature: number;
  /** The run's seed: replica i draws its random numbers (dropout) from a stream derived from the seed and i. */
  seed?: Seed;
}

/** One batch for {@link ParallelRun.step}; tensors stay owned by the caller. */
export interface ParallelBatch {
  /** Student inputs. */
  inputs: ModelInputs;
  /** Labels, when the step has a hard-label term or measures accuracy. */
  labels?: tf.Tensor;
  /** What a replicated teacher reads, when it differs from `inputs`. */
  teacherInputs?: ModelInputs;
  /** The teacher's outputs for the batch (logits, or top-k `{ ids, logits }`), when the teacher ran in the caller's thread. */
  teacherLogits?: tf.Tensor | TopKLogits;
  /** Token-level runs: 1 for tokens that count, 0 for padding, `[batch, time]`. */
  mask?: tf.Tensor;
}

/** One run of a {@link ParallelTrainer}: created by `begin`, ended by `end`. */
export interface ParallelRun {
  /** True when the replicas run the teacher (so `step` needs no `teacherLogits`). */
  readonly replicatesTeacher: boolean;
  /** One synchronous data-parallel step; resolves to the batch's logs, example-weighted over the shards. */
  step(batch: ParallelBatch): Promise<StepLogs>;
  /** Copies the replicas' current weights into the user's student. */
  pullWeights(): Promise<void>;
  /** Copies the optimizer state back, releases the replicas; safe to call after a failure. */
  end(options?: { failed?: boolean }): Promise<void>;
}

/** What the Distiller hands to {@link beginParallelRun}. */
export interface ParallelSource {
  student: tfl.LayersModel;
  teacher: Teacher;
  teacherSource: TeacherLike;
  step: TrainStep;
  temperature: number;
}

/** Capabilities a parallel run cannot take yet: the fit-time option or compile setting, and why. */
const REFUSED_FIT_OPTIONS: Record<string, string> = {
  checkpoint: 'checkpoints would save the main thread\'s copy of the weights, not the replicas\' current ones',
  resume: 'resuming needs checkpoints, which parallel runs do not write yet',
};
const REFUSED_STEP_OPTIONS: Record<string, string> = {
  features: 'feature distillation needs the teacher\'s and student\'s intermediate layers inside each replica',
};
/** Settings that take a schedule (a function of the step's place in the run). */
const SCHEDULED_SETTINGS = new Set(['temperature', 'alpha', 'beta', 'learningRate']);

/**
 * Checks that a run can go parallel and starts it. Refuses, with a typed
 * error naming the capability, what the replicas cannot reproduce: options
 * that are functions (schedules), feature distillation, checkpoints.
 *
 * @internal
 */
export async function beginParallelRun(
  trainer: ParallelTrainer,
  source: ParallelSource,
  fitArgs: object & { seed?: Seed },
): Promise<ParallelRun> {
  if (trainer === null || typeof trainer !== 'object' || typeof trainer.begin !== 'function') {
    throw new KdConfigError(
      'INVALID_OPTION',
      'parallel must be a ParallelTrainer: pass workerPool({ workers }) from kd-ts/node',
    );
  }
  for (const [name, why] of Object.entries(REFUSED_FIT_OPTIONS)) {
    const value = (fitArgs as Record<string, unknown>)[name];
    if (value !== undefined && value !== false) refuse(`fit option ${name}`, why);
  }
  const { student: _student, optimizer, ...stepOptions } = source.step.options;
  for (const [name, value] of Object.entries(stepOptions)) {
    if (value === undefined) continue;
    if (name in REFUSED_STEP_OPTIONS && !(Array.isArray(value) && value.length === 0)) refuse(name, REFUSED_STEP_OPTIONS[name]!);
    if (SCHEDULED_SETTINGS.has(name) && typeof value === 'function') {
      refuse(
        `a ${name} schedule`,
        'the worker threads cannot receive functions, and the replicas would not see the step\'s place in the run; ' +
          `compile with a number for ${name}`,
      );
    }
    if (!isPlainData(value)) {
      refuse(
        name,
        'it is a function (a schedule?) or holds objects the worker threads cannot receive; ' +
          'give it as a number, or train without parallel',
      );
    }
  }
  return trainer.begin({
    student: source.student,
    ...(isLayersModel(source.teacherSource) ? { teacherModel: source.teacherSource } : {}),
    optimizer,
    stepOptions,
    temperature: source.temperature,
    ...(fitArgs.seed === undefined ? {} : { seed: fitArgs.seed }),
  });
}

/**
 * Runs one batch through a parallel run: the teacher in this thread when the
 * replicas do not hold it (once per batch), then the step. Disposes the batch.
 *
 * @internal
 */
export async function parallelBatch(
  run: ParallelRun,
  source: ParallelSource,
  element: DistillationBatch,
  place: TeacherCallPlace = { batch: 0 },
): Promise<StepLogs> {
  let teacherLogits: tf.Tensor | TopKLogits | undefined;
  try {
    if (!run.replicatesTeacher) {
      const context = { temperature: source.temperature, ...(element.id === undefined ? {} : { ids: element.id }) };
      // As in a single process: a teacher that throws is TEACHER_FAILED naming the epoch and batch.
      teacherLogits = await callTeacher(source.teacher, () => source.teacher.predict(element.teacherXs ?? element.xs, context), place);
    }
    return await run.step({
      inputs: element.xs,
      ...(element.ys === undefined ? {} : { labels: element.ys }),
      ...(element.teacherXs === undefined ? {} : { teacherInputs: element.teacherXs }),
      ...(teacherLogits === undefined ? {} : { teacherLogits }),
      ...(element.mask === undefined ? {} : { mask: element.mask }),
    });
  } finally {
    disposeBatch(element);
    tf.dispose(teacherLogits instanceof tf.Tensor ? [teacherLogits] : teacherLogits === undefined ? [] : [teacherLogits.ids, teacherLogits.logits]);
  }
}

/**
 * Wraps an epoch so the replicas' weights reach the user's student when the
 * epoch ends (before validation and the epoch-end callbacks read them).
 *
 * @internal
 */
export function pullingWeightsAfter<A extends unknown[]>(
  run: ParallelRun | undefined,
  runEpoch: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  if (run === undefined) return runEpoch;
  return async (...args: A) => {
    await runEpoch(...args);
    await run.pullWeights();
  };
}

/**
 * Ends a parallel run after training, success or failure. On failure the
 * replicas' last good weights (the failing step applied nothing) are pulled
 * when a replica is still alive, as a single-process fit would keep them.
 *
 * @internal
 */
export async function endingParallelRun<T>(run: ParallelRun | undefined, training: Promise<T>): Promise<T> {
  if (run === undefined) return training;
  let result: T;
  try {
    result = await training;
  } catch (error) {
    await run.pullWeights().catch(() => undefined);
    await run.end({ failed: true }).catch(() => undefined);
    throw error;
  }
  await run.end();
  return result;
}

function refuse(what: string, why: string): never {
  throw new KdConfigError(
    'PARALLEL_UNSUPPORTED',
    `${what} cannot be used with parallel training yet: ${why}; train without the parallel option to use it`,
  );
}

/** Values the structured clone algorithm copies as they are: no functions, no class instances but arrays. */
function isPlainData(value: unknown): boolean {
  if (value === null || ['number', 'string', 'boolean', 'undefined'].includes(typeof value)) return true;
  if (Array.isArray(value)) return value.every(isPlainData);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value as object).every(isPlainData);
  }
  return false;
}
