import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { asTeacher, KdConfigError, type GraphModelLike } from '../../src/index.js';

const context = { temperature: 2 };

describe('asTeacher', () => {
  it('runs a LayersModel in inference mode (dropout off) and cleans up after itself', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ units: 8, inputShape: [4] }), tfl.layers.dropout({ rate: 0.9 }), tfl.layers.dense({ units: 3 })],
    });
    const teacher = asTeacher(model);
    expect(teacher.outputs).toBe('logits');
    const x = tf.randomNormal([5, 4]);
    const before = tf.memory().numTensors;
    const a = (await teacher.predict(x, context)) as tf.Tensor;
    const b = (await teacher.predict(x, context)) as tf.Tensor;
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    const reference = model.predict(x) as tf.Tensor;
    expect(Array.from(a.dataSync())).toEqual(Array.from(reference.dataSync()));
    tf.dispose([a, b, reference, x]);
  });

  it('detects a softmax output layer as probabilities, and honours an override', () => {
    const dense = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4], activation: 'softmax' })] });
    const layer = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] }), tfl.layers.softmax()] });
    expect(asTeacher(dense).outputs).toBe('probs');
    expect(asTeacher(layer).outputs).toBe('probs');
    expect(asTeacher(dense, { outputs: 'logits' }).outputs).toBe('logits');
  });

  it('adapts sync and async functions', async () => {
    const sync = asTeacher(() => tf.ones([2, 3]));
    const asyncTeacher = asTeacher(async () => tf.zeros([2, 3]), { outputs: 'probs' });
    expect(asyncTeacher.outputs).toBe('probs');
    const s = (await sync.predict(tf.tensor([1]), context)) as tf.Tensor;
    const a = await asyncTeacher.predict(tf.tensor([1]), context);
    expect(s.shape).toEqual([2, 3]);
    expect(a.shape).toEqual([2, 3]);
    tf.dispose([s, a]);
  });

  it('adapts GraphModel-like objects through predict or executeAsync', async () => {
    const calls: string[] = [];
    const graph: GraphModelLike = {
      predict: () => {
        calls.push('predict');
        return tf.ones([2, 3]);
      },
      executeAsync: async () => {
        calls.push('executeAsync');
        return [tf.zeros([2, 3])];
      },
    };
    const viaPredict = await asTeacher(graph).predict(tf.tensor([1]), context);
    const viaExecute = await asTeacher(graph, { executeAsync: true }).predict(tf.tensor([1]), context);
    expect(calls).toEqual(['predict', 'executeAsync']);
    expect(Array.from(viaExecute.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([viaPredict, viaExecute]);
  });

  it('rejects teachers with several outputs, disposing them', async () => {
    const graph: GraphModelLike = { predict: () => [tf.ones([2, 3]), tf.ones([2, 1])], executeAsync: async () => [] };
    const before = tf.memory().numTensors;
    await expect(async () => asTeacher(graph).predict(tf.tensor([1]), context)).rejects.toThrow(/2 outputs/);
    expect(tf.memory().numTensors).toBe(before + 1); // the input tensor made in the call above
  });

  it('passes a Teacher object through and rejects anything else', () => {
    const custom = { outputs: 'logits' as const, predict: () => tf.ones([1, 2]) };
    expect(asTeacher(custom)).toBe(custom);
    expect(() => asTeacher('model' as never)).toThrow(KdConfigError);
    expect(() => asTeacher(null as never)).toThrow(expect.objectContaining({ code: 'INVALID_TEACHER' }));
  });
});
