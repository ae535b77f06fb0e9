/**
 * Checks the examples' MNIST split: balanced, disjoint, seeded, and faithful
 * to the `mnist` package's digits.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { MNIST_PIXELS, loadMnistSplit, mnistDigitId, toTensors, type MnistSet } from '../../examples/shared/mnist.js';

const mnist = createRequire(import.meta.url)('mnist') as { length: number; get(i: number): number[] }[];

function countPerClass(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label]!++;
  return counts;
}

function row(set: MnistSet, r: number): Float32Array {
  return set.x.subarray(r * MNIST_PIXELS, (r + 1) * MNIST_PIXELS);
}

describe('loadMnistSplit', () => {
  const split = loadMnistSplit({ seed: 0 });

  test('has 8,000 training and 2,000 test digits, with matching array lengths', () => {
    expect(split.train.size).toBe(8000);
    expect(split.test.size).toBe(2000);
    for (const set of [split.train, split.test]) {
      expect(set.x.length).toBe(set.size * MNIST_PIXELS);
      expect(set.labels.length).toBe(set.size);
      expect(set.ids.length).toBe(set.size);
    }
  });

  test('the test set holds exactly 200 digits of each class', () => {
    expect(countPerClass(split.test.labels)).toEqual(new Array(10).fill(200));
  });

  test('the training set holds every other digit of each class', () => {
    const expected = mnist.map((digitClass) => digitClass.length - 200);
    expect(countPerClass(split.train.labels)).toEqual(expected);
  });

  test('train and test share no digit, and together cover all 10,000', () => {
    const trainIds = new Set(split.train.ids);
    const testIds = new Set(split.test.ids);
    expect(trainIds.size).toBe(8000);
    expect(testIds.size).toBe(2000);
    for (const id of testIds) expect(trainIds.has(id)).toBe(false);
    const all = [...trainIds, ...testIds].sort((a, b) => a - b);
    expect(all[0]).toBe(0);
    expect(all[all.length - 1]).toBe(9999);
  });

  test('the same seed gives the same split in the same order', () => {
    const again = loadMnistSplit({ seed: 0 });
    expect(again.train.ids).toEqual(split.train.ids);
    expect(again.test.ids).toEqual(split.test.ids);
    // A plain loop: vitest's deep equality takes seconds on 1.5 M floats.
    let differing = 0;
    for (let i = 0; i < split.test.x.length; i++) if (again.test.x[i] !== split.test.x[i]) differing++;
    expect(differing).toBe(0);
  });

  test('another seed gives another test set and another order', () => {
    const other = loadMnistSplit({ seed: 1 });
    expect(countPerClass(other.test.labels)).toEqual(new Array(10).fill(200));
    const firstTest = new Set(split.test.ids);
    const shared = other.test.ids.filter((id) => firstTest.has(id)).length;
    // Two independent draws of 200 of ~1,000 per class share about a fifth.
    expect(shared).toBeLessThan(1000);
    expect(other.train.ids).not.toEqual(split.train.ids);
  });

  test('the sides are shuffled, not sorted by class', () => {
    const firstHundred = split.train.labels.subarray(0, 100);
    expect(new Set(firstHundred).size).toBe(10);
  });

  test('pixels are grey levels in [0, 1] with ink in every digit', () => {
    for (const set of [split.train, split.test]) {
      let min = Infinity;
      let max = -Infinity;
      for (const v of set.x) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      expect(min).toBe(0);
      expect(max).toBeLessThanOrEqual(1);
      expect(max).toBeGreaterThan(0.9);
    }
    for (let r = 0; r < 50; r++) expect(row(split.test, r).some((v) => v > 0.5)).toBe(true);
  });

  test('rows carry the pixels and label of the package digit their id names', () => {
    const known: [digit: number, index: number][] = [
      [0, 0],
      [3, 17],
      [5, 862], // the last sample of the smallest class
      [9, 977],
      [1, 500],
    ];
    for (const [digit, index] of known) {
      const id = mnistDigitId(digit, index);
      const set = split.test.ids.includes(id) ? split.test : split.train;
      const r = set.ids.indexOf(id);
      expect(set.labels[r]).toBe(digit);
      expect(Array.from(row(set, r))).toEqual(Array.from(Float32Array.from(mnist[digit]!.get(index))));
    }
  });

  test('rejects a testPerClass the smallest class cannot supply', () => {
    expect(() => loadMnistSplit({ testPerClass: 864 })).toThrow(/testPerClass must be an integer from 0 to 863/);
    expect(() => loadMnistSplit({ testPerClass: 1.5 })).toThrow(RangeError);
    expect(loadMnistSplit({ testPerClass: 50, seed: 3 }).test.size).toBe(500);
  });
});

describe('toTensors', () => {
  test('gives float32 [N, 784] pixels and int32 [N] labels with the same values', async () => {
    const { test: testSet } = loadMnistSplit({ seed: 0 });
    const { x, y } = toTensors(testSet);
    try {
      expect(x.shape).toEqual([2000, 784]);
      expect(x.dtype).toBe('float32');
      expect(y.shape).toEqual([2000]);
      expect(y.dtype).toBe('int32');
      expect(await y.data()).toEqual(testSet.labels);
      expect((await x.data()).subarray(0, MNIST_PIXELS)).toEqual(row(testSet, 0));
    } finally {
      tf.dispose([x, y]);
    }
  });
});
