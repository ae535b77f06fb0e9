/**
 * The MNIST demo's data (examples/mnist): its split (the shared split, cut to
 * a prefix for quick runs), the seeded ±2-pixel shifts, and the epoch batches
 * every model trains on. The shared split itself is checked in
 * mnist-split.test.ts.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { EpochBatches, loadDemoData, type DemoBatch } from '../../examples/mnist/data.js';
import { QUICK_DEMO, runDemo } from '../../examples/mnist/demo.js';
import { FULL_RECIPE, runFull, scoreOmittedDigit } from '../../examples/mnist/full.js';
import { shiftDigits } from '../../examples/mnist/shift.js';
import { MNIST_PIXELS, loadMnistSplit, type MnistSet } from '../../examples/shared/mnist.js';

function countPerClass(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label]!++;
  return counts;
}

/** Reads every batch of one epoch, disposing the tensors. */
async function readEpoch(batches: EpochBatches): Promise<{ ids: number[]; labels: number[]; x: Float32Array[]; oneHotRows: number[][] }> {
  const out = { ids: [] as number[], labels: [] as number[], x: [] as Float32Array[], oneHotRows: [] as number[][] };
  const iterator = await batches.iterator();
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    const batch: DemoBatch = next.value;
    if (batch.id !== undefined) out.ids.push(...(await batch.id.data()));
    if (batch.ys.rank === 1) out.labels.push(...(await batch.ys.data()));
    else out.oneHotRows.push(...((await batch.ys.array()) as number[][]));
    const x = await batch.xs.data();
    for (let r = 0; r < batch.xs.shape[0]; r++) out.x.push(x.slice(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS) as Float32Array);
    tf.dispose([batch.xs, batch.ys, ...(batch.id === undefined ? [] : [batch.id])]);
  }
  return out;
}

/** The digit at (row, col) after moving it right by dx and down by dy, or 0 outside the frame. */
function translated(digit: Float32Array, dx: number, dy: number): Float32Array {
  const out = new Float32Array(MNIST_PIXELS);
  for (let row = 0; row < 28; row++) {
    for (let col = 0; col < 28; col++) {
      const r = row - dy;
      const c = col - dx;
      if (r >= 0 && r < 28 && c >= 0 && c < 28) out[row * 28 + col] = digit[r * 28 + c]!;
    }
  }
  return out;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function digit(set: MnistSet, r: number): Float32Array {
  return set.x.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS);
}

describe('loadDemoData', () => {
  test('by default is the shared seeded split: 8,000 train, 200 test digits per class', () => {
    const demo = loadDemoData({ seed: 4 });
    const shared = loadMnistSplit({ seed: 4, testPerClass: 200 });
    expect(demo.train.ids).toEqual(shared.train.ids);
    expect(demo.test.ids).toEqual(shared.test.ids);
    expect(countPerClass(demo.test.labels)).toEqual(new Array(10).fill(200));
  });

  test('a quick run keeps a prefix of the training digits: all classes, none from the test set, the test set unchanged', () => {
    const full = loadDemoData({ seed: 0 });
    const quick = loadDemoData({ seed: 0, trainLimit: 1000 });
    expect(quick.train.size).toBe(1000);
    expect(quick.train.x.length).toBe(1000 * MNIST_PIXELS);
    expect(quick.train.ids).toEqual(full.train.ids.subarray(0, 1000));
    expect(quick.test.ids).toEqual(full.test.ids);
    // The split shuffles the training side, so a prefix is near-balanced (about 100 per class).
    for (const count of countPerClass(quick.train.labels)) expect(count).toBeGreaterThan(60);
    const testIds = new Set(quick.test.ids);
    expect(quick.train.ids.some((id) => testIds.has(id))).toBe(false);
  });

  test('the same seed gives the same quick split, another seed another one', () => {
    const a = loadDemoData({ seed: 1, trainLimit: 500 });
    const b = loadDemoData({ seed: 1, trainLimit: 500 });
    const c = loadDemoData({ seed: 2, trainLimit: 500 });
    expect(b.train.ids).toEqual(a.train.ids);
    expect(c.train.ids).not.toEqual(a.train.ids);
    expect(c.test.ids).not.toEqual(a.test.ids);
  });

  test('rejects a trainLimit that is not a positive integer', () => {
    expect(() => loadDemoData({ trainLimit: 0 })).toThrow(/trainLimit must be a positive integer/);
    expect(() => loadDemoData({ trainLimit: 2.5 })).toThrow(RangeError);
  });
});

describe('shiftDigits', () => {
  const { test: digits } = loadMnistSplit({ seed: 0, testPerClass: 30 }); // 300 digits
  const sample = digits.x;

  test('moves every digit by a whole (dx, dy) within ±2 pixels, with blank pixels moved in', () => {
    const shifted = shiftDigits(sample, 'shift-test');
    const seen = new Set<string>();
    for (let r = 0; r < digits.size; r++) {
      const original = digit(digits, r);
      const moved = shifted.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS);
      const matches: string[] = [];
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) if (sameValues(moved, translated(original, dx, dy))) matches.push(`${dx},${dy}`);
      }
      expect(matches.length).toBeGreaterThan(0);
      seen.add(matches[0]!);
    }
    // 300 digits draw every one of the 25 moves (each has probability 1/25).
    expect(seen.size).toBe(25);
  });

  test('keeps all the ink of digits whose outer two pixels are blank', () => {
    const shifted = shiftDigits(sample, 7);
    const ink = (x: Float32Array) => x.reduce((a, b) => a + b, 0);
    const blankBorder = (x: Float32Array) => x.every((v, i) => v === 0 || (i % 28 >= 2 && i % 28 < 26 && i >= 56 && i < 784 - 56));
    let checked = 0;
    for (let r = 0; r < digits.size; r++) {
      if (!blankBorder(digit(digits, r))) continue;
      checked++;
      expect(ink(shifted.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS))).toBeCloseTo(ink(digit(digits, r)), 3);
    }
    expect(checked).toBeGreaterThan(250); // MNIST digits sit in a 20 × 20 box: nearly all qualify
  });

  test('is seeded: the same seed gives the same copy, another seed another one; the input is untouched', () => {
    const before = sample.slice();
    const a = shiftDigits(sample, 3);
    expect(sameValues(shiftDigits(sample, 3), a)).toBe(true);
    expect(sameValues(shiftDigits(sample, 4), a)).toBe(false);
    expect(sameValues(sample, before)).toBe(true);
  });

  test('maxShift 0 copies the digits as they are; bad sizes are refused', () => {
    expect(sameValues(shiftDigits(sample, 0, 0), sample)).toBe(true);
    expect(() => shiftDigits(new Float32Array(100), 0)).toThrow(/whole 28 × 28 digits/);
    expect(() => shiftDigits(sample, 0, 28)).toThrow(/maxShift must be an integer/);
  });
});

describe('EpochBatches', () => {
  const { test: set } = loadMnistSplit({ seed: 0, testPerClass: 20 }); // 200 digits

  test('an epoch visits every digit once, with its own label, in a seeded order that changes every epoch', async () => {
    const batches = new EpochBatches(set, { batchSize: 64, seed: 'b', maxShift: 0, ids: true });
    expect(batches.batchesPerEpoch).toBe(4);
    const first = await readEpoch(batches);
    const second = await readEpoch(batches);
    for (const epoch of [first, second]) {
      expect([...epoch.ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      epoch.ids.forEach((row, i) => {
        expect(epoch.labels[i]).toBe(set.labels[row]);
        expect(sameValues(epoch.x[i]!, digit(set, row))).toBe(true);
      });
    }
    expect(second.ids).not.toEqual(first.ids);
    // Another reader with the same seed gets the same first epoch: every model sees the same batches.
    expect((await readEpoch(new EpochBatches(set, { batchSize: 64, seed: 'b', maxShift: 0, ids: true }))).ids).toEqual(first.ids);
  });

  test('with shifts, every epoch gets freshly shifted digits, the same for the same seed', async () => {
    const make = () => new EpochBatches(set, { batchSize: 50, seed: 's', maxShift: 2 });
    const a = make();
    const b = make();
    const a0 = await readEpoch(a);
    const b0 = await readEpoch(b);
    expect(a0.x.every((x, i) => sameValues(x, b0.x[i]!))).toBe(true);
    const a1 = await readEpoch(a);
    // Epoch 1 has a new order and new shifts: almost no row repeats epoch 0's pixels.
    const unchanged = a0.x.filter((x, i) => sameValues(x, a1.x[i]!)).length;
    expect(unchanged).toBeLessThan(10);
    // The shifts move digits: few of them stay exactly as in the set (a (0, 0) move has probability 1/25).
    const asInSet = a0.x.filter((x) => Array.from({ length: set.size }, (_, r) => r).some((r) => sameValues(x, digit(set, r)))).length;
    expect(asInSet).toBeLessThan(30);
  });

  test('gives one-hot float labels for tfjs-layers when asked', async () => {
    const epoch = await readEpoch(new EpochBatches(set, { batchSize: 128, seed: 0, maxShift: 0, oneHot: true }));
    expect(epoch.oneHotRows.length).toBe(200);
    for (const row of epoch.oneHotRows) {
      expect(row.length).toBe(10);
      expect(row.reduce((a, b) => a + b, 0)).toBe(1);
    }
    expect(countPerClass(Int32Array.from(epoch.oneHotRows.map((row) => row.indexOf(1))))).toEqual(new Array(10).fill(20));
  });

  test('refuses ids with shifts: a teacher cache keyed by row would serve the unshifted digit’s outputs', () => {
    expect(() => new EpochBatches(set, { batchSize: 8, seed: 0, maxShift: 2, ids: true })).toThrow(/ids with maxShift 0 only/);
  });

  test('leaves no tensor behind once the batches are disposed', async () => {
    const batches = new EpochBatches(set, { batchSize: 32, seed: 0, maxShift: 2, oneHot: true });
    const before = tf.memory().numTensors;
    await readEpoch(batches);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('scoreOmittedDigit (Hinton et al. §3)', () => {
  test('raises the bias of the omitted class until the student calls as many training digits 3s as the labels hold', async () => {
    const { train, test: testSet } = loadMnistSplit({ seed: 0, testPerClass: 20 });
    const small = { x: train.x.slice(0, 600 * MNIST_PIXELS), labels: train.labels.slice(0, 600), ids: train.ids.slice(0, 600), size: 600 };
    // A linear student that barely ever says 3: its class-3 bias starts far below the others.
    const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [MNIST_PIXELS], kernelInitializer: tfl.initializers.randomNormal({ seed: 1, stddev: 0.05 }) })] });
    const lowThree = tf.tensor1d([0, 0, 0, -5, 0, 0, 0, 0, 0, 0]);
    student.setWeights([student.getWeights()[0]!, lowThree]);
    lowThree.dispose();
    const three = tf.tensor1d([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const testX = tf.tensor2d(testSet.x, [testSet.size, MNIST_PIXELS]);
    const before = tf.memory().numTensors;
    const result = await scoreOmittedDigit(student, 3, small, testSet, testX);
    expect(tf.memory().numTensors).toBe(before);
    expect(result.testCount).toBe(20);
    expect(result.errorsOnDigit).toBe(20); // with −5 on its bias the student never says 3
    expect(result.biasIncrease).toBeGreaterThan(0);

    // The adjusted student calls as many training digits 3s as there are 3s among their labels.
    const shifted = tf.tidy(() => tf.add(student.predict(tf.tensor2d(small.x, [600, MNIST_PIXELS])) as tf.Tensor, tf.mul(three, result.biasIncrease)));
    const calledThree = (await tf.argMax(shifted, -1).data()).filter((c) => c === 3).length;
    expect(Math.abs(calledThree - small.labels.filter((l) => l === 3).length)).toBeLessThanOrEqual(1);
    const adjusted = tf.tidy(() => tf.argMax(tf.add(student.predict(testX) as tf.Tensor, tf.mul(three, result.biasIncrease)), -1));
    const predicted = (await adjusted.data()) as Int32Array;
    expect(result.adjusted.errorsOnDigit).toBe(testSet.labels.reduce((n, label, r) => n + (label === 3 && predicted[r] !== 3 ? 1 : 0), 0));
    expect(result.adjusted.testErrors).toBe(testSet.labels.reduce((n, label, r) => n + (predicted[r] !== label ? 1 : 0), 0));
    expect(result.adjusted.errorsOnDigit).toBeLessThan(result.errorsOnDigit);
    tf.dispose([shifted, adjusted, testX, three]);
    student.dispose();
  });
});

describe('runFull with only (--full --only)', () => {
  test('refuses a model key it does not know before training or writing anything, and lists the keys', async () => {
    const out = join(tmpdir(), `kd-ts-full-only-${process.pid}`);
    const lines: string[] = [];
    await expect(runFull({ ...FULL_RECIPE, seeds: [0], only: ['s800-kd-no3', 's800-kd-n03'] }, out, (line) => lines.push(line))).rejects.toThrow(
      /unknown model key\(s\) s800-kd-n03 in --only; the keys: teacher, s800-labels, .*s800-kd-no3$/,
    );
    expect(existsSync(out)).toBe(false);
    expect(lines).toEqual([]);
  });
});

describe('runDemo (the --quick run, end to end)', () => {
  test('writes the report, the figure as SVG and PNG, and results.json with both students and the uint8 one; ends with the plain sentence', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kd-ts-demo-'));
    const lines: string[] = [];
    // IS_TEST's per-kernel check trips on tf.losses.softmaxCrossEntropy's custom gradient inside fitDataset
    // (a tfjs quirk, not a leak: the count of tensors is checked below).
    tf.env().set('IS_TEST', false);
    try {
      const before = tf.memory().numTensors;
      const settings = { ...QUICK_DEMO, trainLimit: 400, studentDigits: 200, teacherEpochs: 1, studentEpochs: 1, latencyRepeats: 1 };
      const outcome = await runDemo(settings, out, (line) => lines.push(line));
      expect(tf.memory().numTensors).toBe(before);
      const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
      for (const key of ['scratch', 'distilled'] as const) {
        expect(results.compression[key].rows).toBe(2000);
        expect(results.compression[key].student.accuracy).toBeGreaterThan(0);
      }
      const [uint8] = results.compression.distilled.quantized;
      expect(uint8.dtype).toBe('uint8');
      expect(uint8.weightBytes).toBeLessThanOrEqual(0.3 * results.compression.distilled.student.weightBytes);
      // The errors and the sentence come from the same reports as the table.
      expect(outcome.errors.scratch).toBe(Math.round((1 - results.compression.scratch.student.accuracy) * 2000));
      expect(outcome.errors.distilled).toBe(Math.round((1 - results.compression.distilled.student.accuracy) * 2000));
      const fewer = outcome.errors.scratch - outcome.errors.distilled;
      expect(outcome.sentence).toMatch(
        new RegExp(`^Distillation: the student makes ${Math.abs(fewer)} (fewer|more) test errors than the same student trained on the labels alone \\(${outcome.errors.distilled} instead of ${outcome.errors.scratch} of 2,000\\), with [\\d.]+× fewer parameters than the teacher and [\\d.]+× faster\\.$`),
      );
      expect(lines.filter((line) => line.length > 0).at(-1)).toBe(outcome.sentence);
      // Both students read the same digits: the first studentDigits of the teacher's.
      expect(lines[0]).toContain('teacher on 400 digits, both students on 200 of them');
      expect(results.transfer.digits).toHaveLength(QUICK_DEMO.shownDigits);
      for (const digit of results.transfer.digits) {
        expect(Object.keys(digit.probabilities)).toEqual(['teacher', 'student, labels only', 'student, distilled']);
        for (const p of Object.values(digit.probabilities) as number[][]) expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
      const report = await readFile(join(out, 'report.md'), 'utf8');
      expect(report).toContain('![Learning curves, and what distillation transfers](figure.svg)');
      expect(report).toContain('(figure.png)');
      expect(report).toContain(outcome.sentence);
      expect(await readFile(join(out, 'figure.svg'), 'utf8')).toMatch(/^<svg/);
      expect(Array.from((await readFile(join(out, 'figure.png'))).subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    } finally {
      tf.env().set('IS_TEST', true);
      await rm(out, { recursive: true, force: true });
    }
  }, 240_000);
});
