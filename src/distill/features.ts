import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, KdShapeError } from '../errors.js';
import { featureLoss, FEATURE_LOSS_KINDS, type FeatureLossKind } from '../losses/featureLosses.js';
import { orderInputs, type ModelInputs } from '../inputs/modelInputs.js';
import { isLayersModel, type TeacherLike } from '../teachers/teacher.js';
import { layerMaskFn, type LayerMaskFn } from './featuresMask.js';
import { buildProjection, type Projection } from './featuresProjection.js';

/**
 * One intermediate-layer term of `Distiller.compile({ features })`: the
 * student layer's output is pulled toward the teacher layer's.
 */
export interface FeatureSpec {
  /** The teacher layer, named as in `teacher.getLayer(name)`. */
  teacherLayer: string;
  /** The student layer, named as in `student.getLayer(name)`. */
  studentLayer: string;
  /** How the two outputs are compared (default `'mse'`); see {@link FeatureLossKind}. */
  loss?: FeatureLossKind;
  /**
   * The term's weight in the total loss (default 1), a number or a schedule
   * `({ epoch, step, epochs, stepsPerEpoch }) => number` evaluated per step.
   */
  weight?: number | ((at: { epoch: number; step: number; epochs: number; stepsPerEpoch: number | null }) => number);
  /**
   * `'auto'` (default): a trainable linear map from the student's width to the
   * teacher's (Dense for `[batch, units]` and `[batch, time, units]`, a 1×1
   * convolution for `[batch, h, w, channels]`) when the widths differ;
   * `'linear'`: always; `'none'`: never (the widths must then match).
   * `'attention'` takes no projection. Projections train with the student
   * but are never part of it.
   */
  projection?: 'auto' | 'linear' | 'none';
}

/** A {@link FeatureSpec} with its defaults filled in. @internal */
export interface ResolvedFeature {
  readonly teacherLayer: string;
  readonly studentLayer: string;
  readonly loss: FeatureLossKind;
  readonly weight: NonNullable<FeatureSpec['weight']>;
  readonly projection: Projection | null;
}

/** The teacher's features of one batch, made outside the gradient tape; owned by the caller. */
export interface TeacherFeatures {
  /** One tensor per feature term, in `features` order. */
  readonly features: readonly tf.Tensor[];
  /** The teacher layer's padding mask per term (`[batch, time]`), or null. */
  readonly masks: readonly (tf.Tensor | null)[];
}

/**
 * Everything feature distillation adds to a run: a teacher model with the
 * logits and the named layers' outputs (one pass per batch), a student model
 * with extra outputs over the student's own layers (no new weights), and the
 * projections. Made by {@link buildFeatureDistillation}. @internal
 */
export interface FeatureDistillation {
  readonly features: readonly ResolvedFeature[];
  /** The trainable variables of every projection, in `features` order (apart from the student's). */
  readonly projectionVariables: readonly tf.Variable[];
  /** Runs the teacher once, in inference mode: its logits (first output) and features. */
  runTeacher(inputs: ModelInputs): { logits: tf.Tensor } & TeacherFeatures;
  /** Runs the student once: its logits, and each term's student features (projected) and mask. */
  runStudent(inputs: ModelInputs, training: boolean): { logits: tf.Tensor; features: tf.Tensor[]; masks: (tf.Tensor | null)[] };
  /** Σ weight_j · feature_j as a scalar; `weights` are the terms' current (scheduled) weights. */
  loss(student: { features: tf.Tensor[]; masks: (tf.Tensor | null)[] }, teacher: TeacherFeatures, weights: readonly number[]): tf.Scalar;
  /** Frees the projections' weights. */
  dispose(): void;
}

/** Options of {@link buildFeatureDistillation}. @internal */
export interface FeatureDistillationOptions {
  /** The teacher as given to the Distiller (must be a LayersModel). */
  teacher: TeacherLike;
  /** The student (built). */
  student: tfl.LayersModel;
  /** The terms. */
  features: readonly FeatureSpec[];
}

/**
 * Checks the `features` of a compile call and builds what runs them. Every
 * check happens here, before training: a bad name, shape or option is a typed
 * error at `compile`, never mid-run.
 * @internal
 */
export function buildFeatureDistillation(options: FeatureDistillationOptions): FeatureDistillation {
  const { teacher, student } = options;
  if (!isLayersModel(teacher)) {
    throw new KdConfigError(
      'INVALID_TEACHER',
      'feature distillation reads the teacher\'s intermediate layers, so the teacher must be a tf.LayersModel ' +
        '(sequential or functional); functions, GraphModels, ensembles and caches give logits only: ' +
        'pass the LayersModel itself, or drop `features`',
    );
  }
  if (teacher.outputs.length !== 1) {
    throw new KdConfigError(
      'INVALID_TEACHER',
      `the teacher has ${teacher.outputs.length} outputs: feature distillation needs a teacher whose single output is the logits`,
    );
  }
  if (options.features.length === 0) {
    throw new KdConfigError('INVALID_OPTION', 'features is empty: give at least one { teacherLayer, studentLayer }, or leave it out');
  }
  const resolved: ResolvedFeature[] = [];
  const teacherOutputs: tfl.SymbolicTensor[] = [];
  const studentOutputs: tfl.SymbolicTensor[] = [];
  const teacherMasks: (LayerMaskFn | undefined)[] = [];
  const studentMasks: (LayerMaskFn | undefined)[] = [];
  try {
    options.features.forEach((spec, index) => {
      const teacherLayer = findLayer(teacher, spec?.teacherLayer, 'teacher', index);
      const studentLayer = findLayer(student, spec?.studentLayer, 'student', index);
      const loss = spec.loss ?? 'mse';
      if (!FEATURE_LOSS_KINDS.includes(loss)) {
        throw new KdConfigError(
          'INVALID_OPTION',
          `features[${index}].loss is ${JSON.stringify(loss)}: use ${FEATURE_LOSS_KINDS.map((k) => `'${k}'`).join(', ')}`,
        );
      }
      const weight = spec.weight ?? 1;
      // A schedule is evaluated per step (featureWeightsAt), and checked there.
      if (typeof weight !== 'function' && (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0)) {
        throw new KdConfigError('INVALID_OPTION', `features[${index}].weight is ${String(weight)}: use a finite number >= 0`);
      }
      const projectionKind = spec.projection ?? 'auto';
      if (!['auto', 'linear', 'none'].includes(projectionKind)) {
        throw new KdConfigError('INVALID_OPTION', `features[${index}].projection is ${JSON.stringify(projectionKind)}: use 'auto', 'linear' or 'none'`);
      }
      const t = teacherLayer.output as tfl.SymbolicTensor;
      const s = studentLayer.output as tfl.SymbolicTensor;
      const needsProjection = checkShapes(s.shape, t.shape, loss, projectionKind, spec, index);
      resolved.push({
        teacherLayer: spec.teacherLayer,
        studentLayer: spec.studentLayer,
        loss,
        weight,
        projection: needsProjection ? buildProjection(s.shape, t.shape[t.shape.length - 1]!, index) : null,
      });
      teacherOutputs.push(t);
      studentOutputs.push(s);
      teacherMasks.push(t.shape.length === 3 ? layerMaskFn(teacher, teacherLayer) : undefined);
      studentMasks.push(s.shape.length === 3 ? layerMaskFn(student, studentLayer) : undefined);
    });
  } catch (e) {
    for (const r of resolved) r.projection?.dispose();
    throw e;
  }

  const teacherModel = multiOutputModel(teacher, teacherOutputs);
  const studentModel = multiOutputModel(student, studentOutputs);
  const projectionVariables = resolved.flatMap((r) => r.projection?.variables ?? []);

  const masksOf = (fns: (LayerMaskFn | undefined)[], model: tfl.LayersModel, inputs: ModelInputs) => {
    const ordered = orderInputs(model, inputs);
    const list = Array.isArray(ordered) ? ordered : [ordered];
    return fns.map((fn) => (fn === undefined ? null : fn(list)));
  };

  return {
    features: resolved,
    projectionVariables,
    runTeacher(inputs) {
      const outputs = tf.tidy(() => teacherModel.run(orderInputs(teacher, inputs), false));
      const masks = masksOf(teacherMasks, teacher, inputs);
      return { logits: outputs[0]!, features: outputs.slice(1), masks };
    },
    runStudent(inputs, training) {
      const outputs = studentModel.run(orderInputs(student, inputs), training);
      const features = outputs.slice(1).map((f, i) => resolved[i]!.projection?.apply(f) ?? f);
      return { logits: outputs[0]!, features, masks: masksOf(studentMasks, student, inputs) };
    },
    loss(studentSide, teacherSide, weights) {
      return tf.tidy(() => {
        const terms = resolved.map((r, i) => {
          const mask = combineMasks(studentSide.masks[i] ?? null, teacherSide.masks[i] ?? null);
          const term = featureLoss(studentSide.features[i]!, teacherSide.features[i]!, {
            kind: r.loss,
            ...(mask === null ? {} : { mask }),
          });
          const weight = weights[i] ?? 1;
          return weight === 1 ? term : (tf.mul(term, weight) as tf.Scalar);
        });
        return (terms.length === 1 ? terms[0]! : tf.addN(terms)) as tf.Scalar;
      });
    },
    dispose() {
      for (const r of resolved) r.projection?.dispose();
    },
  };
}

/** Constant weights of the terms (schedules are evaluated by {@link featureWeightsAt}). @internal */
export function constantFeatureWeights(features: readonly ResolvedFeature[]): number[] {
  return features.map((f) => (typeof f.weight === 'number' ? f.weight : Number.NaN));
}

/**
 * The terms' weights at one step: constants as they are, schedules evaluated
 * at `at`; a value that is not a finite number >= 0 is the same typed error
 * as a bad constant, naming the epoch and the step.
 * @internal
 */
export function featureWeightsAt(
  features: readonly ResolvedFeature[],
  at: { epoch: number; step: number; epochs: number; stepsPerEpoch: number | null },
): number[] {
  return features.map((f, index) => {
    const value = typeof f.weight === 'number' ? f.weight : f.weight(at);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new KdConfigError(
        'INVALID_OPTION',
        `features[${index}].weight's schedule returned ${String(value)} at epoch ${at.epoch}, step ${at.step}: ` +
          'a feature weight must be a finite number >= 0',
      );
    }
    return value;
  });
}

/**
 * A model over `base`'s own layers whose outputs are `base`'s output followed
 * by `extra` (duplicates run once): no new weights, one forward pass.
 */
function multiOutputModel(base: tfl.LayersModel, extra: tfl.SymbolicTensor[]) {
  const unique: tfl.SymbolicTensor[] = [base.outputs[0]!];
  const index = extra.map((t) => {
    const at = unique.indexOf(t);
    if (at >= 0) return at;
    unique.push(t);
    return unique.length - 1;
  });
  const model = tfl.model({ inputs: base.inputs, outputs: unique });
  return {
    run(inputs: tf.Tensor | tf.Tensor[], training: boolean): tf.Tensor[] {
      const raw = model.apply(inputs, { training }) as tf.Tensor | tf.Tensor[];
      const all = Array.isArray(raw) ? raw : [raw];
      return [all[0]!, ...index.map((i) => all[i]!)];
    },
  };
}

function combineMasks(a: tf.Tensor | null, b: tf.Tensor | null): tf.Tensor | null {
  if (a === null) return b;
  if (b === null) return a;
  return tf.mul(a, b);
}

function findLayer(model: tfl.LayersModel, name: unknown, side: 'teacher' | 'student', index: number): tfl.layers.Layer {
  const key = side === 'teacher' ? 'teacherLayer' : 'studentLayer';
  const layer = typeof name === 'string' ? model.layers.find((l) => l.name === name) : undefined;
  if (layer === undefined) {
    const nested = typeof name === 'string' ? findNested(model, name) : undefined;
    if (nested !== undefined) {
      throw new KdConfigError(
        'UNSUPPORTED_FEATURE_LAYER',
        `features[${index}].${key} "${String(name)}" is inside the nested model "${nested}" of the ${side}: ` +
          `feature distillation reads layers of the ${side} itself; rebuild the ${side} as one functional model, or name a top-level layer`,
      );
    }
    throw new KdConfigError(
      'UNKNOWN_LAYER',
      `features[${index}].${key} is ${JSON.stringify(name)} but the ${side} has no such layer: ` +
        `its layers are ${model.layers.map((l) => `"${l.name}"`).join(', ')}`,
    );
  }
  if (layer.inboundNodes.length !== 1) {
    throw new KdConfigError(
      'UNSUPPORTED_FEATURE_LAYER',
      `features[${index}].${key} "${layer.name}" is used ${layer.inboundNodes.length} times in the ${side} (a shared layer), ` +
        'so its output is ambiguous: name a layer applied once',
    );
  }
  if (layer.getClassName() === 'InputLayer') {
    throw new KdConfigError('UNSUPPORTED_FEATURE_LAYER', `features[${index}].${key} "${layer.name}" is an input: name a layer that computes something`);
  }
  if (Array.isArray(layer.output)) {
    throw new KdConfigError(
      'UNSUPPORTED_FEATURE_LAYER',
      `features[${index}].${key} "${layer.name}" has ${layer.output.length} outputs: name a layer with one output`,
    );
  }
  return layer;
}

function findNested(model: tfl.LayersModel, name: string): string | undefined {
  for (const layer of model.layers) {
    const inner = (layer as unknown as { layers?: tfl.layers.Layer[] }).layers;
    if (Array.isArray(inner)) {
      if (inner.some((l) => l.name === name)) return layer.name;
      const deeper = findNested(layer as unknown as tfl.LayersModel, name);
      if (deeper !== undefined) return `${layer.name}/${deeper}`;
    }
  }
  return undefined;
}

/** Checks a term's shapes against its loss and projection; returns whether a projection is needed. */
function checkShapes(
  student: tfl.Shape,
  teacher: tfl.Shape,
  loss: FeatureLossKind,
  projection: 'auto' | 'linear' | 'none',
  spec: FeatureSpec,
  index: number,
): boolean {
  const describe = `features[${index}] (student "${spec.studentLayer}" [${student.join(', ')}], teacher "${spec.teacherLayer}" [${teacher.join(', ')}])`;
  if (student.length !== teacher.length || student.length < 2 || student.length > 4) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `${describe}: the two outputs must have the same rank, 2 ([batch, units]), 3 ([batch, time, units]) or 4 ` +
        '([batch, h, w, channels]); a projection maps widths, not ranks: pick layers of the same kind',
    );
  }
  const rank = student.length;
  if (loss === 'attention') {
    if (projection === 'linear') {
      throw new KdConfigError(
        'INVALID_OPTION',
        `${describe}: 'attention' compares channel-means of the maps, whatever their channel counts, and takes no projection: ` +
          "leave projection out (or 'none')",
      );
    }
    if (rank !== 4 || student[1] !== teacher[1] || student[2] !== teacher[2]) {
      throw new KdShapeError(
        'FEATURE_SHAPE_MISMATCH',
        `${describe}: 'attention' needs [batch, h, w, channels] maps of equal h and w: pick layers of the same spatial size`,
      );
    }
    return false;
  }
  for (let axis = 1; axis < rank - 1; axis++) {
    const s = student[axis];
    const t = teacher[axis];
    if (s != null && t != null && s !== t) {
      throw new KdShapeError(
        'FEATURE_SHAPE_MISMATCH',
        `${describe}: dimension ${axis} differs (${s} against ${t}); a projection maps the last axis only: ` +
          'pick layers of the same length or spatial size',
      );
    }
  }
  const sw = student[rank - 1];
  const tw = teacher[rank - 1];
  if (sw == null || tw == null) {
    throw new KdShapeError('FEATURE_SHAPE_MISMATCH', `${describe}: the last axis (the width) must be known`);
  }
  if (projection === 'linear') return true;
  if (sw === tw) return false;
  if (projection === 'none') {
    throw new KdShapeError(
      'FEATURE_SHAPE_MISMATCH',
      `${describe}: widths differ (${sw} against ${tw}) and projection is 'none': use projection 'auto' (a trainable ` +
        `linear map ${sw} → ${tw}, never part of the student), or pick layers of the same width`,
    );
  }
  return true;
}
