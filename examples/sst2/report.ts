/**
 * Size and inference speed of the student against the teacher, on the dev
 * sentences. Route (b)'s teacher runs in tfjs: kd-ts's `compressionReport`
 * measures both. Route (a)'s teacher runs in PyTorch: its numbers come from
 * the `.meta.json` that `teacher/train_teacher.py` writes next to its logits,
 * measured the same way (the first 256 dev sentences padded to the longest dev
 * sentence, one batch, median of 3 runs), in another runtime.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { compressionReport } from '../../src/index.js';
import { padRows, type EncodedRows } from './batches.js';
import { MIN_WIDTH, type TfjsTeacher } from './pipeline.js';

/** What the example knows of its teacher. */
export interface TeacherMeta {
  description: string;
  devAccuracy: number;
  memberDevAccuracy: number[];
  parameters: number;
  trainSeconds: number;
  /** Route (a): PyTorch's dev inference time, ms per 1,000 sentences. */
  msPer1000?: number;
  runtime?: string;
}

/** One line of the size-and-speed table. */
export interface SpeedRow {
  model: string;
  parameters: number;
  msPer1000: number;
  runtime: string;
}

const BATCH = 256;
const REPEATS = 3;
/** Rows per timed run: one batch, enough for a median on a shared machine, cheap enough for the default run. */
const LATENCY_ROWS = 256;

/**
 * Reads `<stem>.meta.json` next to a route (a) teacher-output file.
 *
 * @param logitsFile - The teacher-output file.
 * @returns The teacher's description, dev accuracy, size and timings.
 * @throws Error when the meta file is missing.
 */
export function readTeacherMeta(logitsFile: string): TeacherMeta {
  const file = path.join(path.dirname(logitsFile), `${path.basename(logitsFile, path.extname(logitsFile))}.meta.json`);
  if (!existsSync(file)) {
    throw new Error(`${file} not found: train_teacher.py writes it next to its --out file; keep them together`);
  }
  const meta = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return {
    description: `${String(meta.teacher)}, PyTorch, ${String(meta.epochs)} epoch(s) each`,
    devAccuracy: Number(meta.dev_accuracy),
    memberDevAccuracy: (meta.member_dev_accuracy as number[]) ?? [],
    parameters: Number(meta.parameters),
    trainSeconds: Number(meta.train_seconds),
    msPer1000: Number(meta.dev_ms_per_1000),
    runtime: `PyTorch ${String(meta.torch)}, ${String(meta.threads)} thread(s)`,
  };
}

/**
 * Parameters and dev inference time of the student and the teacher.
 *
 * @param options - The student, the tfjs teacher (route b) or the teacher's meta (route a), the dev rows.
 * @returns One row per model.
 */
export async function measureSpeed(options: {
  student: tfl.LayersModel;
  tfjsTeacher: TfjsTeacher | undefined;
  meta: TeacherMeta;
  dev: EncodedRows & { labels: Int32Array };
}): Promise<SpeedRow[]> {
  const { student, tfjsTeacher, meta, dev } = options;
  const runtime = `tfjs ${tf.getBackend()}`;
  const x = padRows(dev.tokens, MIN_WIDTH);
  const labels = tf.tensor1d(dev.labels, 'int32');
  try {
    if (tfjsTeacher !== undefined) {
      const report = await compressionReport({
        teacher: tfjsTeacher.ensemble,
        student,
        x,
        labels,
        batchSize: BATCH,
        repeats: REPEATS,
        latencyRows: LATENCY_ROWS,
        teacherSize: { parameters: tfjsTeacher.parameters, bytes: tfjsTeacher.parameters * 4 },
      });
      return [
        { model: `teacher (${meta.description})`, parameters: report.teacher.parameters, msPer1000: report.teacher.latencyMsPer1000, runtime },
        { model: 'BiLSTM student', parameters: report.student.parameters, msPer1000: report.student.latencyMsPer1000, runtime },
      ];
    }
    return [
      { model: `teacher (${meta.description})`, parameters: meta.parameters, msPer1000: meta.msPer1000 ?? Number.NaN, runtime: meta.runtime ?? 'PyTorch' },
      { model: 'BiLSTM student', parameters: student.countParams(), msPer1000: await studentMsPer1000(student, x), runtime },
    ];
  } finally {
    tf.dispose([x, labels]);
  }
}

/** The student's median time over {@link REPEATS} passes over `x` in batches of {@link BATCH}, per 1,000 rows (compressionReport's method). */
async function studentMsPer1000(student: tfl.LayersModel, x: tf.Tensor2D): Promise<number> {
  const rows = Math.min(LATENCY_ROWS, x.shape[0]);
  const pass = async () => {
    for (let start = 0; start < rows; start += BATCH) {
      const out = tf.tidy(() => student.apply(tf.slice(x, [start, 0], [Math.min(BATCH, rows - start), -1])) as tf.Tensor);
      await out.data();
      out.dispose();
    }
  };
  await pass();
  const times: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const started = performance.now();
    await pass();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return (times[Math.floor(REPEATS / 2)]! * 1000) / rows;
}
