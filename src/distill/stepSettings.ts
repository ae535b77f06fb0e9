import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdError } from '../errors.js';
import type { ResolvedLossConfig } from '../losses/distillationLoss.js';
import { resolveBeta } from '../losses/divergences.js';
import { assertAlpha, assertTemperature } from '../losses/validate.js';
import { EnsembleTeacher } from '../teachers/EnsembleTeacher.js';
import { teacherOutputSpec } from '../teachers/outputSpec.js';
import type { Teacher } from '../teachers/teacher.js';
import type { StepContext } from './epochLoop.js';
import { scheduleValue, type Schedule } from './schedules.js';

/**
 * The settings of one training step, schedules evaluated and checked: what
 * the loss, the teacher and the optimizer use at that step, and what the logs
 * report under the same keys.
 */
export interface StepSettings {
  /** Softening temperature of the step. */
  readonly temperature: number;
  /** Weight of the hard-label term of the step. */
  readonly alpha: number;
  /** `kind: 'jsd'` only: the teacher's weight in the mixture. */
  readonly beta?: number;
  /** The optimizer's learning rate at the step; absent when the optimizer keeps none kd-ts can read. */
  readonly learningRate?: number;
}

/** What {@link stepSettings} reads of the step's options. @internal */
export interface ScheduledOptions {
  temperature?: Schedule;
  alpha?: Schedule;
  beta?: Schedule;
  learningRate?: Schedule;
  clipNorm?: number;
}

/**
 * The numeric settings for the loss's one-time checks (kind, beta with a kind
 * other than 'jsd'): constants as they are, each schedule replaced by a valid
 * stand-in; the schedules' own values are checked per step.
 * @internal
 */
export function scheduleStandIns(options: ScheduledOptions): { temperature: number | undefined; alpha: number | undefined; beta: number | undefined } {
  const { temperature, alpha, beta } = options;
  return {
    temperature: typeof temperature === 'function' ? 1 : temperature,
    alpha: typeof alpha === 'function' ? 0 : alpha,
    beta: typeof beta === 'function' ? 0.5 : beta,
  };
}

/** The run's start: where evaluation before any training step reads the schedules. */
const RUN_START: StepContext = { epoch: 0, step: 0, epochs: 1, stepsPerEpoch: null };

/**
 * The per-step settings of a training step: `settingsAt(at)` evaluates the
 * schedules once per step (the last answer is kept for the same `at` object,
 * so the Distiller's teacher call and the step read one evaluation) and
 * checks each value as a constant would be, naming the epoch and step.
 * @internal
 */
export function stepSettings(options: ScheduledOptions, config: ResolvedLossConfig, optimizer: tf.Optimizer, usesTemperature: boolean) {
  const scheduled = (['temperature', 'alpha', 'beta', 'learningRate'] as const).filter((k) => typeof options[k] === 'function');
  if (options.learningRate !== undefined) {
    assertLearningRateSettable(optimizer);
    if (typeof options.learningRate !== 'function') setLearningRate(optimizer, checkedLearningRate(options.learningRate));
  }
  let last: { at: StepContext; settings: StepSettings } | undefined;
  let lastTrained: StepContext | undefined;

  const evaluateAt = (at: StepContext): StepSettings => {
    const value = (name: 'temperature' | 'alpha' | 'beta' | 'learningRate', fallback: number, check: (v: number) => number) => {
      const schedule = options[name];
      if (typeof schedule !== 'function') return fallback;
      const v = scheduleValue(schedule, at);
      try {
        return check(v);
      } catch (e) {
        if (!(e instanceof KdError)) throw e;
        const Class = e.constructor as new (code: KdError['code'], message: string) => KdError;
        throw new Class(e.code, `${name}'s schedule returned ${String(v)} at epoch ${at.epoch}, step ${at.step}: ${e.message}`);
      }
    };
    const temperature = value('temperature', config.temperature, (v) => {
      if (usesTemperature) assertTemperature(v);
      return v;
    });
    const alpha = value('alpha', config.alpha, (v) => {
      assertAlpha(v);
      return v;
    });
    const beta = value('beta', config.beta, (v) => resolveBeta(v, config.kind));
    const learningRate = value('learningRate', currentLearningRate(optimizer) ?? Number.NaN, checkedLearningRate);
    return {
      temperature,
      alpha,
      ...(config.kind === 'jsd' ? { beta } : {}),
      ...(Number.isNaN(learningRate) ? {} : { learningRate }),
    };
  };

  return {
    /** Names of the scheduled settings (empty: every setting is constant). */
    scheduled,
    /**
     * The settings at `at`; for training steps `at` is required when a
     * setting is scheduled. Without `at` (evaluation), the last training
     * step's settings, or the run's start.
     */
    settingsAt(at: StepContext | undefined, training: boolean): StepSettings {
      if (at === undefined && training && scheduled.length > 0) {
        throw new KdConfigError(
          'INVALID_OPTION',
          `${scheduled.join(', ')} ${scheduled.length === 1 ? 'is a schedule' : 'are schedules'}: pass the step's place in the run ` +
            'with each batch (at: { epoch, step, epochs, stepsPerEpoch }), as the Distiller does',
        );
      }
      if (training && at !== undefined) lastTrained = at;
      const where = at ?? lastTrained ?? RUN_START;
      // Without schedules nothing is kept: the optimizer's own rate may change between steps (a callback).
      if (scheduled.length === 0) return evaluateAt(where);
      if (last?.at !== where) last = { at: where, settings: evaluateAt(where) };
      return last.settings;
    },
    /** Sets the optimizer's learning rate for the step, when it is scheduled. */
    applyLearningRate(settings: StepSettings): void {
      if (typeof options.learningRate === 'function' && settings.learningRate !== undefined) setLearningRate(optimizer, settings.learningRate);
    },
    clipNorm: checkedClipNorm(options.clipNorm),
  };
}

/**
 * The settings as log entries: `temperature`, `alpha`, `learningRate`, and
 * `beta` with `kind: 'jsd'`.
 * @internal
 */
export function settingsLogs(settings: StepSettings): Record<string, number> {
  return { ...settings };
}

/**
 * Scales `gradients` so their global L2 norm (over every tensor together) is
 * at most `clipNorm`, as Keras's `global_clipnorm`: g · clipNorm / max(‖g‖, clipNorm).
 * Returns new tensors; the inputs stay owned by the caller.
 * @internal
 */
export function clipByGlobalNorm(gradients: tf.NamedTensorMap, clipNorm: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const names = Object.keys(gradients);
    const squares = names.map((n) => tf.sum(tf.square(gradients[n]!)));
    const norm = tf.sqrt(squares.length === 0 ? tf.scalar(0) : tf.addN(squares));
    const scale = tf.div(clipNorm, tf.maximum(norm, clipNorm));
    const clipped: tf.NamedTensorMap = {};
    for (const n of names) clipped[n] = tf.mul(gradients[n]!, scale);
    return clipped;
  });
}

/**
 * Throws at `compile` when the temperature is a schedule and the teacher's
 * outputs hold one temperature (a {@link TeacherCache} or `cachedTeacher`
 * filled with temperature-dependent rows, or anything else whose
 * temperature-dependent outputs kd-ts cannot tell are recomputed per batch).
 * An {@link EnsembleTeacher} over teachers that do not store rows recomputes
 * its outputs at every temperature, so it passes.
 * @internal
 */
export function assertTemperatureScheduleFits(temperature: Schedule | undefined, teacher: Teacher): void {
  if (typeof temperature !== 'function' || recomputesAtAnyTemperature(teacher)) return;
  throw new KdConfigError(
    'INVALID_TEMPERATURE',
    "the temperature is a schedule, but this teacher's outputs depend on the temperature and were stored at one " +
      "(a TeacherCache or cachedTeacher over a temperature-dependent teacher, e.g. an EnsembleTeacher with combine: 'mean-probs'): " +
      "use a constant temperature, pass the ensemble itself (uncached), or combine: 'mean-logits'",
  );
}

function recomputesAtAnyTemperature(teacher: Teacher): boolean {
  if (teacherOutputSpec(teacher).exactness !== 'temperature-dependent') return true;
  // An ensemble combines its members' outputs afresh at every call's temperature.
  if (teacher instanceof EnsembleTeacher) return teacher.members.every((m) => recomputesAtAnyTemperature(m.teacher));
  return false;
}

/** The optimizer's `learningRate` field, which every tfjs optimizer keeps (protected in the typings). */
function currentLearningRate(optimizer: tf.Optimizer): number | undefined {
  const value = (optimizer as unknown as { learningRate?: unknown }).learningRate;
  return typeof value === 'number' ? value : undefined;
}

function assertLearningRateSettable(optimizer: tf.Optimizer): void {
  if (currentLearningRate(optimizer) === undefined) {
    throw new KdConfigError(
      'INVALID_LEARNING_RATE',
      `learningRate was given, but this optimizer (${optimizer.getClassName?.() ?? 'unknown'}) keeps no numeric learningRate field kd-ts can set: ` +
        "use a tfjs optimizer (tf.train.sgd, adam, rmsprop, adagrad, adadelta, adamax, momentum) or a name such as 'adam'",
    );
  }
}

/**
 * Sets a tfjs optimizer's learning rate. SGD and Momentum keep it as a
 * scalar made by `setLearningRate` too; the others read the field at each
 * update.
 * @internal
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  const target = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (target.learningRate === learningRate) return;
  if (typeof target.setLearningRate === 'function') target.setLearningRate(learningRate);
  else target.learningRate = learningRate;
}

function checkedLearningRate(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new KdConfigError(
      'INVALID_LEARNING_RATE',
      `learningRate must be a finite number >= 0, got ${String(value)}: e.g. 1e-3 for Adam, 1e-2 for SGD`,
    );
  }
  return value;
}

function checkedClipNorm(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `clipNorm must be a finite number > 0 (the largest global gradient norm), got ${String(value)}: e.g. 1, or leave it out`,
    );
  }
  return value;
}
