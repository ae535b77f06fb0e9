import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * A trainable linear map from the student's feature width to the teacher's
 * (FitNets' regressor, Romero et al. 2015 §2.2, linear as in TextBrewer): a
 * Dense layer for `[batch, units]` and `[batch, time, units]`, a 1×1
 * convolution for `[batch, h, w, channels]`. It lives in its own small model,
 * never in the student: the student's layers, parameter count and saved
 * files are unchanged.
 * @internal
 */
export interface Projection {
  /** Its trainable variables (kernel, bias). */
  readonly variables: readonly tf.Variable[];
  /** The model holding the map (for saving and restoring its weights). */
  readonly model: tfl.LayersModel;
  /** Projects student features (differentiable with respect to both). */
  apply(features: tf.Tensor): tf.Tensor;
  dispose(): void;
}

/** Builds the projection for student features of shape `studentShape` to `teacherWidth`. @internal */
export function buildProjection(studentShape: tfl.Shape, teacherWidth: number, index: number): Projection {
  const inputShape = studentShape.slice(1) as number[];
  const name = `kd_feature_projection_${index}`;
  const layer =
    studentShape.length === 4
      ? tfl.layers.conv2d({ filters: teacherWidth, kernelSize: 1, inputShape, name: `${name}_conv1x1` })
      : tfl.layers.dense({ units: teacherWidth, inputShape, name: `${name}_dense` });
  const model = tfl.sequential({ layers: [layer], name });
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return {
    variables,
    model,
    apply: (features) => model.apply(features) as tf.Tensor,
    dispose: () => model.dispose(),
  };
}
