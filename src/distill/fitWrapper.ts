import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { alignMultiOutputTestFunction } from '../compat/layersModelTestFunction.js';
import { KdConfigError, KdShapeError } from '../errors.js';
import { hardLabelCrossEntropy } from '../losses/crossEntropy.js';
import { distillationLoss, resolveLossConfig, type DistillationKind } from '../losses/distillationLoss.js';
import { isLayersModel } from '../teachers/teacher.js';
import { LogitsOutput } from '../layers/logitsOutput.js';
import { registerKdLayers } from '../layers/register.js';
import { assertStudentHasInputs, assertStudentModel, assertStudentOutputs } from './student.js';

/**
 * Names of the two outputs of a model made by {@link withDistillationHead}:
 * the hard-label output first, the distillation output second. tfjs logs each
 * output's loss as `hard_loss` and `soft_loss`, and per-output metrics with
 * the same prefix.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { DISTILLATION_HEAD_OUTPUTS, compileForDistillation, withDistillationHead } from 'kd-ts/distill';
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const wrapped = withDistillationHead(student);
 * const [hard] = DISTILLATION_HEAD_OUTPUTS; // 'hard'
 * compileForDistillation(wrapped, { optimizer: 'adam', temperature: 4, alpha: 0.1, metrics: { [hard]: 'acc' } });
 * ```
 */
export const DISTILLATION_HEAD_OUTPUTS = ['hard', 'soft'] as const;

/** The loss settings of {@link distillationFitLosses}, as in `Distiller.compile`. */
export interface DistillationFitLossOptions {
  /** Softening temperature T (> 0; required for `kind: 'kl'`, ignored by `'mse'`). */
  temperature?: number;
  /** Weight of the hard-label term in [0, 1] (default 0). */
  alpha?: number;
  /** `'kl'` (Hinton, default), `'reverse-kl'`, `'jsd'`, `'tvd'` or `'mse'` (Tang et al.). */
  kind?: DistillationKind;
  /** `kind: 'jsd'` only: the teacher's weight in the mixture, in (0, 1) (default 0.5). */
  beta?: number;
  /** `kind: 'kl'` only: the teacher logits' k largest entries per row, renormalized (an integer in [1, classes)). */
  topK?: number;
  /** Multiply the divergence term (every kind but 'mse') by T² (default true). */
  scaleByTemperatureSquared?: boolean;
}

/** Options of {@link compileForDistillation}: the loss settings and what tfjs's `compile` takes besides. */
export interface CompileForDistillationOptions extends DistillationFitLossOptions {
  /** A tfjs optimizer (e.g. `tf.train.adam(1e-3)`) or a name tfjs knows (`'adam'`, `'sgd'`, ...). */
  optimizer: tf.Optimizer | string;
  /** tfjs metrics, passed to `compile` as is, e.g. `{ hard: 'acc' }` (logged as `hard_acc`). */
  metrics?: tfl.ModelCompileArgs['metrics'];
}

/** A tfjs loss function: `(targets, outputs) => loss`. */
export type FitLoss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/**
 * Wraps a student for distillation with plain tfjs `model.fit`: a model that
 * shares the student's layers and weights and has two outputs, both the
 * student's logits (`hard`, then `soft`, see {@link DISTILLATION_HEAD_OUTPUTS}),
 * so `fit` takes the labels and the teacher's logits as two targets:
 * `wrapped.fit(x, [oneHotLabels, teacherLogits], { epochs, batchSize })`.
 *
 * tfjs's `fit` rejects targets packed into one tensor (their width must match
 * the output's), hence two outputs; the second is a copy made by a weightless
 * layer, because tfjs rejects the same output listed twice. The student's
 * weights are the only trainable ones. Training the wrapped model trains the
 * student in place: save the **student** (`saveStudent(student, dir)` or
 * `student.save(...)`), not the wrapped model.
 *
 * Targets: **labels one-hot**, `[rows, classes]` (`tf.oneHot(ids, classes)`):
 * `fit` checks every target's width against its output's, so class ids are
 * rejected. Teacher logits `[rows, classes]`, e.g. from {@link computeTeacherLogits}.
 * With `alpha: 0` the labels are ignored (pass any `[rows, classes]` tensor,
 * the teacher logits again for instance); with `alpha: 1` the teacher logits are.
 * Validation data takes the same shape: `validationData: [xVal, [oneHotVal, teacherLogitsVal]]`.
 * The wrapped model's `evaluate` and `val_` logs are corrected for a tfjs 4.x
 * bug that shifts them for models with several outputs (tensorflow/tfjs#5941).
 *
 * What this route cannot do (use the `Distiller` for these): schedules
 * (temperature, alpha and beta are numbers fixed into the loss functions at
 * compile, as tfjs builds them once; a learning-rate schedule is a tfjs
 * callback's job there, e.g. `model.optimizer.setLearningRate` in
 * `onEpochBegin` for SGD), `clipNorm` (tfjs's `fit` offers no hook between the
 * gradients and the update), feature terms, top-k teacher outputs given as
 * `{ ids, logits }` (fit's targets must be `[rows, classes]` tensors; `topK`
 * with full teacher logits works) and token-level logits. Every `kind`, `beta`
 * and `topK` work.
 *
 * @param student - A built, single-output LayersModel that outputs logits (no softmax).
 * @param compile - When given, the wrapped model is compiled with {@link compileForDistillation}.
 * @returns The two-output model.
 * @throws {@link KdConfigError} `INVALID_STUDENT` for an unbuilt or multi-output student, or one with a
 *   layer named `hard` or `soft`; `SOFTMAX_STUDENT` for a student ending in softmax; the errors of
 *   {@link compileForDistillation}.
 * @throws {@link KdShapeError} `RANK_MISMATCH` when the student's output is not `[batch, classes]`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { computeTeacherLogits, withDistillationHead } from 'kd-ts';
 *
 * const teacher = tfl.sequential({ layers: [
 *   tfl.layers.dense({ units: 64, activation: 'relu', inputShape: [784] }),
 *   tfl.layers.dense({ units: 10 }),
 * ] });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const x = tf.randomNormal([512, 784]);
 * const labels = tf.randomUniform([512], 0, 10, 'int32');
 * const teacherLogits = await computeTeacherLogits(teacher, x, { batchSize: 256 });
 * const wrapped = withDistillationHead(student, { optimizer: tf.train.adam(1e-2), temperature: 4, alpha: 0.1 });
 * await wrapped.fit(x, [tf.oneHot(labels, 10), teacherLogits], { epochs: 5, batchSize: 64 });
 * await student.save('indexeddb://student'); // the student, trained; not the wrapped model
 * ```
 */
export function withDistillationHead(student: tfl.LayersModel, compile?: CompileForDistillationOptions): tfl.LayersModel {
  assertDistillableStudent(student);
  registerKdLayers();
  const logits = student.outputs[0]!;
  const [hardName, softName] = DISTILLATION_HEAD_OUTPUTS;
  const hard = new LogitsOutput({ name: hardName }).apply(logits) as tfl.SymbolicTensor;
  const soft = new LogitsOutput({ name: softName }).apply(logits) as tfl.SymbolicTensor;
  const wrapped = tfl.model({ inputs: student.inputs, outputs: [hard, soft], name: `${student.name}_distillation` });
  // tfjs-layers mislabels the val_ logs of models with several outputs (tensorflow/tfjs#5941).
  alignMultiOutputTestFunction(wrapped);
  if (compile !== undefined) compileForDistillation(wrapped, compile);
  return wrapped;
}

/**
 * Compiles a model made by {@link withDistillationHead} with the losses of
 * {@link distillationFitLosses}. Its `fit` then minimizes exactly what the
 * `Distiller` does, `alpha · CE(student, labels) + (1 − alpha) · distillation`
 * plus the student's regularization penalties, and logs `loss` (that sum),
 * `hard_loss` (`alpha · CE`) and `soft_loss` (`(1 − alpha) · distillation`),
 * each already weighted (the Distiller's `student_loss` and
 * `distillation_loss` are the unweighted terms).
 *
 * The weights live inside the loss functions because tfjs-layers 4.x has no
 * `lossWeights` in `compile` (Keras does).
 *
 * @param wrapped - A model from {@link withDistillationHead}.
 * @param options - Optimizer, temperature, alpha, kind, and optional tfjs metrics.
 * @throws {@link KdConfigError} `INVALID_TEMPERATURE`, `INVALID_ALPHA`, `INVALID_OPTION` for bad settings;
 *   `INVALID_STUDENT` for a model not made by {@link withDistillationHead}.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { compileForDistillation, withDistillationHead } from 'kd-ts/distill';
 *
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const x = tf.randomNormal([256, 784]);
 * const oneHotLabels = tf.oneHot(tf.randomUniform([256], 0, 10, 'int32'), 10);
 * const teacherLogits = tf.randomNormal([256, 10]); // e.g. from computeTeacherLogits
 * const wrapped = withDistillationHead(student);
 * compileForDistillation(wrapped, { optimizer: tf.train.adam(1e-3), temperature: 2, alpha: 0.5, metrics: { hard: 'acc' } });
 * const history = await wrapped.fit(x, [oneHotLabels, teacherLogits], { epochs: 3 });
 * console.log(history.history.loss, history.history.hard_acc);
 * ```
 */
export function compileForDistillation(wrapped: tfl.LayersModel, options: CompileForDistillationOptions): void {
  const names = isLayersModel(wrapped) ? wrapped.outputNames : [];
  if (names.length !== 2 || names[0] !== DISTILLATION_HEAD_OUTPUTS[0] || names[1] !== DISTILLATION_HEAD_OUTPUTS[1]) {
    throw new KdConfigError(
      'INVALID_STUDENT',
      `compileForDistillation needs the model withDistillationHead(student) returns (outputs "hard" and "soft"), ` +
        `got outputs ${names.map((n) => `"${n}"`).join(', ') || 'none'}: wrap the student first`,
    );
  }
  const losses = distillationFitLosses(options);
  wrapped.compile({
    optimizer: options.optimizer,
    loss: losses,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
}

/**
 * The two loss functions for a model made by {@link withDistillationHead},
 * for users who call `compile` themselves: `loss: distillationFitLosses(...)`.
 *
 * - `hard(labels, logits)`: `alpha · CE(softmax(logits), labels)` at T = 1,
 *   labels one-hot (or any distributions), batch mean; a constant 0 when `alpha` is 0.
 * - `soft(teacherLogits, logits)`: `(1 − alpha) ·` {@link distillationLoss}
 *   (KL at T × T², or the logit MSE), batch mean; a constant 0 when `alpha` is 1.
 *
 * Each returns the batch mean, as the `Distiller` computes it, so fit's
 * `classWeight` would not weight examples: leave it unset.
 *
 * @param options - Temperature, alpha, kind, as in `Distiller.compile`.
 * @returns `[hard, soft]`, in the order of the wrapped model's outputs.
 * @throws {@link KdConfigError} `INVALID_TEMPERATURE`, `INVALID_ALPHA`, `INVALID_BETA`, `INVALID_TOP_K` or `INVALID_OPTION` for bad settings.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { distillationFitLosses, withDistillationHead } from 'kd-ts/distill';
 *
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [784] })] });
 * const wrapped = withDistillationHead(student);
 * wrapped.compile({ optimizer: tf.train.adam(1e-3), loss: distillationFitLosses({ temperature: 4, alpha: 0.1 }) });
 * ```
 */
export function distillationFitLosses(options: DistillationFitLossOptions): [FitLoss, FitLoss] {
  // Validated once, here, with the Distiller's rules; hasLabels: the hard output always has targets.
  const config = resolveLossConfig(options, true);
  const hard: FitLoss = (labels, logits) =>
    tf.tidy(() => {
      if (config.alpha === 0) return tf.scalar(0);
      // The Distiller's hard-label term, batch mean.
      return tf.mul(tf.mean(hardLabelCrossEntropy(logits, tf.cast(labels, 'float32'))), config.alpha);
    });
  const soft: FitLoss = (teacherLogits, logits) =>
    tf.tidy(() => {
      if (config.alpha === 1) return tf.scalar(0);
      const distillation = distillationLoss(logits, teacherLogits, {
        temperature: config.temperature,
        kind: config.kind,
        ...(config.kind === 'jsd' ? { beta: config.beta } : {}),
        ...(config.topK === undefined ? {} : { topK: config.topK }),
        scaleByTemperatureSquared: config.scaleByTemperatureSquared,
        // Inside fit's gradient tape: shape checks only, no value reads per batch.
        validate: false,
      });
      return tf.mul(distillation, 1 - config.alpha);
    });
  return [hard, soft];
}

/** The checks the Distiller makes of a student, for a model about to be wrapped. */
function assertDistillableStudent(student: tfl.LayersModel): void {
  assertStudentModel(student);
  assertStudentHasInputs(student, 'wrapping it');
  if (student.outputs.length !== 1) {
    throw new KdConfigError(
      'INVALID_STUDENT',
      `the student has ${student.outputs.length} outputs: wrap a model with one output, its logits ` +
        '(tf.model({ inputs: student.inputs, outputs: logitsOutput }))',
    );
  }
  const shape = student.outputs[0]!.shape;
  if (shape.length !== 2) {
    throw new KdShapeError(
      'RANK_MISMATCH',
      `the student's output has shape [${shape.map((d) => d ?? 'batch').join(', ')}] but distillation needs [batch, classes] logits`,
    );
  }
  assertStudentOutputs(student, 'logits');
  const clash = student.layers.find((layer) => (DISTILLATION_HEAD_OUTPUTS as readonly string[]).includes(layer.name));
  if (clash !== undefined) {
    throw new KdConfigError(
      'INVALID_STUDENT',
      `the student has a layer named "${clash.name}", the name of a distillation output: give that layer another name`,
    );
  }
}
