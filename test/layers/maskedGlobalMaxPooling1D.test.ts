import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { registerKdLayers } from '../../src/index.js';
import { MaskedGlobalMaxPooling1D } from '../../src/layers/index.js';

/** [batch 3, time 4, features 2]; row 0 keeps 2 steps, row 1 all 4, row 2 none. */
const X = [
  [[1, -5], [-2, -3], [9, 8], [7, 7]],
  [[-1, -1], [-4, 2], [0.5, -9], [-3, 1]],
  [[5, 5], [6, 6], [7, 7], [8, 8]],
];
const MASK = [
  [true, true, false, false],
  [true, true, true, true],
  [false, false, false, false],
];

/** Max over kept steps by hand; 0 when none is kept. */
function handPooled(): number[][] {
  return X.map((steps, row) =>
    [0, 1].map((feature) => {
      const kept = steps.filter((_, t) => MASK[row]![t]).map((step) => step[feature]!);
      return kept.length === 0 ? 0 : Math.max(...kept);
    }),
  );
}

describe('MaskedGlobalMaxPooling1D', () => {
  it('takes the max over the steps the mask keeps, 0 for a row with none', () => {
    const layer = new MaskedGlobalMaxPooling1D();
    const out = tf.tidy(() => (layer.apply(tf.tensor3d(X), { mask: tf.tensor2d(MASK, undefined, 'bool') }) as tf.Tensor).arraySync());
    expect(out).toEqual(handPooled());
    // A padded step holding the largest value (row 0: 9, 8) is what tfjs's GlobalMaxPooling1D would wrongly return.
    expect(handPooled()[0]).toEqual([1, -3]);
  });

  it('without a mask is a plain global max pool', () => {
    const layer = new MaskedGlobalMaxPooling1D();
    const [ours, stock] = tf.tidy(() => {
      const x = tf.tensor3d(X);
      return [(layer.apply(x) as tf.Tensor).arraySync(), (tfl.layers.globalMaxPooling1d({}).apply(x) as tf.Tensor).arraySync()];
    });
    expect(ours).toEqual(stock);
  });

  it('sends the gradient to the kept maximum only, never to padding', () => {
    const layer = new MaskedGlobalMaxPooling1D();
    const mask = tf.tensor2d(MASK, undefined, 'bool');
    const x = tf.tensor3d(X);
    const grad = tf.grad((input: tf.Tensor) => tf.sum(layer.apply(input, { mask }) as tf.Tensor))(x);
    const expected = X.map((steps, row) =>
      steps.map((step, t) =>
        step.map((value, feature) => (MASK[row]![t] && value === handPooled()[row]![feature] ? 1 : 0)),
      ),
    );
    expect(grad.arraySync()).toEqual(expected);
    expect(Number.isFinite(tf.tidy(() => tf.sum(grad).dataSync()[0]!))).toBe(true);
    tf.dispose([mask, x, grad]);
  });

  it('outputs [batch, features] with no mask, and is registered as kd>MaskedGlobalMaxPooling1D', () => {
    expect(registerKdLayers()).toContain('kd>MaskedGlobalMaxPooling1D');
    const tokens = tfl.input({ shape: [null], dtype: 'int32' });
    const embedded = tfl.layers.embedding({ inputDim: 10, outputDim: 3, maskZero: true }).apply(tokens) as tfl.SymbolicTensor;
    const layer = new MaskedGlobalMaxPooling1D();
    expect((layer.apply(embedded) as tfl.SymbolicTensor).shape).toEqual([null, 3]);
    expect(layer.computeMask(tf.zeros([1, 2, 3]), tf.ones([1, 2]))).toBeNull();
    expect(() => layer.computeOutputShape([null, 3])).toThrow(/returnSequences: true/);
  });
});
