import { KdConfigError } from '../errors.js';
import type { StepContext } from './epochLoop.js';

export type { StepContext } from './epochLoop.js';

/**
 * A setting that may change during a run: a number, or a pure function of
 * the step's place in the run, evaluated once per training step. Taken by
 * `Distiller.compile`'s `temperature`, `alpha`, `beta`, `learningRate` and
 * each feature term's `weight`.
 *
 * @example
 * ```ts
 * import type { Schedule } from 'kd-ts/distill';
 *
 * const constant: Schedule = 4;
 * // T from 8 down to 2 over the first 5 epochs, then 2.
 * const annealed: Schedule = ({ epoch }) => Math.max(2, 8 - (6 * epoch) / 5);
 * ```
 */
export type Schedule = number | ((at: StepContext) => number);

/**
 * The parameters of a ready-made schedule, as plain data (what a checkpoint
 * records to tell whether a resumed run uses the same settings).
 */
export interface ScheduleSpec {
  /** Which ready-made schedule. */
  readonly type: 'linear' | 'cosine' | 'step' | 'warmup';
  /** The value at the start. */
  readonly from: number;
  /** The value at the end (`linear`, `cosine`, `warmup`). */
  readonly to?: number;
  /** `step` only: the value is multiplied by this every `steps` or `epochs`. */
  readonly factor?: number;
  /** Duration (or period, for `step`) in training steps; absent when given in epochs. */
  readonly steps?: number;
  /** Duration (or period, for `step`) in epochs; absent when given in steps. */
  readonly epochs?: number;
  /** `warmup` only: what follows the warmup (a number, a spec, or `'function'`). */
  readonly then?: number | ScheduleSpec | 'function';
}

/** A schedule made by {@link linearSchedule}, {@link cosineSchedule}, {@link stepSchedule} or {@link warmup}. */
export interface DescribedSchedule {
  /** The value at one step. */
  (at: StepContext): number;
  /** Its parameters, as plain data. */
  readonly spec: ScheduleSpec;
}

/** How long a schedule runs: `steps` (training steps from the run's start) or `epochs`. */
export interface ScheduleDuration {
  /** Training steps, counted from the run's start (epoch 0), including resumed epochs. */
  steps?: number;
  /** Epochs; the value then changes once per epoch, at its first step. */
  epochs?: number;
}

/** Options of {@link linearSchedule} and {@link cosineSchedule}. */
export interface RampOptions extends ScheduleDuration {
  /** The value at step 0 (epoch 0). */
  from: number;
  /** The value at the end of the duration, and after it. */
  to: number;
}

/** Options of {@link stepSchedule}. */
export interface StepScheduleOptions extends ScheduleDuration {
  /** The value during the first period. */
  from: number;
  /** Multiplies the value at the start of every later period (e.g. 0.1). */
  factor: number;
}

/** Options of {@link warmup}. */
export interface WarmupOptions extends ScheduleDuration {
  /** The value at step 0 (default 0). */
  from?: number;
  /** The value reached at the end of the warmup. */
  to: number;
  /**
   * What follows the warmup (default: `to`, constant). A schedule here sees
   * the run as if it started when the warmup ends: its step (and, for a warmup
   * in epochs, its epoch) counted from there.
   */
  then?: Schedule;
}

/**
 * A linear ramp from `from` to `to` over `steps` training steps or `epochs`
 * epochs, then `to`.
 *
 * @param options - `from`, `to`, and exactly one of `steps` or `epochs`.
 * @returns A {@link DescribedSchedule}: value `from + (to − from) · min(position / duration, 1)`.
 * @throws {@link KdConfigError} `INVALID_OPTION` for non-finite values or a duration that is not one positive integer.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { linearSchedule } from 'kd-ts/distill';
 *
 * const temperature = linearSchedule({ from: 8, to: 2, epochs: 10 });
 * temperature({ epoch: 5, step: 500, epochs: 20, stepsPerEpoch: 100 }); // 5
 * temperature.spec; // { type: 'linear', from: 8, to: 2, epochs: 10 }
 * ```
 */
export function linearSchedule(options: RampOptions): DescribedSchedule {
  const { from, to } = checkedEnds('linearSchedule', options);
  const duration = checkedDuration('linearSchedule', options);
  return described({ type: 'linear', from, to, ...duration.spec }, (at) => from + (to - from) * duration.progress(at));
}

/**
 * A half-cosine from `from` to `to` over `steps` training steps or `epochs`
 * epochs, then `to` (Loshchilov and Hutter's SGDR without restarts; with
 * `to: 0`, the cosine decay of Keras's `CosineDecay`).
 *
 * @param options - `from`, `to`, and exactly one of `steps` or `epochs`.
 * @returns A {@link DescribedSchedule}: value `to + (from − to) · (1 + cos(π · min(position / duration, 1))) / 2`.
 * @throws {@link KdConfigError} `INVALID_OPTION` for non-finite values or a duration that is not one positive integer.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { cosineSchedule } from 'kd-ts/distill';
 *
 * const learningRate = cosineSchedule({ from: 1e-3, to: 0, steps: 1000 });
 * learningRate({ epoch: 0, step: 500, epochs: 10, stepsPerEpoch: 100 }); // 5e-4
 * ```
 */
export function cosineSchedule(options: RampOptions): DescribedSchedule {
  const { from, to } = checkedEnds('cosineSchedule', options);
  const duration = checkedDuration('cosineSchedule', options);
  return described(
    { type: 'cosine', from, to, ...duration.spec },
    (at) => to + ((from - to) * (1 + Math.cos(Math.PI * duration.progress(at)))) / 2,
  );
}

/**
 * Step decay: `from` for the first `steps` training steps (or `epochs`
 * epochs), then multiplied by `factor` at the start of every later period
 * (Keras's `ExponentialDecay` with `staircase: true`).
 *
 * @param options - `from`, `factor` (> 0), and exactly one of `steps` or `epochs`: the period.
 * @returns A {@link DescribedSchedule}: value `from · factor^floor(position / period)`.
 * @throws {@link KdConfigError} `INVALID_OPTION` for a non-finite `from`, a `factor` ≤ 0, or a period that is not one positive integer.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { stepSchedule } from 'kd-ts/distill';
 *
 * const learningRate = stepSchedule({ from: 0.1, factor: 0.5, epochs: 3 });
 * learningRate({ epoch: 7, step: 70, epochs: 10, stepsPerEpoch: 10 }); // 0.025
 * ```
 */
export function stepSchedule(options: StepScheduleOptions): DescribedSchedule {
  const from = checkedNumber('stepSchedule', 'from', options?.from);
  const factor = checkedNumber('stepSchedule', 'factor', options?.factor);
  if (factor <= 0) throw optionError('stepSchedule', 'factor', factor, 'a number > 0 (e.g. 0.1)');
  const duration = checkedDuration('stepSchedule', options);
  return described(
    { type: 'step', from, factor, ...duration.spec },
    (at) => from * factor ** Math.floor(duration.position(at) / duration.length),
  );
}

/**
 * A linear warmup from `from` (default 0) to `to` over `steps` training steps
 * or `epochs` epochs; then `then` (default: `to`, constant), which sees the
 * run as if it started when the warmup ends.
 *
 * @param options - `to`, optional `from` and `then`, and exactly one of `steps` or `epochs`.
 * @returns A {@link DescribedSchedule}.
 * @throws {@link KdConfigError} `INVALID_OPTION` for non-finite values, a `then` that is neither a
 *   number nor a function, or a duration that is not one positive integer.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { cosineSchedule, warmup } from 'kd-ts/distill';
 *
 * // 100 steps of warmup to 1e-3, then a cosine decay to 0 over 900 steps.
 * const learningRate = warmup({ to: 1e-3, steps: 100, then: cosineSchedule({ from: 1e-3, to: 0, steps: 900 }) });
 * learningRate({ epoch: 0, step: 50, epochs: 10, stepsPerEpoch: 100 }); // 5e-4
 * ```
 */
export function warmup(options: WarmupOptions): DescribedSchedule {
  const from = checkedNumber('warmup', 'from', options?.from ?? 0);
  const to = checkedNumber('warmup', 'to', options?.to);
  const duration = checkedDuration('warmup', options);
  const then = options.then ?? to;
  if (typeof then !== 'function') checkedNumber('warmup', 'then', then);
  const ramp = (at: StepContext) => from + (to - from) * duration.progress(at);
  return described({ type: 'warmup', from, to, ...duration.spec, then: describeSchedule(then) }, (at) => {
    if (duration.position(at) < duration.length) return ramp(at);
    return typeof then === 'number' ? then : then(duration.shifted(at));
  });
}

/**
 * What a checkpoint can record of a setting: a number as it is, a
 * ready-made schedule's parameters ({@link ScheduleSpec}), or `'function'` for
 * any other function (whose behaviour cannot be compared).
 *
 * @param schedule - A number or a schedule.
 * @returns The number, a copy of the spec, or `'function'`.
 * @throws Never.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { describeSchedule, linearSchedule } from 'kd-ts/distill';
 *
 * describeSchedule(4); // 4
 * describeSchedule(linearSchedule({ from: 8, to: 2, steps: 100 })); // { type: 'linear', from: 8, to: 2, steps: 100 }
 * describeSchedule(({ epoch }) => 4 / (epoch + 1)); // 'function'
 * ```
 */
export function describeSchedule(schedule: Schedule): number | ScheduleSpec | 'function' {
  if (typeof schedule !== 'function') return schedule;
  const spec = (schedule as Partial<DescribedSchedule>).spec;
  return spec !== undefined && spec !== null && typeof spec === 'object' ? { ...spec } : 'function';
}

/**
 * A schedule's value at one step: a number as it is, a function called.
 * @internal
 */
export function scheduleValue(schedule: Schedule, at: StepContext): number {
  return typeof schedule === 'function' ? schedule(at) : schedule;
}

function described(spec: ScheduleSpec, value: (at: StepContext) => number): DescribedSchedule {
  const schedule = (at: StepContext) => value(at);
  return Object.assign(schedule, { spec: Object.freeze(spec) });
}

function checkedEnds(name: string, options: RampOptions): { from: number; to: number } {
  return { from: checkedNumber(name, 'from', options?.from), to: checkedNumber(name, 'to', options?.to) };
}

function checkedNumber(name: string, option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw optionError(name, option, value, 'a finite number');
  return value;
}

/** The duration (steps or epochs) of a schedule, and where a step falls in it. */
function checkedDuration(name: string, options: ScheduleDuration) {
  const { steps, epochs } = options ?? {};
  if ((steps === undefined) === (epochs === undefined)) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `${name} needs exactly one of steps or epochs (got ${steps === undefined ? 'neither' : 'both'}): e.g. { steps: 1000 } or { epochs: 10 }`,
    );
  }
  const inSteps = steps !== undefined;
  const length = inSteps ? steps : epochs!;
  if (!Number.isInteger(length) || length < 1) throw optionError(name, inSteps ? 'steps' : 'epochs', length, 'a positive integer');
  const position = (at: StepContext) => (inSteps ? at.step : at.epoch);
  return {
    length,
    spec: inSteps ? { steps: length } : { epochs: length },
    position,
    progress: (at: StepContext) => Math.min(Math.max(position(at) / length, 0), 1),
    /** The context seen by what follows: counted from the end of this duration. */
    shifted: (at: StepContext): StepContext =>
      inSteps
        ? { ...at, step: at.step - length }
        : { ...at, epoch: at.epoch - length, step: at.stepsPerEpoch === null ? at.step : at.step - length * at.stepsPerEpoch },
  };
}

function optionError(name: string, option: string, value: unknown, expected: string): KdConfigError {
  return new KdConfigError('INVALID_OPTION', `${name}'s ${option} is ${String(value)}: use ${expected}`);
}
