import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-layers registers tfjs-core's gradients, which the gradient test needs (kd-ts's root entry used to bring it in).
import '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmFastSlice } from '../../src/backend/index.js';

/** Runs `f` on cpu and on wasm (with kd-ts's kernels) and returns both results' values and shapes. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]) {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const result = list.map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) }));
    tf.dispose(list);
    return result;
  };
  return { cpu: await run('cpu'), wasm: await run('wasm') };
}

const data = (shape: number[], dtype: 'float32' | 'int32' | 'bool' = 'float32') => {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? i - 7 : i * 0.5 - 3));
  return tf.tensor(values as number[], shape, dtype);
};

describe('wasm fast Slice, Unpack, SplitV, GatherV2', () => {
  beforeAll(() => {
    tf.env().set('IS_TEST', false); // see wasm.test.ts
    expect(registerWasmFastSlice()).toEqual(['Slice', 'Unpack', 'SplitV', 'GatherV2']);
    registerWasmFastSlice(); // idempotent
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  const sliceCases: Array<[string, number[], number[], number[], ('float32' | 'int32' | 'bool')?]> = [
    ['rows of a matrix', [20, 7], [3, 0], [5, -1]],
    ['an inner box of rank 4', [3, 4, 5, 6], [1, 1, 2, 3], [2, 2, 3, 2]],
    ['a column', [6, 5], [0, 4], [-1, 1]],
    ['a whole tensor', [2, 3, 4], [0, 0, 0], [-1, -1, -1]],
    ['empty', [4, 4], [1, 1], [0, 2]],
    ['rank 1 int32', [10], [2], [5], 'int32'],
    ['bool', [4, 6], [1, 2], [2, 3], 'bool'],
    ['middle axis', [5, 6, 3], [0, 2, 0], [5, 3, 3]],
  ];
  it.each(sliceCases)('Slice: %s equals cpu', async (_name, shape, begin, size, dtype) => {
    const { cpu, wasm } = await onBoth(() => tf.slice(data(shape, dtype), begin, size));
    expect(wasm).toEqual(cpu);
  });

  it.each([0, 1, 2, -1])('Unpack (tf.unstack) along axis %i equals cpu', async (axis) => {
    const { cpu, wasm } = await onBoth(() => tf.unstack(data([3, 4, 5]), axis));
    expect(wasm).toEqual(cpu);
  });

  it.each<[number | number[], number]>([
    [3, 1],
    [[2, 3, 1], 1],
    [[1, -1], 0],
    [2, -1],
  ])('SplitV (tf.split %j on axis %i) equals cpu', async (splits, axis) => {
    const { cpu, wasm } = await onBoth(() => tf.split(data([4, 6, 2]), splits, axis));
    expect(wasm).toEqual(cpu);
  });

  const gatherCases: Array<[string, number[], number[], number[], number, number, ('float32' | 'int32' | 'bool')?]> = [
    ['embedding rows (long slices)', [30, 20], [7], [3, 0, 29, 3, 11, 7, 0], 0, 0],
    ['short rows', [10, 3], [4], [9, 0, 9, 2], 0, 0],
    ['2-D indices', [12, 17], [2, 3], [1, 11, 4, 4, 0, 10], 0, 0],
    ['inner axis', [3, 8, 5], [4], [7, 0, 3, 3], 1, 0],
    ['last axis', [4, 6], [3], [5, 1, 0], 1, 0],
    ['batchDims 1', [3, 5, 18], [3, 2], [4, 0, 1, 1, 3, 2], 1, 1],
    ['int32', [6, 20], [3], [5, 0, 2], 0, 0, 'int32'],
    ['bool', [6, 4], [2], [3, 1], 0, 0, 'bool'],
    ['no indices', [5, 20], [0], [], 0, 0],
  ];
  it.each(gatherCases)('GatherV2 (tf.gather): %s equals cpu', async (_name, shape, idShape, ids, axis, batchDims, dtype) => {
    const { cpu, wasm } = await onBoth(() => tf.gather(data(shape, dtype), tf.tensor(ids, idShape, 'int32'), axis, batchDims));
    expect(wasm).toEqual(cpu);
  });

  it('GatherV2 rejects an index out of range', async () => {
    await tf.setBackend('wasm');
    const x = data([4, 20]);
    const ids = tf.tensor1d([1, 4], 'int32');
    expect(() => tf.gather(x, ids)).toThrow(/index value 4 is not in \[0, 3\]/);
    tf.dispose([x, ids]);
  });

  it('gradients through slice, unstack and split equal cpu', async () => {
    const f = (x: tf.Tensor) =>
      tf.add(
        tf.sum(tf.square(tf.slice(x, [1, 0], [2, 3]))),
        tf.add(tf.sum(tf.mul(tf.unstack(x)[2]!, 3)), tf.sum(tf.split(x, [1, 2], 1)[1]!)),
      );
    const { cpu, wasm } = await onBoth(() => tf.grad(f)(data([4, 3])));
    expect(wasm).toEqual(cpu);
  });

  it('frees what it allocates and leaves strings to the stock kernel', async () => {
    await tf.setBackend('wasm');
    const x = data([50, 8]);
    const rows = tf.tensor1d([3, 1, 49], 'int32');
    const ids = tf.engine().backend.numDataIds();
    for (let i = 0; i < 20; i++) tf.dispose([tf.slice(x, [i, 0], [3, -1]), ...tf.unstack(x), ...tf.split(x, 2, 1), tf.gather(x, rows)]);
    expect(tf.engine().backend.numDataIds()).toBe(ids);
    const strings = tf.tensor1d(['a', 'b', 'c']);
    expect(Array.from(tf.slice(strings, [1], [2]).dataSync())).toEqual(['b', 'c']);
    tf.dispose([x, strings, rows]);
  });
});
