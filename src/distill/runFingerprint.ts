import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';
import { describeSchedule, type Schedule } from './schedules.js';
import type { TrainStep } from './trainStep.js';

/**
 * What identifies a run for its checkpoints, by section: a checkpoint resumes
 * only a run whose fingerprint is equal, key by key.
 * @internal
 */
export type RunFingerprint = Record<'student' | 'optimizer' | 'loss' | 'data', Record<string, unknown>>;

/** What the fingerprint reads of the data and the fit call. @internal */
export interface RunData {
  /** Rows (fit) or null (a dataset). */
  samples: number | null;
  /** Steps per epoch, or null when a dataset's length is unknown. */
  stepsPerEpoch: number | null;
  batchSize?: number;
  shuffle?: boolean;
  seed?: number | string;
  deterministic?: boolean;
}

/**
 * The fingerprint of a run: the student's layers (classes and configs, names
 * left out so a rebuilt student matches) and weight shapes; the optimizer's
 * class and settings (a scheduled learning rate replaces its current one);
 * the loss settings, schedules by their description (`describeSchedule`: a
 * user-written function is only `'function'`, so a changed function is not
 * detected); the data's size, batch size, shuffling and seed.
 * @internal
 */
export function runFingerprint(student: tfl.LayersModel, step: TrainStep, data: RunData): RunFingerprint {
  const { optimizer, temperature, alpha, learningRate, clipNorm, kind, scaleByTemperatureSquared, studentOutputs, features } = step.options;
  const optimizerConfig: Record<string, unknown> = { ...(optimizer.getConfig() as Record<string, unknown>) };
  if (learningRate !== undefined) delete optimizerConfig.learningRate;
  const describe = (s: Schedule | undefined) => (s === undefined ? null : describeSchedule(s));
  return {
    student: {
      layers: student.layers.map((layer) => ({ class: layer.getClassName(), config: withoutNames(layer.getConfig()) })),
      weights: student.weights.map((w) => w.shape),
    },
    optimizer: { class: optimizer.getClassName(), ...optimizerConfig },
    loss: {
      kind: kind ?? 'kl',
      temperature: describe(temperature),
      alpha: describe(alpha),
      learningRate: describe(learningRate),
      clipNorm: clipNorm ?? null,
      scaleByTemperatureSquared: scaleByTemperatureSquared ?? true,
      studentOutputs: studentOutputs ?? 'logits',
      features: (features?.features ?? []).map((f) => ({
        teacherLayer: f.teacherLayer,
        // By position: a rebuilt student's generated layer names differ within one process.
        studentLayer: student.layers.findIndex((l) => l.name === f.studentLayer),
        loss: f.loss,
        weight: describeSchedule(f.weight),
        projection: f.projection === null ? 'none' : 'projection',
      })),
    },
    data: {
      samples: data.samples,
      stepsPerEpoch: data.stepsPerEpoch,
      batchSize: data.batchSize ?? null,
      shuffle: data.shuffle ?? null,
      seed: data.seed ?? null,
      deterministic: data.deterministic ?? null,
    },
  };
}

/**
 * Throws unless a checkpoint's fingerprint equals the run's.
 *
 * @throws {@link KdConfigError} `CHECKPOINT_MISMATCH` naming every key that differs.
 * @internal
 */
export function assertSameRun(name: string, saved: RunFingerprint, current: RunFingerprint): void {
  const differences: string[] = [];
  for (const section of ['student', 'optimizer', 'loss', 'data'] as const) {
    const a = saved[section] ?? {};
    const b = current[section];
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const was = JSON.stringify(a[key] ?? null);
      const now = JSON.stringify(b[key] ?? null);
      if (was !== now) differences.push(`${section}.${key}: saved ${clip(was)}, now ${clip(now)}`);
    }
  }
  if (differences.length > 0) {
    throw new KdConfigError(
      'CHECKPOINT_MISMATCH',
      `checkpoint ${name} was written by a different run (${differences.join('; ')}): resume with the same student, optimizer, loss settings and data, ` +
        'or point checkpoint.store at another place (or pass resume: false) to start a new run',
    );
  }
}

function withoutNames(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNames);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (k !== 'name') out[k] = withoutNames(v);
  return out;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
