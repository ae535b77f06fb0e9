import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError } from '../errors.js';
import { orderInputs, type ModelInputs } from '../inputs/modelInputs.js';
import type { TopKLogits } from '../losses/topK.js';
import { outputSpecOf, type TeacherOutputs, type TeacherOutputSpec } from './outputSpec.js';

// Defined with the rest of the output vocabulary in outputSpec.ts; re-exported for the teacher adapters.
export type { TeacherOutputs, TeacherOutputSpec } from './outputSpec.js';

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
 * What a teacher's `predict` may return: `[batch, classes]` logits (or
 * probabilities), or top-k outputs (`TopKLogits`: the k largest logits of
 * each row and their class ids), as a top-k {@link TeacherCache} serves them.
 */
export type TeacherPrediction = tf.Tensor | TopKLogits;

/**
 * A frozen model that scores a batch. Anything implementing this can teach:
 * kd-ts adapts `tf.LayersModel`s, GraphModel-like objects and plain
 * functions to it with {@link asTeacher}.
 *
 * The returned tensor is owned by the caller, who disposes it. `Output` is
 * what `predict` returns: tensors by default; `Teacher<TeacherPrediction>`
 * for a teacher that may return top-k outputs (a top-k `TeacherCache`).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import type { Teacher } from 'kd-ts';
 *
 * // A teacher whose logits were computed elsewhere, looked up by batch.
 * const fixed: Teacher = {
 *   outputs: 'logits',
 *   predict: (x) => tf.zeros([(x as tf.Tensor).shape[0]!, 10]),
 * };
 * ```
 */
export interface Teacher<Output extends TeacherPrediction = tf.Tensor> {
  /** Scores a batch: `[batch, classes]` logits (or probabilities, see `outputs`), or top-k outputs. */
  predict(inputs: ModelInputs, context: TeacherContext): Output | Promise<Output>;
  /**
   * What `predict` returns: `'logits'` (the default when absent) or
   * `'probs'`, or a full {@link TeacherOutputSpec} when the outputs are
   * logits only up to a per-row constant, or depend on the temperature
   * (e.g. an ensemble averaging probabilities returns `T · log p̄`): exact for
   * a softmax at that T, not logits to match with `kind: 'mse'`, which the
   * Distiller then rejects. Read it with `teacherOutputSpec(teacher)`.
   */
  readonly outputs?: TeacherOutputs | TeacherOutputSpec;
  /**
   * The LayersModels this teacher runs: the Distiller refuses a student that
   * shares weights with any of them, and `compressionReport` sums their
   * sizes. Teachers made by kd-ts list theirs; leave it out when the teacher
   * runs no LayersModel (its size is then unknown).
   */
  models?(): TeacherModels;
}

/** The LayersModels a teacher runs, as {@link Teacher.models} lists them. */
export interface TeacherModels {
  /** Every LayersModel the teacher runs. */
  readonly models: readonly tfl.LayersModel[];
  /**
   * False when the teacher also runs something else (a function, a
   * GraphModel), whose weights and size cannot be known (default true).
   */
  readonly complete?: boolean;
}

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

/** Anything {@link asTeacher} accepts: a {@link Teacher} may return top-k outputs. */
export type TeacherLike = Teacher<TeacherPrediction> | tfl.LayersModel | GraphModelLike | TeacherFunction;

/** Options of {@link asTeacher}. */
export interface AsTeacherOptions {
  /**
   * What the model returns. Defaults to `'probs'` for a LayersModel whose
   * last layer applies a softmax, else `'logits'`. For a {@link Teacher},
   * `'logits'` or `'probs'` overrides the form and keeps the rest of its
   * {@link TeacherOutputSpec} (e.g. temperature dependence).
   */
  outputs?: TeacherOutputs | TeacherOutputSpec;
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
      models: () => ({ models: [model] }),
    };
  }
  if (teacher !== null && typeof teacher === 'object' && typeof (teacher as Teacher).predict === 'function') {
    const isGraphModel = typeof (teacher as GraphModelLike).executeAsync === 'function' || 'modelVersion' in teacher;
    if (!isGraphModel) {
      const custom = teacher as Teacher;
      if (options.outputs === undefined) return custom;
      const declared = outputSpecOf(custom.outputs);
      const outputs =
        typeof options.outputs === 'object' ? outputSpecOf(options.outputs) : { ...declared, form: outputSpecOf(options.outputs).form };
      if (outputs.form === declared.form && outputs.exactness === declared.exactness) return custom;
      const models = custom.models;
      return {
        outputs,
        predict: (inputs, context) => custom.predict(inputs, context),
        ...(models === undefined ? {} : { models: () => models.call(custom) }),
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

/**
 * The distinct LayersModels a teacher runs (a LayersModel itself, or what a
 * {@link Teacher} lists with `models()`), and whether that is all it runs.
 * A teacher that lists none is unknown: `complete` false.
 * @internal
 */
export function teacherModels(teacher: TeacherLike): { models: tfl.LayersModel[]; complete: boolean } {
  if (isLayersModel(teacher)) return { models: [teacher], complete: true };
  const listed =
    teacher !== null && typeof teacher === 'object' && typeof (teacher as Teacher).models === 'function'
      ? (teacher as Teacher).models!()
      : undefined;
  if (listed === undefined) return { models: [], complete: false };
  return { models: [...new Set(listed.models)], complete: listed.complete ?? true };
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
