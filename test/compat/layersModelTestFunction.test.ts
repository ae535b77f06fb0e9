import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { alignMultiOutputTestFunction, layersModelTestFunctionPatch } from '../../src/compat/layersModelTestFunction.js';
import { KdBackendError } from '../../src/errors.js';

/** Two outputs with fixed weights: head a = x·[1, 1], head b = 0. */
function twoHeads(): tfl.LayersModel {
  const input = tfl.input({ shape: [2] });
  const head = (name: string, kernelInitializer: 'ones' | 'zeros') =>
    tfl.layers.dense({ units: 1, name, kernelInitializer, useBias: false }).apply(input) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: [head('a', 'ones'), head('b', 'zeros')] });
  return model;
}

const x = () => tf.tensor2d([[1, 2], [3, 4]]);
// a = [3, 7] against [0, 0]: MSE 29; b = [0, 0] against [1, 3]: MSE 5; total 34.
const targets = () => [tf.tensor2d([[0], [0]]), tf.tensor2d([[1], [3]])];

function evaluate(model: tfl.LayersModel): number[] {
  model.compile({ optimizer: 'sgd', loss: ['meanSquaredError', 'meanSquaredError'] });
  return tf.tidy(() => (model.evaluate(x(), targets(), { batchSize: 2 }) as tf.Scalar[]).map((s) => s.dataSync()[0]!));
}

describe('compat: LayersModel.makeTestFunction (tfjs-layers, tensorflow/tfjs#5941)', () => {
  it('makes evaluate of a two-output model return [loss, a_loss, b_loss]', () => {
    const model = twoHeads();
    alignMultiOutputTestFunction(model);
    expect(evaluate(model)).toEqual([34, 29, 5]);
    expect(model.metricsNames).toEqual(['loss', 'a_loss', 'b_loss']);
  });

  it('lines up fit\'s val_ logs with the training logs', async () => {
    const model = twoHeads();
    alignMultiOutputTestFunction(model);
    model.compile({ optimizer: tf.train.sgd(0), loss: ['meanSquaredError', 'meanSquaredError'] });
    const [xs, ys] = [x(), targets()];
    const history = await model.fit(xs, ys, { epochs: 1, batchSize: 2, validationData: [xs, ys] });
    // With a learning rate of 0 the validation pass sees the training weights.
    for (const key of ['loss', 'a_loss', 'b_loss']) expect(history.history[`val_${key}`], key).toEqual(history.history[key]);
    expect(history.history.val_loss).toEqual([34]);
    tf.dispose([xs, ...ys]);
  });

  it('is still needed: unpatched tfjs-layers returns one value too many, shifted', () => {
    expect(evaluate(twoHeads())).toEqual([29, 34, 29, 5]);
  });

  it('checks that makeTestFunction is still there, naming the member and the version', () => {
    expect(() => layersModelTestFunctionPatch.check()).not.toThrow();
    const prototype = tfl.LayersModel.prototype as unknown as Record<string, unknown>;
    const original = prototype['makeTestFunction'];
    delete prototype['makeTestFunction'];
    try {
      expect(() => layersModelTestFunctionPatch.check()).toThrow(KdBackendError);
      expect(() => layersModelTestFunctionPatch.check()).toThrow(
        `@tensorflow/tfjs-layers ${tfl.version_layers}: LayersModel.prototype.makeTestFunction`,
      );
    } finally {
      prototype['makeTestFunction'] = original;
    }
    expect(() => layersModelTestFunctionPatch.check()).not.toThrow();
  });
});
