import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdShapeError } from '../errors.js';
import { isIdLabels, validateLabels } from '../losses/distillationLoss.js';
import { assertLogits } from '../losses/validate.js';
import { positiveInteger } from '../inputs/batches.js';
import { countRows, mapInputs, tensorsOf, type ModelInputs } from '../inputs/modelInputs.js';
import { assertStudentModel } from '../distill/student.js';
import { asTeacher, isLayersModel, type Teacher, type TeacherLike } from '../teachers/teacher.js';
import type { WeightQuantization } from '../io/quantize.js';
import { modelSize, teacherSize, type ModelSize } from './modelSize.js';
import { loadQuantizedCopy, type QuantizedMeasurements } from './quantizedStudent.js';

export type { QuantizedMeasurements } from './quantizedStudent.js';

/** What {@link compressionReport} measured of one model. */
export interface ModelMeasurements {
  /**
   * Number of weights (`countParams()`, trainable and not). `NaN` for a
   * teacher whose models cannot be found (a function, a GraphModel) unless
   * `teacherSize` was given.
   */
  parameters: number;
  /**
   * Bytes the model takes saved in tfjs's layers format, as `saveStudent`
   * writes it: `weights.bin` plus `model.json` (UTF-8). `NaN` when unknown, as
   * for `parameters`.
   */
  bytes: number;
  /** Bytes of the weight data alone (`weights.bin`); `NaN` when unknown. */
  weightBytes: number;
  /** Share of rows whose argmax equals the label; present when labels were given. */
  accuracy?: number;
  /** Median wall-clock milliseconds to predict `latencyRows` rows in batches of `batchSize`. */
  latencyMs: number;
  /** `latencyMs` scaled to 1,000 rows. */
  latencyMsPer1000: number;
}

/** The result of {@link compressionReport}. */
export interface CompressionReport {
  /** The teacher's measurements. */
  teacher: ModelMeasurements;
  /** The student's measurements. */
  student: ModelMeasurements;
  /** Share of rows where the student's argmax equals the teacher's. */
  agreement: number;
  /** Teacher ÷ student: above 1 means the student is smaller (or faster) by that factor. */
  ratios: {
    /** Teacher parameters ÷ student parameters. */
    parameters: number;
    /** Teacher bytes ÷ student bytes. */
    bytes: number;
    /** Teacher latency ÷ student latency: the student's speed-up. */
    latency: number;
  };
  /** Rows of `x` scored for accuracy and agreement. */
  rows: number;
  /** Rows predicted per timed run. */
  latencyRows: number;
  /** Rows per `predict` call in the timed runs. */
  batchSize: number;
  /** The tfjs backend the latencies were measured on. */
  backend: string;
  /** Timed runs per model (the latency is their median). */
  repeats: number;
  /** The student saved with quantized weights and loaded back, one entry per `quantize` option, in order; absent without it. */
  quantized?: QuantizedMeasurements[];
}

/** Options of {@link compressionReport}. */
export interface CompressionReportOptions {
  /** The large model: a LayersModel, or any teacher kd-ts accepts (`EnsembleTeacher`, a function, ...). */
  teacher: TeacherLike;
  /** The small model. */
  student: tfl.LayersModel;
  /** Inputs to score both models on (a tensor, an array for multi-input models, or a map by input name). */
  x: ModelInputs;
  /** What the teacher reads when it differs from the student's inputs (same rows, same order). */
  teacherInputs?: ModelInputs;
  /** Labels for accuracy: class ids `[rows]` or one-hot `[rows, classes]`. */
  labels?: tf.Tensor;
  /** Rows per `predict` call (default 256). */
  batchSize?: number;
  /** Timed runs per model; the latency is their median (default 7). */
  repeats?: number;
  /** Untimed runs per model before timing (default 1): the first run compiles kernels and allocates. */
  warmup?: number;
  /** Rows per timed run (default 1000); rows of `x` are reused in order when `x` has fewer. */
  latencyRows?: number;
  /**
   * Size of a teacher kd-ts cannot measure (a function or a GraphModel
   * teacher): reported as given. Ignored for LayersModel teachers.
   */
  teacherSize?: { parameters: number; bytes: number; weightBytes?: number };
  /**
   * Also measure the student saved with quantized weights (`'uint8'`,
   * `'uint16'`, `'float16'`, as `saveStudent(..., { quantize })` writes
   * them) and loaded back by tfjs: bytes, accuracy, agreement with the
   * teacher and with the float32 student, one entry each in `quantized`.
   */
  quantize?: readonly WeightQuantization[];
}

const DEFAULTS = { batchSize: 256, repeats: 7, warmup: 1, latencyRows: 1000 } as const;

/**
 * Measures a teacher/student pair on the same data: parameters, saved size,
 * accuracy, agreement and inference latency, with teacher ÷ student ratios.
 *
 * - **Parameters**: `countParams()`. For a teacher that is not a LayersModel:
 *   `teacherSize` when given; else the sum over the LayersModels it is made
 *   of when every part is one (an `EnsembleTeacher` whose members are all
 *   models); else `NaN`, and `NaN` ratios (printed `n/a`).
 * - **Bytes**: the model saved in tfjs's layers format through
 *   `tf.io.withSaveHandler`: the weight data plus the `model.json` that
 *   `saveStudent` writes (topology and weight manifest, UTF-8). No optimizer state.
 * - **Accuracy and agreement**: argmax over all rows of `x`, in inference mode.
 * - **Quantized students** (with `quantize`): the student saved into memory
 *   with quantized weights, loaded back with `tf.loadLayersModel` (which
 *   dequantizes), and scored on all rows of `x`. Its latency is the float32
 *   student's: tfjs computes in float32 whatever the stored format.
 * - **Latency**: the median of `repeats` timed runs, each predicting
 *   `latencyRows` rows in batches of `batchSize` and downloading every
 *   batch's output (`await data()`), so asynchronous backends (webgl,
 *   webgpu) are timed until the results are readable. Input batches are made
 *   before timing. Teacher and student runs alternate, so a machine that
 *   slows down during the measurement slows both alike.
 *
 * @param options - See {@link CompressionReportOptions}.
 * @returns A {@link CompressionReport}; print it with {@link formatCompressionReport}.
 * @throws {@link KdShapeError} `LENGTH_MISMATCH` when x, teacher inputs and labels differ in rows;
 *   `CLASS_COUNT_MISMATCH` when teacher and student disagree in classes, or one-hot labels differ from both.
 * @throws {@link KdDataError} `LABEL_OUT_OF_RANGE` for labels that are not class ids of the models.
 * @throws {@link KdConfigError} `INVALID_OPTION` for a non-positive batchSize, repeats or latencyRows,
 *   or a `quantize` entry other than 'uint8', 'uint16' and 'float16'.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { compressionReport, formatCompressionReport } from 'kd-ts';
 *
 * const teacher = tfl.sequential({ layers: [
 *   tfl.layers.dense({ units: 256, activation: 'relu', inputShape: [784] }),
 *   tfl.layers.dense({ units: 10 }),
 * ] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const x = tf.randomNormal([500, 784]);
 * const labels = tf.randomUniform([500], 0, 10, 'int32');
 * const report = await compressionReport({ teacher, student, x, labels, repeats: 5, quantize: ['uint8'] });
 * console.log(formatCompressionReport(report));
 * console.log(report.quantized?.[0]?.bytes, 'bytes with uint8 weights');
 * ```
 */
export async function compressionReport(options: CompressionReportOptions): Promise<CompressionReport> {
  const { student, x, labels } = options;
  assertStudentModel(student);
  const batchSize = positiveInteger(options.batchSize ?? DEFAULTS.batchSize, 'batchSize');
  const repeats = positiveInteger(options.repeats ?? DEFAULTS.repeats, 'repeats');
  const latencyRows = positiveInteger(options.latencyRows ?? DEFAULTS.latencyRows, 'latencyRows');
  const warmup = options.warmup ?? DEFAULTS.warmup;
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new KdConfigError('INVALID_OPTION', `warmup must be an integer ≥ 0, got ${warmup}`);
  }
  const quantize = [...(options.quantize ?? [])];
  for (const dtype of quantize) {
    if (!['uint8', 'uint16', 'float16'].includes(dtype)) {
      throw new KdConfigError('INVALID_OPTION', `quantize entries must be 'uint8', 'uint16' or 'float16', got ${JSON.stringify(dtype)}`);
    }
  }
  const rows = countRows([['x', x], ['teacherInputs', options.teacherInputs], ['labels', labels]]);
  const teacher = asTeacher(options.teacher);
  const studentModel = asTeacher(student, { outputs: 'logits' });
  const teacherX = options.teacherInputs ?? x;
  const outputShape = student.outputs[0]?.shape ?? [];
  const studentClasses = outputShape[outputShape.length - 1];
  if (labels !== undefined && typeof studentClasses === 'number') validateLabels(labels, studentClasses, rows);

  // Accuracy and agreement over every row; this pass also warms both models up.
  const scored = await argmaxes([teacher, studentModel], [teacherX, x], rows, batchSize);
  if (labels !== undefined && typeof studentClasses !== 'number') validateLabels(labels, scored.classes, rows);
  const labelIds = labels === undefined ? undefined : await classIds(labels);

  const latencies = await timeModels([teacher, studentModel], [teacherX, x], {
    rows,
    batchSize,
    repeats,
    warmup,
    latencyRows,
  });

  const [teacherSizes, studentSizes] = await Promise.all([
    isLayersModel(options.teacher) ? modelSize(options.teacher) : teacherSize(options.teacher, options.teacherSize),
    modelSize(student),
  ]);
  const measure = (size: ModelSize, predicted: Int32Array, latencyMs: number): ModelMeasurements => ({
    parameters: size.parameters,
    bytes: size.bytes,
    weightBytes: size.weightBytes,
    ...(labelIds === undefined ? {} : { accuracy: shareEqual(predicted, labelIds) }),
    latencyMs,
    latencyMsPer1000: (latencyMs * 1000) / latencyRows,
  });
  const teacherMeasurements = measure(teacherSizes, scored.predictions[0]!, latencies[0]!);
  const studentMeasurements = measure(studentSizes, scored.predictions[1]!, latencies[1]!);
  const quantized: QuantizedMeasurements[] = [];
  for (const dtype of quantize) {
    const copy = await loadQuantizedCopy(student, dtype);
    try {
      const predicted = (await argmaxes([asTeacher(copy.model, { outputs: 'logits' })], [x], rows, batchSize, [`the ${dtype} student's output`]))
        .predictions[0]!;
      quantized.push({
        dtype,
        bytes: copy.bytes,
        weightBytes: copy.weightBytes,
        ...(labelIds === undefined ? {} : { accuracy: shareEqual(predicted, labelIds) }),
        agreement: shareEqual(predicted, scored.predictions[0]!),
        studentAgreement: shareEqual(predicted, scored.predictions[1]!),
        bytesRatio: teacherMeasurements.bytes / copy.bytes,
        keptFloat32: copy.keptFloat32,
      });
    } finally {
      copy.model.dispose();
    }
  }
  return {
    teacher: teacherMeasurements,
    student: studentMeasurements,
    agreement: shareEqual(scored.predictions[0]!, scored.predictions[1]!),
    ratios: {
      parameters: teacherMeasurements.parameters / studentMeasurements.parameters,
      bytes: teacherMeasurements.bytes / studentMeasurements.bytes,
      latency: teacherMeasurements.latencyMs / studentMeasurements.latencyMs,
    },
    rows,
    latencyRows,
    batchSize,
    backend: tf.getBackend(),
    repeats,
    ...(quantize.length > 0 ? { quantized } : {}),
  };
}

/**
 * Formats a {@link CompressionReport} as a Markdown table (teacher, student,
 * teacher ÷ student), followed by one line on agreement and how latency was
 * measured; with quantized students, a second table with one row per stored
 * format (float32 teacher, float32 student, then each quantized student).
 * Unknown values (`NaN`) print as `n/a`.
 *
 * @param report - What {@link compressionReport} returned.
 * @returns Markdown text, ready for a console or a README.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { compressionReport, formatCompressionReport } from 'kd-ts';
 * const teacher = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const x = tf.randomNormal([100, 784]);
 * const labels = tf.randomUniform([100], 0, 10, 'int32');
 * const report = await compressionReport({ teacher, student, x, labels });
 * console.log(formatCompressionReport(report));
 * ```
 */
export function formatCompressionReport(report: CompressionReport): string {
  const { teacher, student, ratios } = report;
  const hasAccuracy = teacher.accuracy !== undefined && student.accuracy !== undefined;
  const header = ['', 'teacher', 'student', 'teacher ÷ student'];
  const body: string[][] = [
    ['parameters', integer(teacher.parameters), integer(student.parameters), times(ratios.parameters)],
    ['saved size', bytes(teacher.bytes), bytes(student.bytes), times(ratios.bytes)],
    [`ms per 1,000 rows`, fixed(teacher.latencyMsPer1000, 1), fixed(student.latencyMsPer1000, 1), times(ratios.latency)],
  ];
  if (hasAccuracy) {
    body.push(['accuracy', percent(teacher.accuracy!), percent(student.accuracy!), '']);
  }
  const note =
    `Agreement (student argmax = teacher argmax): ${percent(report.agreement)} of ${integer(report.rows)} rows. ` +
    `Latency: median of ${report.repeats} runs of ${integer(report.latencyRows)} rows in batches of ${report.batchSize}, ` +
    `backend ${report.backend}.`;
  const parts = [markdownTable(header, body), '', note];
  if (report.quantized !== undefined && report.quantized.length > 0) {
    const accuracy = (value: number | undefined) => (value === undefined ? '-' : percent(value));
    const stored = [
      ['teacher, float32', bytes(teacher.bytes), times(1), accuracy(teacher.accuracy), '-', '-'],
      ['student, float32', bytes(student.bytes), times(ratios.bytes), accuracy(student.accuracy), percent(report.agreement), '-'],
      ...report.quantized.map((q) => [
        `student, ${q.dtype}`,
        bytes(q.bytes),
        times(q.bytesRatio),
        accuracy(q.accuracy),
        percent(q.agreement),
        percent(q.studentAgreement),
      ]),
    ];
    parts.push(
      '',
      markdownTable(['weights stored as', 'saved size', 'teacher ÷', 'accuracy', 'agreement with teacher', 'agreement with float32 student'], stored),
      '',
      'Quantized students: saved in tfjs\'s weight format and loaded back with tf.loadLayersModel; their latency is the float32 student\'s.',
    );
  }
  return parts.join('\n');
}

/** A Markdown table: first column left-aligned, the others right-aligned. */
function markdownTable(header: string[], body: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}

/** Argmax of each model's output over all rows, in batches; also checks both give the same classes. */
async function argmaxes(
  models: Teacher[],
  inputs: ModelInputs[],
  rows: number,
  batchSize: number,
  names: readonly string[] = ["the teacher's output", "the student's output"],
): Promise<{ predictions: Int32Array[]; classes: number }> {
  const predictions = models.map(() => new Int32Array(rows));
  const classes: number[] = [];
  for (let start = 0; start < rows; start += batchSize) {
    const size = Math.min(batchSize, rows - start);
    for (let m = 0; m < models.length; m++) {
      const batch = mapInputs(inputs[m]!, (t) => tf.slice(t, [start], [size]));
      let output: tf.Tensor | undefined;
      try {
        output = await models[m]!.predict(batch, { temperature: 1 });
        assertLogits(output, names[m]!);
        classes[m] ??= output.shape[1]!;
        const predicted = tf.argMax(output, -1);
        predictions[m]!.set(await predicted.data(), start);
        predicted.dispose();
      } finally {
        tf.dispose([...tensorsOf(batch), ...(output === undefined ? [] : [output])]);
      }
    }
    if (classes.some((c) => c !== classes[0])) {
      throw new KdShapeError(
        'CLASS_COUNT_MISMATCH',
        `the teacher outputs ${classes[0]} classes but the student ${classes[1]}: compare models of the same task`,
      );
    }
  }
  return { predictions, classes: classes[0]! };
}

/** Median latency of each model, timed runs alternating between the models. */
async function timeModels(
  models: Teacher[],
  inputs: ModelInputs[],
  settings: { rows: number; batchSize: number; repeats: number; warmup: number; latencyRows: number },
): Promise<number[]> {
  const batches = inputs.map((x) => latencyBatches(x, settings.rows, settings.latencyRows, settings.batchSize));
  try {
    const runOnce = async (m: number): Promise<number> => {
      const started = performance.now();
      for (const batch of batches[m]!) {
        const output = await models[m]!.predict(batch, { temperature: 1 });
        await output.data();
        // A pass-through teacher returns the batch itself, which the next run reuses.
        if (!tensorsOf(batch).includes(output)) output.dispose();
      }
      return performance.now() - started;
    };
    for (let w = 0; w < settings.warmup; w++) for (let m = 0; m < models.length; m++) await runOnce(m);
    const times = models.map(() => [] as number[]);
    for (let r = 0; r < settings.repeats; r++) for (let m = 0; m < models.length; m++) times[m]!.push(await runOnce(m));
    return times.map(median);
  } finally {
    tf.dispose(batches.flatMap((list) => list.flatMap(tensorsOf)));
  }
}

/** `latencyRows` rows of `x`, cycling through it when it is shorter, cut into batches. */
function latencyBatches(x: ModelInputs, rows: number, latencyRows: number, batchSize: number): ModelInputs[] {
  const batches: ModelInputs[] = [];
  for (let start = 0; start < latencyRows; start += batchSize) {
    const size = Math.min(batchSize, latencyRows - start);
    const indices = tf.tensor1d(Int32Array.from({ length: size }, (_, i) => (start + i) % rows), 'int32');
    batches.push(mapInputs(x, (t) => tf.gather(t, indices)));
    indices.dispose();
  }
  return batches;
}

/** Class ids of labels given as ids or one-hot rows. */
async function classIds(labels: tf.Tensor): Promise<Int32Array> {
  const ids = tf.tidy(() => (isIdLabels(labels) ? tf.cast(tf.reshape(labels, [-1]), 'int32') : tf.argMax(labels, -1)));
  try {
    return Int32Array.from(await ids.data());
  } finally {
    ids.dispose();
  }
}

function shareEqual(a: Int32Array, b: Int32Array): number {
  let equal = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) equal++;
  return equal / a.length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function integer(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function times(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value >= 10 ? 1 : 2)}×` : 'n/a';
}

function percent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(2)} %` : 'n/a';
}

function bytes(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / (1024 * 1024)).toFixed(2)} MiB`;
}
