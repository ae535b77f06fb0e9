/**
 * `MaskedGlobalMaxPooling1D`: a max over time that skips padded steps.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdShapeError } from '../errors.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Counter for default layer names ('kd>' is not valid in a layer or weight name). */
let unnamedLayers = 0;

/**
 * Max over the time axis of `[batch, time, features]`, over the steps the
 * incoming mask keeps only. tfjs's `GlobalMaxPooling1D` ignores the mask, so a
 * padded sentence pools over its padding too and gets other features than the
 * same sentence unpadded; this layer does not. A row whose steps are all
 * masked (an empty sentence) pools to zeros. Without a mask it is an ordinary
 * global max pool. The output carries no mask.
 *
 * Gradient: to the maximum (to every step that ties for it), as tfjs's `max`.
 *
 * Registered as `kd>MaskedGlobalMaxPooling1D` by {@link registerKdLayers}.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { MaskedGlobalMaxPooling1D, bidirectionalFastLstm } from 'kd-ts/layers';
 *
 * const tokens = tfl.input({ shape: [null], dtype: 'int32' });
 * const embedded = tfl.layers.embedding({ inputDim: 5000, outputDim: 64, maskZero: true }).apply(tokens);
 * const states = bidirectionalFastLstm({ units: 32, returnSequences: true }).apply(embedded);
 * const pooled = new MaskedGlobalMaxPooling1D().apply(states) as tfl.SymbolicTensor; // [batch, 64]
 * ```
 */
export class MaskedGlobalMaxPooling1D extends tfl.layers.Layer {
  /** Namespaced class name under which tfjs serializes the layer. */
  static className = 'kd>MaskedGlobalMaxPooling1D';

  /**
   * @param args - tfjs layer options (`name`, `trainable`...); the layer has no weights.
   */
  constructor(args: LayerArgs = {}) {
    super({ ...args, name: args.name ?? `masked_global_max_pooling1d_${++unnamedLayers}` });
    this.supportsMasking = true;
    this.inputSpec = [new tfl.InputSpec({ ndim: 3 })];
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    if (shape.length !== 3) {
      throw new KdShapeError(
        'RANK_MISMATCH',
        `MaskedGlobalMaxPooling1D expects [batch, time, features], got [${shape.join(', ')}]: ` +
          'put it after a layer that returns sequences (returnSequences: true)',
      );
    }
    return [shape[0] ?? null, shape[2] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor3D;
      const maskArg = kwargs['mask'] as tf.Tensor | tf.Tensor[] | null | undefined;
      const mask = Array.isArray(maskArg) ? (maskArg[0] ?? null) : (maskArg ?? null);
      if (mask === null) return tf.max(x, 1);
      const keep = tf.expandDims(tf.cast(mask, 'bool'), 2); // [batch, time, 1]
      // −∞ at padded steps never wins the max; rows with no kept step come out −∞ and are set to 0.
      const pooled = tf.max(tf.where(keep, x, tf.fill(x.shape, -Infinity)), 1);
      const anyKept = tf.any(keep, 1); // [batch, 1]
      return tf.where(anyKept, pooled, tf.zerosLike(pooled));
    });
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], _mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    // The pooled output has no time axis, hence no mask.
    return null as unknown as tf.Tensor;
  }
}
