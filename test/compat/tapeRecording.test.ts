import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients of tfjs-core's ops
import { describe, expect, it } from 'vitest';
import { isTapeRecording, tapeRecordingPatch } from '../../src/compat/tapeRecording.js';
import { KdBackendError } from '../../src/errors.js';

describe('compat: Engine.isTapeOn (tfjs-core)', () => {
  it('is true while a gradient is recorded, false otherwise', () => {
    const seen: boolean[] = [];
    seen.push(isTapeRecording());
    tf.tidy(() => {
      seen.push(isTapeRecording());
      return tf.grad((x: tf.Tensor) => {
        seen.push(isTapeRecording());
        return tf.sum(tf.square(x));
      })(tf.ones([2]));
    });
    const weight = tf.variable(tf.ones([2]));
    tf.train.sgd(0.1).minimize(() => {
      seen.push(isTapeRecording());
      return tf.sum(weight);
    });
    seen.push(isTapeRecording());
    expect(seen).toEqual([false, false, true, true, false]);
    weight.dispose();
  });

  it('checks that the engine still has isTapeOn, naming the member and the version', () => {
    expect(() => tapeRecordingPatch.check()).not.toThrow();
    const engine = tf.engine();
    Object.defineProperty(engine, 'isTapeOn', { value: undefined, configurable: true });
    try {
      expect(() => tapeRecordingPatch.check()).toThrow(KdBackendError);
      expect(() => tapeRecordingPatch.check()).toThrow(
        new RegExp(`@tensorflow/tfjs-core ${tf.version_core.replace(/\./g, '\\.')}: Engine\\.isTapeOn`),
      );
    } finally {
      delete (engine as unknown as Record<string, unknown>)['isTapeOn'];
    }
    expect(() => tapeRecordingPatch.check()).not.toThrow();
  });
});
