/**
 * Training on hard labels (the teacher, and the student baseline) and
 * scoring, for models given as a forward function and their variables.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { withSeed, type DatasetLike, type DistillationBatch } from '../../src/index.js';
import { sortedBatches, type EncodedRows } from './batches.js';

/** A model as this module sees it: logits from int32 ids, with dropout on or off. */
export type Forward = (ids: tf.Tensor, training: boolean) => tf.Tensor;

/** Options of {@link trainOnLabels}. */
export interface LabelTrainingOptions {
  epochs: number;
  learningRate: number;
  numClasses: number;
  /** Seeds dropout (and anything else drawing from `Math.random`) for the run. */
  seed: string | number;
  /** Called after each epoch with its mean training loss and duration. */
  onEpochEnd?: (epoch: number, loss: number, seconds: number) => void;
}

/**
 * Adam on softmax cross-entropy of the logits against the labels, one step
 * per batch of the dataset (whose tensors are disposed after their step).
 *
 * @param forward - The model.
 * @param variables - What the optimizer updates (one fixed list: Adam keeps its moments by position).
 * @param dataset - Batches `{ xs, ys }`.
 * @param options - See {@link LabelTrainingOptions}.
 * @returns Seconds spent.
 */
export async function trainOnLabels(
  forward: Forward,
  variables: tf.Variable[],
  dataset: DatasetLike<DistillationBatch>,
  options: LabelTrainingOptions,
): Promise<number> {
  const optimizer = tf.train.adam(options.learningRate);
  const started = performance.now();
  try {
    await withSeed(options.seed, async () => {
      for (let epoch = 0; epoch < options.epochs; epoch++) {
        const epochStarted = performance.now();
        const iterator = await dataset.iterator();
        let total = 0;
        let seen = 0;
        for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
          const { xs, ys } = next.value;
          const cost = optimizer.minimize(
            () => tf.losses.softmaxCrossEntropy(tf.oneHot(ys as tf.Tensor1D, options.numClasses), forward(xs as tf.Tensor, true)),
            true,
            variables,
          )!;
          const size = (xs as tf.Tensor).shape[0]!;
          total += (await cost.data())[0]! * size;
          seen += size;
          tf.dispose([cost, xs as tf.Tensor, ys!, next.value.id!].filter((t) => t !== undefined));
        }
        options.onEpochEnd?.(epoch, total / seen, (performance.now() - epochStarted) / 1000);
      }
    });
  } finally {
    optimizer.dispose();
  }
  return (performance.now() - started) / 1000;
}

/**
 * Logits of every row, in row order, scored in length-sorted batches in
 * inference mode.
 *
 * @param forward - The model.
 * @param rows - Encoded rows.
 * @param options - `batchSize` (default 100), `minWidth` (default 1), `numClasses` (default 2).
 * @returns Row-major `[rows, classes]` logits.
 */
export async function predictLogits(
  forward: Forward,
  rows: EncodedRows,
  options: { batchSize?: number; minWidth?: number; numClasses?: number } = {},
): Promise<Float32Array> {
  const classes = options.numClasses ?? 2;
  const out = new Float32Array(rows.tokens.length * classes);
  for (const { batch, rows: picked } of sortedBatches({ tokens: rows.tokens }, options.batchSize ?? 100, options.minWidth ?? 1)) {
    const logits = forward(batch.xs as tf.Tensor, false);
    const values = (await logits.data()) as Float32Array;
    picked.forEach((r, k) => out.set(values.subarray(k * classes, (k + 1) * classes), r * classes));
    tf.dispose([logits, batch.xs as tf.Tensor]);
  }
  return out;
}

/** Share of rows whose argmax matches the label. */
export function accuracy(logits: Float32Array, labels: Int32Array, numClasses = 2): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (logits[i * numClasses + c]! > logits[i * numClasses + best]!) best = c;
    if (best === labels[i]) correct++;
  }
  return correct / labels.length;
}

/**
 * Inference speed on some rows: milliseconds per sentence one at a time
 * (median over the rows), and sentences per second in sorted batches.
 *
 * @param forward - The model.
 * @param rows - Encoded rows (e.g. the dev set).
 * @param options - `batchSize` of the batched pass (default 50), `single` rows timed one by one (default 200), `minWidth`.
 * @returns `{ msPerSentence, sentencesPerSecond }`.
 */
export async function inferenceSpeed(
  forward: Forward,
  rows: EncodedRows,
  options: { batchSize?: number; single?: number; minWidth?: number } = {},
): Promise<{ msPerSentence: number; sentencesPerSecond: number }> {
  const single = Math.min(options.single ?? 200, rows.tokens.length);
  const times: number[] = [];
  for (let i = 0; i < single; i++) {
    const started = performance.now();
    await predictLogits(forward, { tokens: [rows.tokens[i]!] }, { minWidth: options.minWidth ?? 1 });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const started = performance.now();
  await predictLogits(forward, rows, { batchSize: options.batchSize ?? 50, minWidth: options.minWidth ?? 1 });
  const seconds = (performance.now() - started) / 1000;
  return { msPerSentence: times[Math.floor(times.length / 2)]!, sentencesPerSecond: rows.tokens.length / seconds };
}
