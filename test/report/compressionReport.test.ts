import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { EnsembleTeacher, compressionReport, formatCompressionReport } from '../../src/index.js';
import { saveStudent } from '../../src/node/index.js';
import { mlp } from '../distill/helpers.js';

/** A bias-free dense layer whose kernel is `kernel`: its argmax is fully known. */
function fixedLinear(kernel: number[][]): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ units: kernel[0]!.length, useBias: false, inputShape: [kernel.length] })],
  });
  const values = tf.tensor2d(kernel);
  model.setWeights([values]);
  values.dispose();
  return model;
}

const identity = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];
// Swaps classes 0 and 1, keeps class 2.
const swap01 = [
  [0, 1, 0],
  [1, 0, 0],
  [0, 0, 1],
];

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('compressionReport', () => {
  it('counts parameters and the bytes saveStudent writes, and divides teacher by student', async () => {
    const teacher = mlp(4, 16, 3, 1); // 4·16+16 + 16·3+3 = 131
    const student = mlp(4, 2, 3, 2); // 4·2+2 + 2·3+3 = 19
    const x = tf.randomNormal([20, 4]);
    const report = await compressionReport({ teacher, student, x, repeats: 3, latencyRows: 50, batchSize: 8 });

    expect(report.teacher.parameters).toBe(131);
    expect(report.student.parameters).toBe(19);
    expect(report.ratios.parameters).toBeCloseTo(131 / 19, 12);
    expect(report.teacher.weightBytes).toBe(131 * 4);
    expect(report.student.weightBytes).toBe(19 * 4);

    // Independent check: the files saveStudent writes.
    for (const [model, measured] of [[teacher, report.teacher], [student, report.student]] as const) {
      const dir = await mkdtemp(join(tmpdir(), 'kd-report-'));
      tempDirs.push(dir);
      await saveStudent(model, dir);
      const onDisk = (await stat(join(dir, 'model.json'))).size + (await stat(join(dir, 'weights.bin'))).size;
      expect(measured.bytes).toBe(onDisk);
    }
    expect(report.ratios.bytes).toBeCloseTo(report.teacher.bytes / report.student.bytes, 12);

    expect(report.rows).toBe(20);
    expect(report.latencyRows).toBe(50);
    expect(report.repeats).toBe(3);
    expect(report.backend).toBe('cpu');
    expect(report.teacher.accuracy).toBeUndefined();
    for (const m of [report.teacher, report.student]) {
      expect(m.latencyMs).toBeGreaterThan(0);
      expect(m.latencyMsPer1000).toBeCloseTo((m.latencyMs * 1000) / 50, 9);
    }
    expect(report.ratios.latency).toBeCloseTo(report.teacher.latencyMs / report.student.latencyMs, 12);
    x.dispose();
  });

  it('measures accuracy and agreement on a constructed case, with id or one-hot labels', async () => {
    // Rows are one-hot inputs of classes 0,1,2,2,0,2,1,2: the teacher (identity)
    // predicts the row's class, the student (0↔1 swapped) only class 2 right.
    const classes = [0, 1, 2, 2, 0, 2, 1, 2];
    const labels = tf.tensor1d(classes, 'int32');
    const x = tf.tidy(() => tf.cast(tf.oneHot(labels, 3), 'float32'));
    const oneHot = tf.oneHot(labels, 3);
    const teacher = fixedLinear(identity);
    const student = fixedLinear(swap01);
    const twin = fixedLinear(identity);
    const before = tf.memory().numTensors;

    const byIds = await compressionReport({ teacher, student, x, labels, repeats: 1, latencyRows: 8 });
    expect(byIds.teacher.accuracy).toBe(1);
    expect(byIds.student.accuracy).toBe(4 / 8);
    expect(byIds.agreement).toBe(4 / 8);
    const byOneHot = await compressionReport({ teacher, student, x, labels: oneHot, repeats: 1, latencyRows: 8, batchSize: 3 });
    expect(byOneHot.student.accuracy).toBe(4 / 8);
    expect(byOneHot.agreement).toBe(4 / 8);
    // A student identical in function agrees everywhere.
    const same = await compressionReport({ teacher, student: twin, x, repeats: 1, latencyRows: 8 });
    expect(same.agreement).toBe(1);

    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, labels, oneHot]);
  });

  it('sizes an ensemble of models as their sum, a function teacher as unknown unless given', async () => {
    const a = mlp(4, 16, 3, 1);
    const b = mlp(4, 8, 3, 2);
    const student = mlp(4, 2, 3, 3);
    const x = tf.randomNormal([10, 4]);
    const options = { student, x, repeats: 1, latencyRows: 10 };

    const ensemble = await compressionReport({ ...options, teacher: new EnsembleTeacher([a, b]) });
    expect(ensemble.teacher.parameters).toBe(a.countParams() + b.countParams());
    const [sizeA, sizeB] = await Promise.all([
      compressionReport({ ...options, teacher: a }),
      compressionReport({ ...options, teacher: b }),
    ]);
    expect(ensemble.teacher.bytes).toBe(sizeA!.teacher.bytes + sizeB!.teacher.bytes);

    const fn = (input: unknown) => tf.tidy(() => a.apply(input as tf.Tensor) as tf.Tensor);
    const unknown = await compressionReport({ ...options, teacher: fn });
    expect(unknown.teacher.parameters).toBeNaN();
    expect(unknown.teacher.bytes).toBeNaN();
    expect(unknown.ratios.parameters).toBeNaN();
    expect(unknown.agreement).toBe(sizeA!.agreement);
    const text = formatCompressionReport(unknown);
    expect(text).toMatch(/\| parameters +\| +n\/a \| +19 \| +n\/a \|/);

    const mixed = await compressionReport({ ...options, teacher: new EnsembleTeacher([a, fn]) });
    expect(mixed.teacher.parameters).toBeNaN();

    // A pass-through teacher (it returns the batch it is given) is timed over several runs of the same batches.
    const scores = tf.randomNormal([10, 3]);
    const passThrough = await compressionReport({
      student: mlp(3, 2, 3, 4),
      teacher: (input: unknown) => input as tf.Tensor,
      x: scores,
      repeats: 2,
      latencyRows: 10,
    });
    expect(passThrough.teacher.latencyMs).toBeGreaterThan(0);
    scores.dispose();

    const given = await compressionReport({ ...options, teacher: fn, teacherSize: { parameters: 1000, bytes: 4500 } });
    expect(given.teacher.parameters).toBe(1000);
    expect(given.ratios.parameters).toBeCloseTo(1000 / student.countParams(), 12);
    expect(given.ratios.bytes).toBeCloseTo(4500 / given.student.bytes, 12);
    x.dispose();
  });

  it('formats a Markdown table with ratios and accuracy', async () => {
    const x = tf.eye(3);
    const labels = tf.tensor1d([0, 1, 2], 'int32');
    const report = await compressionReport({
      teacher: fixedLinear(identity),
      student: fixedLinear(swap01),
      x,
      labels,
      repeats: 1,
      latencyRows: 3,
    });
    const text = formatCompressionReport(report);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^\| +\| +teacher \| student \| teacher ÷ student \|$/);
    expect(lines[1]).toMatch(/^\|-+\|-+:\|-+:\|-+:\|$/);
    expect(text).toMatch(/\| parameters +\| +9 \| +9 \| +1\.00× \|/);
    expect(text).toMatch(/\| accuracy +\| +100\.00 % \| +33\.33 % \| +\|/);
    expect(text).toContain('Agreement (student argmax = teacher argmax): 33.33 % of 3 rows');
    expect(text).toContain('median of 1 runs of 3 rows in batches of 256, backend cpu');
    tf.dispose([x, labels]);
  });

  it('throws typed errors for bad data and options, without leaking tensors', async () => {
    const teacher = mlp(4, 8, 3, 1);
    const student = mlp(4, 2, 3, 2);
    const fiveClasses = mlp(4, 8, 5, 3);
    const x = tf.randomNormal([6, 4]);
    const before = tf.memory().numTensors;
    const run = (extra: Record<string, unknown>) =>
      compressionReport({ teacher, student, x, repeats: 1, latencyRows: 6, ...extra });

    const fewLabels = tf.tensor1d([0, 1, 2], 'int32');
    await expect(run({ labels: fewLabels })).rejects.toMatchObject({ name: 'KdShapeError', code: 'LENGTH_MISMATCH' });
    const outOfRange = tf.tensor1d([0, 1, 2, 3, 0, 1], 'int32');
    await expect(run({ labels: outOfRange })).rejects.toMatchObject({ name: 'KdDataError', code: 'LABEL_OUT_OF_RANGE' });
    const wideOneHot = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1], 'int32'), 4));
    await expect(run({ labels: wideOneHot })).rejects.toMatchObject({ code: 'CLASS_COUNT_MISMATCH' });
    await expect(run({ teacher: fiveClasses })).rejects.toMatchObject({ name: 'KdShapeError', code: 'CLASS_COUNT_MISMATCH' });
    const shortTeacherInputs = tf.zeros([5, 4]);
    await expect(run({ teacherInputs: shortTeacherInputs })).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
    await expect(run({ repeats: 0 })).rejects.toMatchObject({ name: 'KdConfigError', code: 'INVALID_OPTION' });
    await expect(run({ warmup: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(run({ latencyRows: 1.5 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(run({ student: {} })).rejects.toMatchObject({ code: 'INVALID_STUDENT' });

    tf.dispose([fewLabels, outOfRange, wideOneHot, shortTeacherInputs]);
    // Successful runs leave nothing behind either.
    await run({});
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
