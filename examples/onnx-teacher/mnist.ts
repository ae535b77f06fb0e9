/**
 * An ONNX teacher for the MNIST demo: a small CNN trained in PyTorch on the
 * demo's training digits and exported with `torch.onnx.export`
 * (test/teachers/fixtures/onnx/cnn.onnx, made by make_models.py), run by
 * onnxruntime-web's WebAssembly backend through `onnxTeacher`, teaches the
 * demo's 64-unit MLP in tfjs. `cachedTeacher` runs the session once per digit.
 * Needs only kd-ts's own dev dependencies (onnxruntime-web), not this
 * folder's package.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-web';
import { cachedTeacher, onnxTeacher } from '../../src/index.js';
import { EpochBatches, loadDemoData } from '../mnist/data.js';
import { buildMlp, distill, predictClasses, trainOnLabels, type TrainingRun } from '../mnist/train.js';
import { msPer1000 } from './msPer1000.js';

/** The exported CNN: 20,490 parameters, pixels float32 [batch, 784] → logits [batch, 10]. */
export const CNN_ONNX = join(import.meta.dirname, '..', '..', 'test', 'teachers', 'fixtures', 'onnx', 'cnn.onnx');
const CNN_PARAMETERS = 20_490;

/** Settings of the MNIST run; defaults in main.ts. */
export interface MnistSettings {
  seed: number;
  /** The first N training digits of the demo's split (all 8,000 by default). */
  trainLimit: number | undefined;
  epochs: number;
  hidden: number[];
  learningRate: number;
  batchSize: number;
  temperature: number;
  alpha: number;
  log?: (line: string) => void;
}

/** What the run measured: test errors out of 2,000, sizes, speeds. */
export interface MnistResult {
  testDigits: number;
  teacher: { testErrors: number; parameters: number; msPer1000: number; scoringRowsPerSecond: number; sessionRuns: number };
  labels: { testErrors: number; seconds: number };
  distilled: { testErrors: number; seconds: number };
  student: { parameters: number; msPer1000: number };
}

/**
 * The whole MNIST run.
 *
 * @param settings - See {@link MnistSettings}.
 * @returns Errors, sizes and speeds.
 */
export async function runMnist(settings: MnistSettings): Promise<MnistResult> {
  const log = settings.log ?? (() => {});
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(readFileSync(CNN_ONNX));
  const split = loadDemoData({ seed: settings.seed, ...(settings.trainLimit === undefined ? {} : { trainLimit: settings.trainLimit }) });
  const testX = tf.tensor2d(split.test.x, [split.test.size, 784]);
  const test = { x: testX, labels: split.test.labels };
  const errorsOf = (classes: Int32Array) => classes.reduce((n, c, i) => n + (c === split.test.labels[i] ? 0 : 1), 0);

  // The teacher on the test digits, and its scoring speed (rows/s, batches of 512, wasm, 1 thread).
  const direct = onnxTeacher(session, { batchSize: 512 });
  const started = performance.now();
  const teacherLogits = await direct.predict(testX);
  const scoringRowsPerSecond = split.test.size / ((performance.now() - started) / 1000);
  const teacherClasses = tf.tidy(() => tf.argMax(teacherLogits, -1));
  const teacherErrors = errorsOf((await teacherClasses.data()) as Int32Array);
  tf.dispose([teacherLogits, teacherClasses]);
  log(`ONNX CNN teacher (onnxruntime-web, wasm): ${teacherErrors} test errors of ${split.test.size}; ${scoringRowsPerSecond.toFixed(0)} rows/s`);

  const batches = (ids: boolean) =>
    new EpochBatches(split.train, { batchSize: settings.batchSize, seed: `${settings.seed}/batches`, maxShift: 0, ...(ids ? { ids: true } : { oneHot: true }) });
  const options = { epochs: settings.epochs, learningRate: settings.learningRate, seed: settings.seed, test };
  const onLabels = buildMlp({ hidden: settings.hidden }, `${settings.seed}/student`);
  const labelsRun: TrainingRun = await trainOnLabels(onLabels, batches(false), options);
  const labelsErrors = errorsOf(await predictClasses(onLabels, testX));
  log(`student on labels: ${labelsErrors} test errors, ${labelsRun.seconds.toFixed(0)} s`);

  const teacher = cachedTeacher(onnxTeacher(session));
  const student = buildMlp({ hidden: settings.hidden }, `${settings.seed}/student`);
  const distilledRun = await distill(teacher, student, batches(true), { ...options, temperature: settings.temperature, alpha: settings.alpha });
  const distilledErrors = errorsOf(await predictClasses(student, testX));
  log(`student distilled from the ONNX teacher: ${distilledErrors} test errors, ${distilledRun.seconds.toFixed(0)} s; the session ran ${teacher.teacherCalls} times for ${teacher.cache.size} digits`);

  // Speed: 256 test digits in one batch, median of 3.
  const sample = tf.slice(testX, [0], [256]);
  const teacherMs = await msPer1000(async () => (await direct.predict(sample)).dispose(), 256);
  const studentMs = await msPer1000(async () => {
    const out = student.predict(sample) as tf.Tensor;
    await out.data();
    out.dispose();
  }, 256);
  const result: MnistResult = {
    testDigits: split.test.size,
    teacher: { testErrors: teacherErrors, parameters: CNN_PARAMETERS, msPer1000: teacherMs, scoringRowsPerSecond, sessionRuns: teacher.teacherCalls },
    labels: { testErrors: labelsErrors, seconds: labelsRun.seconds },
    distilled: { testErrors: distilledErrors, seconds: distilledRun.seconds },
    student: { parameters: student.countParams(), msPer1000: studentMs },
  };
  tf.dispose([sample, testX]);
  onLabels.dispose();
  student.dispose();
  await session.release();
  return result;
}
