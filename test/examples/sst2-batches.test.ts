/**
 * The SST-2 example's bucketed batches, seekable by epoch for resumed runs
 * (`--checkpoint`): a fresh dataset set to pass k draws what an uninterrupted
 * one draws in its pass k.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { bucketedBatches, type EncodedRows } from '../../examples/sst2/batches.js';

const rows: EncodedRows = {
  tokens: Array.from({ length: 230 }, (_, i) => Int32Array.from({ length: 1 + ((i * 7) % 13) }, (_, k) => 1 + ((i + k) % 50))),
  ids: Int32Array.from({ length: 230 }, (_, i) => i),
};
const options = { batchSize: 7, seed: 'x', bucketBatches: 3 };

/** The ids of every batch of one pass, in order. */
async function pass(dataset: ReturnType<typeof bucketedBatches>): Promise<number[][]> {
  const iterator = await dataset.iterator();
  const out: number[][] = [];
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
    out.push(Array.from(await next.value.id!.data()));
    tf.dispose([next.value.xs as tf.Tensor, next.value.id!]);
  }
  return out;
}

describe('bucketedBatches.atEpoch', () => {
  it('a fresh dataset set to pass k draws the uninterrupted run\'s pass k; atEpoch of the current pass changes nothing', async () => {
    const uninterrupted = bucketedBatches(rows, options);
    const passes = [];
    for (let k = 0; k < 4; k++) passes.push(await pass(uninterrupted));
    expect(passes[1]).not.toEqual(passes[0]);
    for (const k of [0, 1, 3]) {
      const resumed = bucketedBatches(rows, options);
      resumed.atEpoch(k);
      expect(await pass(resumed)).toEqual(passes[k]);
      resumed.atEpoch(k + 1); // the pass it is at: no replay
      if (k + 1 < 4) expect(await pass(resumed)).toEqual(passes[k + 1]);
    }
    // Backwards too (a second fit on the same dataset from epoch 0).
    const again = bucketedBatches(rows, options);
    await pass(again);
    await pass(again);
    again.atEpoch(0);
    expect(await pass(again)).toEqual(passes[0]);
  });
});
