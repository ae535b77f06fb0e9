/**
 * `PairFeatures`: the siamese matching features of two sentence encodings.
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
 * Concatenates `[h1, h2, h1 ⊙ h2, |h1 − h2|]` along the last axis, for two
 * inputs of shape `[batch, features]`: the output is `[batch, 4·features]`.
 * This is Tang et al.'s (2019, eq. 3) matching function for sentence pairs,
 * after Wang et al.'s siamese BiLSTM. tfjs-layers has no Subtract or Lambda
 * layer, hence a layer of our own. No weights; the output carries no mask.
 *
 * Registered as `kd>PairFeatures` by {@link registerKdLayers}.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { PairFeatures } from 'kd-ts/layers';
 *
 * const a = tfl.input({ shape: [300] });
 * const b = tfl.input({ shape: [300] });
 * const features = new PairFeatures().apply([a, b]) as tfl.SymbolicTensor; // [batch, 1200]
 * ```
 */
export class PairFeatures extends tfl.layers.Layer {
  /** Namespaced class name under which tfjs serializes the layer. */
  static className = 'kd>PairFeatures';

  /**
   * @param args - tfjs layer options (`name`...); the layer has no weights.
   */
  constructor(args: LayerArgs = {}) {
    super({ ...args, name: args.name ?? `pair_features_${++unnamedLayers}` });
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = checkedShape(inputShape);
    const features = shape[shape.length - 1];
    return [...shape.slice(0, -1), features == null ? null : 4 * features];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2) {
        throw new KdShapeError('MISSING_INPUT', 'PairFeatures takes two inputs [h1, h2]: call apply([h1, h2])');
      }
      const [h1, h2] = inputs as [tf.Tensor, tf.Tensor];
      return tf.concat([h1, h2, tf.mul(h1, h2), tf.abs(tf.sub(h1, h2))], -1);
    });
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], _mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    return null as unknown as tf.Tensor;
  }
}

/** The shape of both inputs, checked equal (batch sizes may differ when unknown). */
function checkedShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
  if (!Array.isArray(inputShape[0]) || inputShape.length !== 2) {
    throw new KdShapeError('MISSING_INPUT', 'PairFeatures takes two inputs [h1, h2]: call apply([h1, h2])');
  }
  const [first, second] = inputShape as [tfl.Shape, tfl.Shape];
  const same =
    first.length === second.length &&
    first.every((size, axis) => axis === 0 || size == null || second[axis] == null || size === second[axis]);
  if (!same) {
    throw new KdShapeError(
      'INPUT_SHAPE_MISMATCH',
      `PairFeatures needs two encodings of the same shape, got [${first.join(', ')}] and [${second.join(', ')}]: ` +
        'encode both sentences with the same (shared) encoder',
    );
  }
  return first;
}
