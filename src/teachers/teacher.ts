import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';
import { orderInputs, type ModelInputs } from '../inputs/modelInputs.js';

/** Context passed to {@link Teacher.predict} on every batch. */
export interface TeacherContext {
  /**
   * The distillation temperature in use. Plain models ignore it; combinations
   * in probability space need it to stay exact (see `EnsembleTeacher`).
   */
  temperature: number;
  /** Example ids of the batch, when the data carries them (`fitDataset` elements with `id`). */
  ids?: tf.Tensor;
}

/**
 * A frozen model that scores a batch. Anything implementing this can teach:
 * kd-ts adapts `tf.LayersModel`s, GraphModel-like objects and plain
 * functions to it with {@link asTeacher}.
 *
 * The returned tensor is owned by the caller, who disposes it.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import type { Teacher } from 'kd-ts';
 *
 * // A teacher whose logits were computed elsewhere, looked up by batch.
 * const fixed: Teacher = {
 *   outputs: 'logits',
 *   predict: (x) => tf.zeros([(x as tf.Tensor).shape[0], 10]),
 * };
 * ```
 */
export interface Teacher {
  /** Scores a batch: `[batch, classes]` logits (or probabilities, see `outputs`). */
  predict(inputs: ModelInputs, context: TeacherContext): tf.Tensor | Promise<tf.Tensor>;
  /** What `predict` returns; `'logits'` when absent. */
  readonly outputs?: TeacherOutputs;
  /**
   * True when the returned logits depend on the context's temperature (e.g.
   * an ensemble averaging probabilities returns `T · log p̄`). Such outputs
   * are exact for softmax at that T but are not logits to match with
   * `kind: 'mse'`, which the Distiller then rejects.
   */
  readonly temperatureDependent?: boolean;
  /**
   * True when the outputs equal the logits only up to a per-row constant
   * (e.g. `log p` of a probability teacher inside a `mean-logits` ensemble):
   * exact for softmax, not for `kind: 'mse'`, which the Distiller then rejects.
   */
  readonly logitsUpToConstant?: boolean;
}

/** Whether a teacher returns logits or probabilities. */
export type TeacherOutputs = 'logits' | 'probs';

/** A function teacher: returns logits (or probabilities with `outputs: 'probs'`). */
export type TeacherFunction = (inputs: ModelInputs) => tf.Tensor | Promise<tf.Tensor>;

/**
 * The parts of a tfjs-converter `GraphModel` that a teacher needs. Use a
 * function teacher for models with several outputs.
 */
export interface GraphModelLike {
  /** Synchronous inference (models without control flow). */
  predict(inputs: ModelInputs, config?: object): tf.Tensor | tf.Tensor[] | tf.NamedTensorMap;
  /** Asynchronous inference (models with control-flow ops). */
  executeAsync?(inputs: ModelInputs, outputs?: string | string[]): Promise<tf.Tensor | tf.Tensor[]>;
}

/** Anything {@link asTeacher} accepts. */
export type TeacherLike = Teacher | tfl.LayersModel | GraphModelLike | TeacherFunction;

/** Options of {@link asTeacher}. */
export interface AsTeacherOptions {
  /**
   * What the model returns. Defaults to `'probs'` for a LayersModel whose
   * last layer applies a softmax, else `'logits'`.
   */
  outputs?: TeacherOutputs;
  /** For GraphModel-like teachers: run `executeAsync` (models with control flow) instead of `predict`. */
  executeAsync?: boolean;
}

/**
 * Adapts a `tf.LayersModel`, a GraphModel-like object, a function or a
 * {@link Teacher} to the {@link Teacher} interface.
 *
 * LayersModels run in inference mode (`training: false`: dropout off,
 * batch-norm statistics frozen), always on the whole batch.
 *
 * @param teacher - The model or function to adapt.
 * @param options - See {@link AsTeacherOptions}.
 * @returns A {@link Teacher}; a `Teacher` passed in is returned as is.
 * @throws {@link KdConfigError} `INVALID_TEACHER` for anything else.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { asTeacher } from 'kd-ts';
 *
 * const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4], activation: 'softmax' })] });
 * const teacher = asTeacher(model); // outputs: 'probs', detected from the softmax
 * ```
 */
export function asTeacher(teacher: TeacherLike, options: AsTeacherOptions = {}): Teacher {
  if (typeof teacher === 'function') {
    const fn = teacher;
    return { outputs: options.outputs ?? 'logits', predict: (inputs) => fn(inputs) };
  }
  if (isLayersModel(teacher)) {
    const model = teacher;
    return {
      outputs: options.outputs ?? (endsWithSoftmax(model) ? 'probs' : 'logits'),
      predict: (inputs) =>
        tf.tidy(() => singleOutput(model.apply(orderInputs(model, inputs), { training: false }) as tf.Tensor)),
    };
  }
  if (teacher !== null && typeof teacher === 'object' && typeof (teacher as Teacher).predict === 'function') {
    const isGraphModel = typeof (teacher as GraphModelLike).executeAsync === 'function' || 'modelVersion' in teacher;
    if (!isGraphModel) {
      const custom = teacher as Teacher;
      return options.outputs === undefined || options.outputs === custom.outputs
        ? custom
        : {
            outputs: options.outputs,
            ...(custom.temperatureDependent === undefined ? {} : { temperatureDependent: custom.temperatureDependent }),
            ...(custom.logitsUpToConstant === undefined ? {} : { logitsUpToConstant: custom.logitsUpToConstant }),
            predict: (inputs, context) => custom.predict(inputs, context),
          };
    }
    const graph = teacher as GraphModelLike;
    return {
      outputs: options.outputs ?? 'logits',
      predict: async (inputs) => {
        const out =
          options.executeAsync && graph.executeAsync ? await graph.executeAsync(inputs) : graph.predict(inputs);
        return singleOutput(out);
      },
    };
  }
  throw new KdConfigError(
    'INVALID_TEACHER',
    'the teacher must be a tf.LayersModel, a GraphModel, a function (x) => logits, or an object with predict(x, ctx)',
  );
}

/** Duck-typed LayersModel check (survives two copies of tfjs-layers). */
export function isLayersModel(value: unknown): value is tfl.LayersModel {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as tfl.LayersModel).apply === 'function' &&
    Array.isArray((value as tfl.LayersModel).layers) &&
    'trainableWeights' in value
  );
}

/** True when the model's last layer ends in a softmax activation. */
export function endsWithSoftmax(model: tfl.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  if (last === undefined) return false;
  if (last.getClassName() === 'Softmax') return true;
  const activation = (last.getConfig() as { activation?: unknown }).activation;
  return activation === 'softmax';
}

function singleOutput(out: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor {
  if (out instanceof tf.Tensor) return out;
  const all = Array.isArray(out) ? out : Object.values(out);
  if (all.length === 1) return all[0]!;
  tf.dispose(all);
  throw new KdConfigError(
    'INVALID_TEACHER',
    `the teacher returned ${all.length} outputs: wrap it in a function that returns the logits tensor alone`,
  );
}
