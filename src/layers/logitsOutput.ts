import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/**
 * An identity layer without weights: gives the student's logits a second,
 * distinct output tensor. tfjs-layers rejects a model listing the same output
 * twice, and a Dense with a frozen identity kernel would cost a C×C product
 * per batch; this costs one copy.
 *
 * Used by `withDistillationHead`; registered as `kd>LogitsOutput` by
 * `registerKdLayers`, so a saved wrapped model loads too (the student is what
 * you save).
 * @internal
 */
export class LogitsOutput extends tfl.layers.Layer {
  /** Namespaced class name under which tfjs serializes the layer. */
  static className = 'kd>LogitsOutput';

  constructor(args: LayerArgs = {}) {
    super(args);
    this.trainable = false;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return inputShape as tfl.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    // A new tensor, not the input itself: tfjs's executor disposes
    // intermediates by identity, and the logits feed both outputs.
    return tf.clone(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}
