/**
 * Patch: tfjs-layers' private `LayersModel.makeTestFunction`, overridden on
 * one model so that `evaluate` and fit's `val_` logs of a model with several
 * outputs line up with its `metricsNames` (tensorflow/tfjs#5941).
 *
 * tfjs-layers' test function pushes the running total of the loss after
 * *each* output's loss, so it returns one value per extra output more than
 * there are names, and every `val_` key is shifted (`val_loss` gets the first
 * output's loss alone, `val_hard_acc` a loss). The override keeps only the
 * final total. A tfjs that returns the right count is left alone.
 *
 * Checked against tfjs-layers 4.22.0 (installed): source read
 * (`dist/engine/training.js`: `makeTestFunction` sets `this.testFunction`,
 * which `evaluate` and `fit`'s validation call right after), behaviour tested
 * in test/compat/layersModelTestFunction.test.ts.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ensureChecked, internalsChanged, type TfjsPatch } from './patch.js';

/** The patch, for {@link checkTfjsCompat}. */
export const layersModelTestFunctionPatch: TfjsPatch = {
  id: 'layers.makeTestFunction',
  member: 'LayersModel.prototype.makeTestFunction (sets LayersModel.testFunction)',
  packageName: '@tensorflow/tfjs-layers',
  installedVersion: () => tfl.version_layers,
  checkedAgainst: 'tfjs-layers 4.22.0 (source read, behaviour tested)',
  reason: 'models made by withDistillationHead score evaluate and val_ logs right despite tensorflow/tfjs#5941',
  check() {
    const make = (tfl.LayersModel.prototype as unknown as Record<string, unknown>)['makeTestFunction'];
    if (typeof make !== 'function') throw internalsChanged(layersModelTestFunctionPatch, typeof make);
  },
};

/** The private members of `LayersModel` the override reads and writes. */
interface TestFunctionInternals {
  makeTestFunction: () => void;
  testFunction?: (data: tf.Tensor[]) => tf.Scalar[];
  metricsNames?: string[];
}

/**
 * Makes `model`'s `evaluate` and validation logs return one value per
 * `metricsNames` entry, the loss first, when tfjs-layers returns more
 * (tensorflow/tfjs#5941). Patches this model only.
 *
 * @param model - A compiled or not yet compiled `tf.LayersModel`, typically with several outputs.
 * @throws {@link KdBackendError} (`TFJS_INTERNALS_CHANGED`) when `makeTestFunction` is gone, or, at
 *   evaluation time, when it no longer sets `testFunction`.
 */
export function alignMultiOutputTestFunction(model: tfl.LayersModel): void {
  ensureChecked(layersModelTestFunctionPatch);
  const internals = model as unknown as TestFunctionInternals;
  const make = internals.makeTestFunction;
  internals.makeTestFunction = () => {
    make.call(model);
    const test = internals.testFunction;
    if (typeof test !== 'function') throw internalsChanged(layersModelTestFunctionPatch, `no longer setting testFunction (${typeof test})`);
    internals.testFunction = (data) => {
      const values = test(data);
      const extra = values.length - (internals.metricsNames?.length ?? values.length);
      if (extra <= 0) return values;
      // values: [l0, l0 + l1, ...metrics]; the last running total is the loss.
      tf.dispose(values.slice(0, extra));
      return values.slice(extra);
    };
  };
}
