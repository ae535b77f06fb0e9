import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { KdShapeError, registerKdLayers } from '../../src/index.js';
import { PairFeatures } from '../../src/layers/index.js';

describe('PairFeatures', () => {
  it('concatenates [h1, h2, h1 ⊙ h2, |h1 − h2|], checked against a hand computation', () => {
    const h1 = [
      [0.5, -1, 2],
      [3, 0, -0.25],
    ];
    const h2 = [
      [1.5, -1, -2],
      [-3, 4, 0.75],
    ];
    const expected = h1.map((a, row) => {
      const b = h2[row]!;
      return [...a, ...b, ...a.map((v, i) => v * b[i]!), ...a.map((v, i) => Math.abs(v - b[i]!))];
    });
    const layer = new PairFeatures();
    const out = tf.tidy(() => (layer.apply([tf.tensor2d(h1), tf.tensor2d(h2)]) as tf.Tensor).arraySync());
    expect(out).toEqual(expected);
  });

  it('gives [batch, 4·features] symbolically, and names the fix for bad inputs', () => {
    const a = tfl.input({ shape: [6] });
    const b = tfl.input({ shape: [6] });
    expect((new PairFeatures().apply([a, b]) as tfl.SymbolicTensor).shape).toEqual([null, 24]);
    expect(() => new PairFeatures().apply([a, tfl.input({ shape: [5] })])).toThrow(KdShapeError);
    expect(() => new PairFeatures().apply([a, tfl.input({ shape: [5] })])).toThrow(/same \(shared\) encoder/);
    expect(() => new PairFeatures().apply(a)).toThrow(/two inputs/);
  });

  it('passes gradients to both inputs: d/dh1 of Σ features = 1 + 1·0 + h2 + sign(h1 − h2)', () => {
    const layer = new PairFeatures();
    const h1 = tf.tensor2d([[1, -2]]);
    const h2 = tf.tensor2d([[3, -5]]);
    const [g1, g2] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(layer.apply([a, b]) as tf.Tensor))([h1, h2]);
    expect(g1!.arraySync()).toEqual([[1 + 3 - 1, 1 - 5 + 1]]);
    expect(g2!.arraySync()).toEqual([[1 + 1 + 1, 1 - 2 - 1]]);
    tf.dispose([h1, h2, g1!, g2!]);
  });

  it('round-trips through getConfig and the registry under kd>PairFeatures', () => {
    expect(registerKdLayers()).toContain('kd>PairFeatures');
    const layer = new PairFeatures({ name: 'match' });
    const config = layer.getConfig();
    const rebuilt = tf.serialization.SerializationMap.getMap().classNameMap['kd>PairFeatures']!;
    const copy = rebuilt[1](rebuilt[0], config) as unknown as PairFeatures;
    expect(copy).toBeInstanceOf(PairFeatures);
    expect(copy.name).toBe('match');
  });
});
