/**
 * Reliance: the full state of a tfjs optimizer, read and written exactly, for
 * checkpoints that resume bit for bit.
 *
 * `getWeights`/`setWeights` carry the iteration count and the slot variables
 * (moments, accumulators) of SGD, Momentum, RMSProp, Adagrad, Adadelta and
 * Adam. Adam also keeps its running β-powers `accBeta1`/`accBeta2` as float32
 * variables multiplied by β at every step; its `setWeights` recomputes them
 * as `pow(beta, iterations + 1)`, which differs from the running product in
 * the last bits after ~20 steps (measured). This module saves and restores
 * those two private fields as they are. Adamax's `getWeights` throws (not
 * implemented in tfjs), so Adamax cannot be checkpointed; neither can an
 * optimizer class kd-ts does not know. `setWeights` also leaves the replaced
 * slot variables undisposed; they are disposed here.
 *
 * Checked against tfjs-core 4.22.0 (installed): source read
 * (`dist/optimizers/*_optimizer.js`, `optimizer.js`), behaviour tested in
 * test/compat/optimizerState.test.ts.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError } from '../errors.js';
import { ensureChecked, internalsChanged, type TfjsPatch } from './patch.js';

/** Optimizer classes (tfjs `getClassName()`) whose state kd-ts can save and restore exactly. */
export const RESUMABLE_OPTIMIZERS: readonly string[] = ['SGD', 'Momentum', 'RMSProp', 'Adagrad', 'Adadelta', 'Adam'];

/** The patch, for {@link checkTfjsCompat}. */
export const optimizerStatePatch: TfjsPatch = {
  id: 'core.AdamOptimizer.accBeta',
  member: 'AdamOptimizer.accBeta1/accBeta2 (private running β-powers)',
  packageName: '@tensorflow/tfjs-core',
  installedVersion: () => tf.version_core,
  checkedAgainst: 'tfjs-core 4.22.0 (source read, behaviour tested)',
  reason: 'checkpoints restore Adam exactly; its setWeights recomputes the β-powers with pow(), which is not bit-exact',
  check() {
    const adam = tf.train.adam(0.001) as unknown as Record<string, unknown>;
    try {
      if (!(adam.accBeta1 instanceof tf.Variable) || !(adam.accBeta2 instanceof tf.Variable)) {
        throw internalsChanged(optimizerStatePatch, `${typeof adam.accBeta1}/${typeof adam.accBeta2}, not tf.Variables`);
      }
    } finally {
      (adam as unknown as tf.Optimizer).dispose();
    }
  },
};

/** An optimizer's state, read by {@link readOptimizerState}; the caller owns (and disposes) the tensors. */
export interface OptimizerState {
  /** tfjs class name, e.g. `'Adam'`. */
  className: string;
  /** Steps applied so far. */
  iterations: number;
  /** Slot variables' values in `getWeights` order (without the iteration counter). */
  slots: Array<{ name: string; tensor: tf.Tensor }>;
  /** Private scalars kept outside `getWeights` (Adam: `accBeta1`, `accBeta2`), as float32 values. */
  scalars: Record<string, number>;
}

/**
 * Throws unless the optimizer's state can be saved and restored exactly.
 *
 * @param optimizer - Any tfjs optimizer.
 * @returns Its class name.
 * @throws {@link KdConfigError} `CHECKPOINT_UNSUPPORTED` for Adamax and unknown optimizer classes.
 */
export function assertResumableOptimizer(optimizer: tf.Optimizer): string {
  const className = optimizer.getClassName();
  if (!RESUMABLE_OPTIMIZERS.includes(className)) {
    throw new KdConfigError(
      'CHECKPOINT_UNSUPPORTED',
      `checkpoints cannot save the state of a ${className} optimizer (tfjs gives no access to it${className === 'Adamax' ? ': its getWeights throws' : ''}): ` +
        `use one of ${RESUMABLE_OPTIMIZERS.join(', ')} (tf.train.adam, sgd, momentum, rmsprop, adagrad, adadelta), or train without checkpoint`,
    );
  }
  if (className === 'Adam') ensureChecked(optimizerStatePatch);
  return className;
}

/**
 * Reads an optimizer's full state as copies (training may go on meanwhile).
 *
 * @param optimizer - A resumable optimizer (see {@link RESUMABLE_OPTIMIZERS}).
 * @returns Its state; dispose `slots` when done.
 * @throws {@link KdConfigError} `CHECKPOINT_UNSUPPORTED` for other optimizers.
 */
export async function readOptimizerState(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const className = assertResumableOptimizer(optimizer);
  const weights = await optimizer.getWeights();
  const [iter, ...slots] = weights;
  const iterations = iter === undefined ? 0 : (await iter.tensor.data())[0]!;
  iter?.tensor.dispose();
  const scalars: Record<string, number> = {};
  if (className === 'Adam') {
    const fields = optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    scalars.accBeta1 = (await fields.accBeta1.data())[0]!;
    scalars.accBeta2 = (await fields.accBeta2.data())[0]!;
  }
  return { className, iterations, slots: slots.map((s) => ({ name: s.name, tensor: tf.clone(s.tensor) })), scalars };
}

/**
 * Writes a state read by {@link readOptimizerState} into an optimizer of the
 * same class and settings; the replaced slot variables are disposed. The
 * given tensors stay the caller's.
 *
 * @param optimizer - The optimizer to restore.
 * @param state - The state to restore.
 * @returns Resolves when restored.
 * @throws {@link KdConfigError} `CHECKPOINT_UNSUPPORTED` for other optimizers, `CHECKPOINT_MISMATCH` for another class.
 */
export async function writeOptimizerState(optimizer: tf.Optimizer, state: OptimizerState): Promise<void> {
  const className = assertResumableOptimizer(optimizer);
  if (className !== state.className) {
    throw new KdConfigError('CHECKPOINT_MISMATCH', `the checkpoint holds a ${state.className} optimizer's state, the run uses ${className}: compile with the optimizer of the saved run`);
  }
  const previous = await optimizer.getWeights();
  const iter = tf.scalar(state.iterations, 'int32');
  // setWeights turns each tensor into a variable sharing its data; clones keep the caller's tensors apart.
  const clones = state.slots.map((s) => ({ name: s.name, tensor: tf.clone(s.tensor) }));
  await optimizer.setWeights([{ name: 'iter', tensor: iter }, ...clones]);
  iter.dispose();
  tf.dispose(clones.map((c) => c.tensor));
  tf.dispose(previous.map((p) => p.tensor));
  if (className === 'Adam') {
    const fields = optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    tf.tidy(() => {
      fields.accBeta1.assign(tf.scalar(state.scalars.accBeta1 ?? 0));
      fields.accBeta2.assign(tf.scalar(state.scalars.accBeta2 ?? 0));
    });
  }
}
