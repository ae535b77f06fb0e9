import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients
import { describe, expect, it } from 'vitest';
import { optimizerStatePatch, readOptimizerState, RESUMABLE_OPTIMIZERS, writeOptimizerState } from '../../src/compat/optimizerState.js';
import { KdConfigError } from '../../src/errors.js';

const makers: Record<string, () => tf.Optimizer> = {
  SGD: () => tf.train.sgd(0.1),
  Momentum: () => tf.train.momentum(0.05, 0.9, true),
  RMSProp: () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-6, true),
  Adagrad: () => tf.train.adagrad(0.1),
  Adadelta: () => tf.train.adadelta(1, 0.9),
  Adam: () => tf.train.adam(0.01),
};

/** A fixed quadratic problem: steps of `optimizer` on two variables; returns their bits. */
function train(optimizer: tf.Optimizer, variables: tf.Variable[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    tf.tidy(() => {
      const target = tf.reshape(tf.sin(tf.range(i, i + 6)), [2, 3]);
      const { grads } = tf.variableGrads(() => tf.add(tf.sum(tf.square(tf.sub(variables[0]!, target))), tf.sum(tf.abs(variables[1]!))) as tf.Scalar, variables);
      optimizer.applyGradients(grads);
    });
  }
}

const fresh = () => tf.tidy(() => [tf.variable(tf.reshape(tf.linspace(-1, 1, 6), [2, 3])), tf.variable(tf.tensor1d([0.3, -0.7]))]);
const bits = (vs: tf.Variable[]) => vs.map((v) => Array.from(new Uint32Array(new Float32Array(v.dataSync()).buffer)));

describe('compat: optimizer state (Adam\'s running β-powers)', () => {
  it.each(RESUMABLE_OPTIMIZERS)('%s resumes bit for bit after a save at step 30', async (name) => {
    const make = makers[name]!;
    const straight = fresh();
    const a = make();
    train(a, straight, 0, 60);

    const before = tf.memory().numTensors;
    const first = fresh();
    const b = make();
    train(b, first, 0, 30);
    const state = await readOptimizerState(b);
    const values = first.map((v) => v.clone());
    b.dispose();
    tf.dispose(first);
    const resumed = values.map((v) => tf.variable(v));
    tf.dispose(values);
    const c = make();
    await writeOptimizerState(c, state);
    tf.dispose(state.slots.map((s) => s.tensor));
    expect(state.iterations).toBe(30);
    train(c, resumed, 30, 60);
    expect(bits(resumed)).toEqual(bits(straight));
    c.dispose();
    tf.dispose(resumed);
    // tfjs's MomentumOptimizer.dispose leaves its parent SGD's learning-rate scalar (one per optimizer, b and c).
    expect(tf.memory().numTensors).toBe(before + (name === 'Momentum' ? 2 : 0));
    a.dispose();
    tf.dispose(straight);
  });

  it('shows the trap it works around: Adam\'s own setWeights is not bit-exact', async () => {
    const straight = fresh();
    const a = tf.train.adam(0.01);
    train(a, straight, 0, 60);
    const vs = fresh();
    const b = tf.train.adam(0.01);
    train(b, vs, 0, 30);
    const weights = await b.getWeights();
    const c = tf.train.adam(0.01);
    await c.setWeights(weights.map((w) => ({ name: w.name, tensor: w.tensor.clone() })));
    train(c, vs, 30, 60);
    expect(bits(vs)).not.toEqual(bits(straight));
    for (const o of [a, b, c]) o.dispose();
    tf.dispose([...straight, ...vs]);
  });

  it('refuses Adamax (its getWeights throws) with CHECKPOINT_UNSUPPORTED', async () => {
    const adamax = tf.train.adamax(0.01);
    await expect(adamax.getWeights()).rejects.toThrow();
    await expect(readOptimizerState(adamax)).rejects.toMatchObject({ code: 'CHECKPOINT_UNSUPPORTED' });
    await expect(readOptimizerState(adamax)).rejects.toBeInstanceOf(KdConfigError);
    adamax.dispose();
  });

  it('refuses another optimizer class on restore with CHECKPOINT_MISMATCH', async () => {
    const sgd = tf.train.sgd(0.1);
    await expect(writeOptimizerState(sgd, { className: 'Adam', iterations: 1, slots: [], scalars: {} })).rejects.toMatchObject({ code: 'CHECKPOINT_MISMATCH' });
  });

  it('checks the private fields it relies on', () => {
    expect(() => optimizerStatePatch.check()).not.toThrow();
  });
});
