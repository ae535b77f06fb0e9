import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError } from '../errors.js';

/** Optimizer names `Distiller.compile` accepts, with tfjs's default learning rates. */
export type OptimizerName = 'adam' | 'sgd' | 'rmsprop' | 'adagrad';

/**
 * The optimizer of a compile call: a tfjs optimizer as it is, a name as a
 * new tfjs optimizer with tfjs's default learning rate.
 * @internal
 */
export function makeOptimizer(optimizer: tf.Optimizer | OptimizerName): tf.Optimizer {
  if (optimizer instanceof tf.Optimizer) return optimizer;
  switch (optimizer) {
    case 'adam':
      return tf.train.adam();
    case 'sgd':
      return tf.train.sgd(0.01);
    case 'rmsprop':
      return tf.train.rmsprop(0.001);
    case 'adagrad':
      return tf.train.adagrad(0.01);
    default:
      throw new KdConfigError(
        'INVALID_OPTION',
        `unknown optimizer ${String(optimizer)}: pass a tf.Optimizer (e.g. tf.train.adam(1e-3)) or 'adam', 'sgd', 'rmsprop', 'adagrad'`,
      );
  }
}
