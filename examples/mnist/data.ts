/**
 * The demo's data: the seeded, class-balanced split of `../shared/mnist.ts`
 * (8,000 training and 2,000 test digits), and training batches that can be
 * shifted afresh every epoch.
 *
 * Both trainers read the same batches: tfjs-layers' `model.fitDataset` (the
 * teacher and the students on labels alone, `oneHot: true`) and the kd-ts
 * `Distiller.fitDataset` (class ids). With the same seed, every model sees the
 * same digits in the same order with the same shifts; a teacher running inside
 * the Distiller reads the shifted batch the student reads.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom, type DatasetLike, type Seed } from '../../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, type MnistSet, type MnistSplit } from '../shared/mnist.js';
import { shiftDigits } from './shift.js';

/** Options of {@link loadDemoData}. */
export interface DemoDataOptions {
  /** Seed of the split (default 0). */
  seed?: Seed;
  /** Keep only the first `trainLimit` training digits (the split shuffles them, so any prefix mixes all classes): for smoke runs. */
  trainLimit?: number;
  /** Test digits per class (default 200). */
  testPerClass?: number;
}

/**
 * The demo's split: {@link loadMnistSplit} with 200 test digits per class,
 * optionally cut to a prefix of the training side for quick runs.
 *
 * @param options - See {@link DemoDataOptions}.
 * @returns Train and test sides, sharing no digit.
 */
export function loadDemoData(options: DemoDataOptions = {}): MnistSplit {
  const split = loadMnistSplit({ testPerClass: options.testPerClass ?? 200, seed: options.seed ?? 0 });
  const limit = options.trainLimit;
  if (limit === undefined || limit >= split.train.size) return split;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`trainLimit must be a positive integer, got ${limit}`);
  return { train: prefix(split.train, limit), test: split.test };
}

/** Options of {@link EpochBatches}. */
export interface EpochBatchesOptions {
  /** Examples per batch. */
  batchSize: number;
  /** Seeds the order and the shifts of every epoch. */
  seed: Seed;
  /** Shift every digit by up to this many pixels, drawn afresh each epoch (0: no shifts). */
  maxShift: number;
  /** `ys` as one-hot float rows (for tfjs-layers' `fitDataset`) instead of int32 class ids (for the Distiller). */
  oneHot?: boolean;
  /** Add each row's index in the set as `id` (int32), for a teacher cache. Only meaningful without shifts. */
  ids?: boolean;
}

/** One batch: what both `model.fitDataset` and `Distiller.fitDataset` read. */
export interface DemoBatch {
  /** Pixels `[batch, 784]`. */
  xs: tf.Tensor2D;
  /** Labels: class ids `[batch]` or one-hot `[batch, 10]`. */
  ys: tf.Tensor;
  /** Row indices in the set `[batch]`, when asked for. */
  id?: tf.Tensor1D;
}

/**
 * A dataset of training batches: each call to `iterator()` starts a new
 * epoch, with its own seeded order and, if `maxShift > 0`, its own seeded
 * shifts of every digit. Epoch k is the same for the same seed whatever
 * model reads it.
 */
export class EpochBatches implements DatasetLike<DemoBatch> {
  private epoch = 0;

  constructor(
    private readonly set: MnistSet,
    private readonly options: EpochBatchesOptions,
  ) {
    if (options.ids === true && options.maxShift > 0) {
      throw new RangeError('ids name rows for a teacher cache, but shifted rows differ every epoch: use ids with maxShift 0 only');
    }
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    return Math.ceil(this.set.size / this.options.batchSize);
  }

  /** The next `iterator()` is epoch `epoch` (0-based): a resumed run (kd-ts checkpoints) sets it in `onEpochBegin`. */
  atEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  /** Starts the next epoch: a fresh order and (with shifts) freshly shifted digits. */
  async iterator(): Promise<{ next(): Promise<IteratorResult<DemoBatch>> }> {
    const epoch = this.epoch++;
    const { seed, maxShift, batchSize } = this.options;
    const pixels = maxShift > 0 ? shiftDigits(this.set.x, `${seed}/shift/${epoch}`, maxShift) : this.set.x;
    const order = permutation(this.set.size, seededRandom(`${seed}/order/${epoch}`));
    let start = 0;
    return {
      next: async () => {
        if (start >= order.length) return { done: true, value: undefined };
        const rows = order.subarray(start, Math.min(start + batchSize, order.length));
        start += batchSize;
        return { done: false, value: this.batch(pixels, rows) };
      },
    };
  }

  private batch(pixels: Float32Array, rows: Int32Array): DemoBatch {
    const x = new Float32Array(rows.length * MNIST_PIXELS);
    const labels = new Int32Array(rows.length);
    rows.forEach((row, i) => {
      x.set(pixels.subarray(row * MNIST_PIXELS, (row + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
      labels[i] = this.set.labels[row]!;
    });
    const ys = tf.tensor1d(labels, 'int32');
    return {
      xs: tf.tensor2d(x, [rows.length, MNIST_PIXELS]),
      ys: this.options.oneHot === true ? oneHotOf(ys) : ys,
      ...(this.options.ids === true ? { id: tf.tensor1d(rows.slice(), 'int32') } : {}),
    };
  }
}

/** One-hot float rows from class ids; disposes the ids. */
function oneHotOf(ids: tf.Tensor1D): tf.Tensor {
  const oneHot = tf.tidy(() => tf.cast(tf.oneHot(ids, MNIST_CLASSES), 'float32'));
  ids.dispose();
  return oneHot;
}

/** The first `size` digits of a set, as a new set. */
function prefix(set: MnistSet, size: number): MnistSet {
  return {
    x: set.x.slice(0, size * MNIST_PIXELS),
    labels: set.labels.slice(0, size),
    ids: set.ids.slice(0, size),
    size,
  };
}

/** 0..n−1 in a seeded random order (Fisher–Yates). */
function permutation(n: number, random: () => number): Int32Array {
  const out = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}
