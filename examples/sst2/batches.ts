/**
 * Length-bucketed batches of token ids: each batch holds sentences of similar
 * lengths and is padded only to its longest one. SST-2's training rows are
 * short phrases (about 9 tokens on average, up to 50 after truncation):
 * padding every batch to 50 would make the BiLSTM run 5× more steps than
 * needed. Students mask PAD and the CNN teachers pool over valid windows only,
 * so a sentence's logits do not depend on the batch it lands in.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom, type DatasetLike, type DistillationBatch } from '../../src/index.js';

/** Encoded rows: token ids (already truncated), and optional labels and example ids. */
export interface EncodedRows {
  tokens: Int32Array[];
  labels?: Int32Array;
  /** Example ids (integers below 2^24), what teacher caches key their rows by. */
  ids?: Int32Array;
}

/** Options of {@link bucketedBatches}. */
export interface BucketOptions {
  batchSize: number;
  /** Seed of the per-epoch shuffles (the sequence of epochs repeats for a seed). */
  seed: string | number;
  /** Pad every batch to at least this many steps (the widest CNN filter: 5). */
  minWidth?: number;
  /** Sort within chunks of this many batches (default 50): large enough for little padding, small enough to keep batches random. */
  bucketBatches?: number;
}

/**
 * A dataset whose passes can be set to a given epoch: a resumed run (kd-ts
 * checkpoints) calls `atEpoch(epoch)` in `onEpochBegin`, so the pass it resumes
 * draws the same batches, in the same order, as the interrupted run did.
 */
export interface EpochDataset extends DatasetLike<DistillationBatch> {
  /** The next `iterator()` is pass `epoch` (0-based) of the run. */
  atEpoch(epoch: number): void;
}

/**
 * A dataset of `{ xs, ys?, id? }` batches for `Distiller.fitDataset` (and the
 * label-only loop): every pass shuffles the rows, sorts them by length within
 * chunks of `bucketBatches × batchSize`, cuts batches, and shuffles the
 * batches. `xs` is int32 `[batch, longest in batch]`, PAD (0) on the right.
 *
 * @param rows - Encoded rows.
 * @param options - See {@link BucketOptions}.
 * @returns A dataset; each `iterator()` call is a new epoch (or the one `atEpoch` set).
 */
export function bucketedBatches(rows: EncodedRows, options: BucketOptions): EpochDataset {
  // One stream for the whole run: pass e's shuffles are the draws after passes 0..e-1's.
  let random = seededRandom(`${options.seed}/batches`);
  let passes = 0;
  const chunk = options.batchSize * (options.bucketBatches ?? 50);
  return {
    atEpoch(epoch: number) {
      if (epoch === passes) return;
      // Replays the stream's draws up to that pass (shuffles only: milliseconds).
      random = seededRandom(`${options.seed}/batches`);
      for (passes = 0; passes < epoch; passes++) {
        shuffled(rows.tokens.length, random);
        shuffled(batchCount(rows, options.batchSize, chunk), random);
      }
    },
    iterator: async () => {
      passes += 1;
      const order = shuffled(rows.tokens.length, random);
      const batches: Int32Array[] = [];
      for (let start = 0; start < order.length; start += chunk) {
        const part = Array.from(order.subarray(start, start + chunk)).sort(
          (a, b) => rows.tokens[a]!.length - rows.tokens[b]!.length,
        );
        for (let k = 0; k < part.length; k += options.batchSize) batches.push(Int32Array.from(part.slice(k, k + options.batchSize)));
      }
      const batchOrder = shuffled(batches.length, random);
      let next = 0;
      return {
        next: async (): Promise<IteratorResult<DistillationBatch>> => {
          if (next >= batches.length) return { done: true, value: undefined };
          return { done: false, value: makeBatch(rows, batches[batchOrder[next++]!]!, options.minWidth ?? 1) };
        },
      };
    },
  };
}

/**
 * The rows in length-sorted batches, in a fixed order (for scoring and
 * evaluation): the batches and, per batch, which rows they hold.
 *
 * @param rows - Encoded rows.
 * @param batchSize - Rows per batch.
 * @param minWidth - Minimum padded width.
 * @returns A generator of `{ batch, rows }`; the caller disposes each batch's tensors.
 */
export function* sortedBatches(
  rows: EncodedRows,
  batchSize: number,
  minWidth = 1,
): Generator<{ batch: DistillationBatch; rows: Int32Array }> {
  const order = Array.from({ length: rows.tokens.length }, (_, i) => i).sort(
    (a, b) => rows.tokens[a]!.length - rows.tokens[b]!.length,
  );
  for (let start = 0; start < order.length; start += batchSize) {
    const picked = Int32Array.from(order.slice(start, start + batchSize));
    yield { batch: makeBatch(rows, picked, minWidth), rows: picked };
  }
}

/** The padded int32 token matrix `[rows, width]` of some rows. */
export function padRows(tokens: readonly Int32Array[], minWidth = 1): tf.Tensor2D {
  const width = Math.max(minWidth, ...tokens.map((t) => t.length));
  const values = new Int32Array(tokens.length * width); // zeros: PAD
  tokens.forEach((t, r) => values.set(t, r * width));
  return tf.tensor2d(values, [tokens.length, width], 'int32');
}

function makeBatch(rows: EncodedRows, picked: Int32Array, minWidth: number): DistillationBatch {
  const batch: DistillationBatch = { xs: padRows(Array.from(picked, (r) => rows.tokens[r]!), minWidth) };
  if (rows.labels !== undefined) batch.ys = tf.tensor1d(Int32Array.from(picked, (r) => rows.labels![r]!), 'int32');
  if (rows.ids !== undefined) batch.id = tf.tensor1d(Int32Array.from(picked, (r) => rows.ids![r]!), 'int32');
  return batch;
}

/** Batches in one pass: each chunk of `chunk` rows is cut into batches on its own. */
function batchCount(rows: EncodedRows, batchSize: number, chunk: number): number {
  let count = 0;
  for (let start = 0; start < rows.tokens.length; start += chunk) count += Math.ceil(Math.min(chunk, rows.tokens.length - start) / batchSize);
  return count;
}

function shuffled(n: number, random: () => number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
