import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { KdConfigError, withSeed } from '../../src/index.js';
import { SharedExchange } from '../../src/node/workers/allReduce.js';
import { CONTROL } from '../../src/node/workers/protocol.js';
import {
  applyUpdate,
  chunkOf,
  exchangeLayout,
  exchangeMemory,
  floats,
  regions,
  updateKernels,
  updateSpecOf,
  type ExchangeLayout,
  type UpdateSpec,
} from '../../src/node/workers/sharedUpdate.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('exchangeLayout', () => {
  it.each([
    [1, 5],
    [2, 1_276_810],
    [3, 5],
    [3, 13],
    [16, 1001],
  ])('splits %i workers × %i values into 4-aligned chunks that cover the padded regions once', (workers, size) => {
    const layout = exchangeLayout(workers, size);
    expect(layout.padded % 4).toBe(0);
    expect(layout.padded).toBeGreaterThanOrEqual(size);
    let next = 0;
    for (let i = 0; i < workers; i++) {
      const [from, to] = chunkOf(layout, i);
      expect(from % 4).toBe(0);
      expect(from).toBe(Math.min(next, layout.padded));
      next = to;
    }
    expect(next).toBe(layout.padded);
    expect(regions.shares(layout) + 8 * workers).toBe(layout.bytes);
  });

  it('makes room for the weights and state regions only where a sharded update uses them', () => {
    // Replicated: the slots and the averaged gradient; SGD: and the weights; Adam: and two state regions.
    expect(exchangeLayout(2, 10).regions).toBe(3);
    expect(exchangeLayout(2, 10, 0).regions).toBe(4);
    expect(exchangeLayout(2, 10, 2).regions).toBe(6);
    expect(exchangeLayout(2, 10, 2).bytes).toBe(6 * 12 * 4 + 32);
  });

  it('refuses a memory above WebAssembly 4 GiB with INVALID_OPTION naming the fix', () => {
    const error = (() => {
      try {
        exchangeMemory(exchangeLayout(16, 100_000_000));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(KdConfigError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(/use fewer workers/) });
  });
});

/** Variables of odd sizes (none a multiple of 4), as a student's kernels and biases. */
const SHAPES: number[][] = [[7, 5], [5], [3, 3, 3], [1]];

interface Case {
  name: string;
  make: () => tf.Optimizer;
}

const CASES: Case[] = [
  { name: 'SGD', make: () => tf.train.sgd(0.1) },
  { name: 'Momentum', make: () => tf.train.momentum(0.1, 0.9) },
  { name: 'Momentum (Nesterov)', make: () => tf.train.momentum(0.1, 0.8, true) },
  { name: 'Adam', make: () => tf.train.adam(0.05, 0.85, 0.99, 1e-6) },
  { name: 'Adam (defaults)', make: () => tf.train.adam() },
];

/**
 * Runs `steps` updates of the same random gradients two ways: tfjs's own
 * optimizer on variables, and update.wat's kernels on a shared memory laid
 * out for `workers` replicas, every replica's chunk updated in turn from one
 * thread (what the barrier orders across threads). Returns both final weights
 * and both optimizer states, flattened.
 */
async function runBoth(make: () => tf.Optimizer, workers: number, steps: number) {
  const initial = withSeed(1, () => SHAPES.map((s) => tf.randomNormal(s)));
  const grads = withSeed(2, () => Array.from({ length: steps }, () => SHAPES.map((s) => tf.randomNormal(s))));
  const size = SHAPES.reduce((n, s) => n + tf.util.sizeFromShape(s), 0);

  const reference = make();
  const variables = initial.map((t, i) => tf.variable(t, true, `shared_update_${i}_${Math.random()}`));
  for (const step of grads) reference.applyGradients(Object.fromEntries(variables.map((v, i) => [v.name, step[i]!])));
  const expectedWeights = flatten(variables);
  const expectedState = flatten((await reference.getWeights()).slice(1).map((w) => w.tensor));

  const optimizer = make();
  const spec = updateSpecOf(optimizer, 0) as Exclude<UpdateSpec, { kind: 'replicated' }>;
  const layout = exchangeLayout(workers, size, 2);
  const memory = exchangeMemory(layout);
  const kernels = updateKernels(memory);
  floats(memory, regions.weights(layout), size).set(flatten(initial));
  for (const step of grads) {
    // Every replica's slot holds the whole gradient with share 1 / workers: their sum is the gradient.
    for (let w = 0; w < workers; w++) floats(memory, regions.slot(layout, w), size).set(flatten(step));
    for (let i = 0; i < workers; i++) {
      const [from, to] = chunkOf(layout, i);
      for (let w = 0; w < workers; w++) {
        kernels.addScaled(regions.grad(layout) + from * 4, regions.slot(layout, w) + from * 4, to - from, 1 / workers, w === 0 ? 1 : 0);
      }
      applyUpdate(kernels, layout, i, spec, Number((optimizer.getConfig() as { learningRate: number }).learningRate));
    }
    spec.iterations++;
  }
  const state = [regions.first(layout), regions.second(layout)].flatMap((r) => Array.from(floats(memory, r, size)));
  const actual = { weights: Array.from(floats(memory, regions.weights(layout), size)), state };
  tf.dispose([...initial, ...grads.flat(), ...variables]);
  reference.dispose();
  optimizer.dispose();
  return { expected: { weights: expectedWeights, state: expectedState }, actual, layout };
}

function flatten(tensors: tf.Tensor[]): Float32Array {
  const parts = tensors.map((t) => t.dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

describe('the sharded update (update.wat) against tfjs optimizers', () => {
  it.each(CASES.flatMap((c) => [1, 3].map((workers) => [c.name, workers, c] as const)))(
    '%s over %i replica chunk(s): 5 steps give tfjs\'s weights and state',
    async (_, workers, { make }) => {
      const { expected, actual } = await runBoth(make, workers, 5);
      actual.weights.forEach((v, i) => expect(Math.abs(v - expected.weights[i]!)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(expected.weights[i]!)));
      // The state regions in tfjs's getWeights() order: first moments (or accumulations), then second moments.
      expected.state.forEach((v, i) => expect(Math.abs(actual.state[i]! - v)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(v)));
    },
  );

  it('moves the weights: a kernel that wrote nothing would fail the comparison', async () => {
    const { expected } = await runBoth(() => tf.train.adam(0.05), 1, 5);
    const initial = flatten(withSeed(1, () => SHAPES.map((s) => tf.randomNormal(s))));
    expect(Math.max(...expected.weights.map((v, i) => Math.abs(v - initial[i]!)))).toBeGreaterThan(0.1);
  });

  it('leaves other optimizer classes to the replicas (replicated)', () => {
    const rmsprop = tf.train.rmsprop(0.01);
    expect(updateSpecOf(rmsprop, 3)).toEqual({ kind: 'replicated' });
    expect(updateSpecOf(tf.train.adam(0.01, 0.8, 0.9, 1e-5), 3)).toEqual({ kind: 'adam', iterations: 3, beta1: 0.8, beta2: 0.9, epsilon: 1e-5 });
    rmsprop.dispose();
  });
});

describe('SharedExchange.reduce', () => {
  function exchange(workers: number, size: number): { layout: ExchangeLayout; memory: WebAssembly.Memory; control: SharedArrayBuffer } {
    const layout = exchangeLayout(workers, size);
    return { layout, memory: exchangeMemory(layout), control: new SharedArrayBuffer(CONTROL.LENGTH * 4) };
  }

  it('weighs each slot by its share and skips a slot whose share is 0, whatever it holds', () => {
    const { layout, memory, control } = exchange(1, 6);
    const one = new SharedExchange(control, memory, layout, 0);
    const part = tf.tensor1d([1, 2, 3, 4, 5, 6]);
    one.reduce([part], [6], 0.25, undefined);
    expect(Array.from(floats(memory, regions.grad(layout), 6))).toEqual([0.25, 0.5, 0.75, 1, 1.25, 1.5]);
    floats(memory, regions.slot(layout, 0), 6).fill(Number.NaN);
    one.reduce([undefined], [6], 0, undefined);
    expect(Array.from(floats(memory, regions.grad(layout), 6))).toEqual([0, 0, 0, 0, 0, 0]);
    part.dispose();
  });

  it("clips by the averaged gradient's global norm (tf.clipByGlobalNorm's rule)", () => {
    const { layout, memory, control } = exchange(1, 2);
    const one = new SharedExchange(control, memory, layout, 0);
    const part = tf.tensor1d([3, 4]);
    one.reduce([part], [2], 1, 1);
    const [a, b] = Array.from(floats(memory, regions.grad(layout), 2));
    expect(a).toBeCloseTo(0.6, 6);
    expect(b).toBeCloseTo(0.8, 6);
    one.reduce([part], [2], 1, 10);
    expect(Array.from(floats(memory, regions.grad(layout), 2))).toEqual([3, 4]);
    // A NaN norm gives NaN everywhere, as tf.clipByGlobalNorm does, not an unclipped step.
    const poisoned = tf.tensor1d([Number.NaN, 4]);
    one.reduce([poisoned], [2], 1, 1);
    expect(Array.from(floats(memory, regions.grad(layout), 2)).every(Number.isNaN)).toBe(true);
    tf.dispose([part, poisoned]);
  });
});
