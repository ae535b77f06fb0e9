import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdError, KdShapeError, type KdErrorCode } from '../errors.js';
import { logSoftmaxWithTemperature } from '../losses/softmaxWithTemperature.js';
import { assertLogits, assertTemperature } from '../losses/validate.js';
import { tensorsOf, type ModelInputs } from '../inputs/modelInputs.js';
import {
  asLogitsSpec,
  checkedOutputSpec,
  loosestExactness,
  teacherOutputsAsLogits,
  teacherOutputSpec,
  type TeacherOutputs,
  type TeacherOutputSpec,
} from './outputSpec.js';
import {
  asTeacher,
  isLayersModel,
  teacherModels,
  type Teacher,
  type TeacherContext,
  type TeacherLike,
  type TeacherModels,
} from './teacher.js';

/**
 * How an {@link EnsembleTeacher} combines its members.
 *
 * - `'mean-logits'`: the weighted mean of the members' logits, `Σ w_k z_k`.
 *   Its softmax at any temperature T is the normalized weighted geometric
 *   mean of the members' tempered distributions `softmax(z_k / T)`.
 * - `'mean-probs'`: the weighted arithmetic mean of the tempered
 *   distributions, `p̄ = Σ w_k softmax(z_k / T)`, returned as `T · log p̄`
 *   so that `softmax(returned / T) = p̄` exactly (Hinton et al. 2015, §4).
 */
export type EnsembleCombine = 'mean-logits' | 'mean-probs';

/** A member of an {@link EnsembleTeacher} with its own name, input selector or output kind. */
export interface EnsembleMember {
  /** The model, function or {@link Teacher}. */
  teacher: TeacherLike;
  /** Used in error messages; defaults to `#index` (plus the model's name for LayersModels). */
  name?: string;
  /**
   * Picks what this member reads from the ensemble's inputs, e.g.
   * `(x) => (x as tf.NamedTensorMap).tokens` for a member that reads one key
   * of a named map. Tensors the selector creates (a `tf.cast`, a `tf.slice`)
   * are disposed once the member has run; tensors it merely picks are not.
   */
  inputs?: (inputs: ModelInputs, context: TeacherContext) => ModelInputs;
  /** What the member returns, overriding {@link asTeacher}'s detection. */
  outputs?: TeacherOutputs | TeacherOutputSpec;
}

/** Options of the {@link EnsembleTeacher} constructor. */
export interface EnsembleTeacherOptions {
  /** How members are combined (default `'mean-logits'`); see {@link EnsembleCombine}. */
  combine?: EnsembleCombine;
  /**
   * One non-negative weight per member, normalized to sum 1 (default:
   * uniform). A member with weight 0 still runs (its output is checked) but
   * does not count.
   */
  weights?: number[];
}

/** A member as the ensemble holds it. */
export interface ResolvedEnsembleMember {
  /** The name used in error messages: the given name, or `#index` (with the model's name). */
  readonly label: string;
  /** The member adapted to {@link Teacher}. */
  readonly teacher: Teacher;
  /** What was passed in (e.g. the LayersModel), for callers that inspect members. */
  readonly source: TeacherLike;
  /** The normalized weight. */
  readonly weight: number;
  /** The input selector, when given. */
  readonly select?: (inputs: ModelInputs, context: TeacherContext) => ModelInputs;
}

const DEFAULT_COMBINE: EnsembleCombine = 'mean-logits';

/**
 * A teacher made of several teachers whose outputs are averaged, as in
 * Hinton, Vinyals and Dean (2015, §4), where an ensemble of models is
 * distilled into one student. Usable anywhere a teacher is: in the
 * {@link Distiller}, or as a member of another ensemble.
 *
 * On every batch each member runs exactly once (concurrently, when members
 * are async) in inference mode; every member must return `[batch, classes]`
 * with the same batch and class count. A member that returns probabilities
 * (`outputs: 'probs'`, or a LayersModel ending in softmax) is read as the
 * logits `log p`, which equal its true logits up to a per-row constant: no
 * softmax at any temperature can tell them apart, so both combinations are
 * unchanged.
 *
 * - `combine: 'mean-logits'` (default) returns `Σ w_k z_k`: logits whose
 *   softmax at T is the normalized weighted geometric mean of the members'
 *   tempered distributions. They do not depend on T (unless a member's do),
 *   so `kind: 'mse'` may use them (unless a member returns probabilities:
 *   then they are logits up to a per-row constant).
 * - `combine: 'mean-probs'` returns `T · log p̄` with
 *   `p̄ = Σ w_k softmax(z_k / T)`, computed stably as
 *   `log p̄ = logSumExp_k(log w_k + logSoftmax(z_k / T))`. Its softmax at the
 *   distillation temperature is exactly the averaged distribution; these
 *   outputs depend on T (`outputs.exactness` is `'temperature-dependent'`),
 *   so the Distiller rejects them with `kind: 'mse'`.
 *
 * The returned tensor belongs to the caller; member outputs and
 * intermediates are disposed.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Distiller, EnsembleTeacher } from 'kd-ts';
 *
 * const mlp = (units: number) =>
 *   tfl.sequential({ layers: [
 *     tfl.layers.dense({ units, activation: 'relu', inputShape: [20] }),
 *     tfl.layers.dense({ units: 3 }),
 *   ] });
 * const teacher = new EnsembleTeacher([mlp(64), mlp(32), { teacher: mlp(16), name: 'small' }], {
 *   combine: 'mean-probs',
 *   weights: [2, 1, 1],
 * });
 * const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [20] })] });
 * const distiller = new Distiller({ teacher, student });
 * distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 4 });
 * await distiller.fit(tf.randomNormal([128, 20]), undefined, { epochs: 2 });
 * ```
 */
export class EnsembleTeacher implements Teacher {
  /**
   * Always logits (probabilities of members are combined in log space):
   * temperature-dependent for `'mean-probs'` or when a member's are; else up
   * to a per-row constant when a member returns probabilities (or such
   * logits); else exact.
   */
  readonly outputs: TeacherOutputSpec;
  /** How members are combined. */
  readonly combine: EnsembleCombine;
  /** The members, adapted, with their normalized weights. */
  readonly members: readonly ResolvedEnsembleMember[];

  /**
   * @param teachers - The members: models, functions, {@link Teacher}s, or {@link EnsembleMember} objects.
   * @param options - See {@link EnsembleTeacherOptions}.
   * @throws {@link KdConfigError} `INVALID_TEACHER` for an empty list or a member that is not a teacher;
   *   `INVALID_OPTION` for an unknown `combine`, or weights of the wrong length, negative, non-finite or all zero.
   */
  constructor(teachers: ReadonlyArray<TeacherLike | EnsembleMember>, options: EnsembleTeacherOptions = {}) {
    if (!Array.isArray(teachers) || teachers.length === 0) {
      throw new KdConfigError(
        'INVALID_TEACHER',
        'an EnsembleTeacher needs at least one member: pass an array of models, functions or teachers',
      );
    }
    const combine = options.combine ?? DEFAULT_COMBINE;
    if (combine !== 'mean-logits' && combine !== 'mean-probs') {
      throw new KdConfigError(
        'INVALID_OPTION',
        `unknown combine ${JSON.stringify(combine)}: use 'mean-logits' (geometric mean) or 'mean-probs' (arithmetic mean of probabilities)`,
      );
    }
    const weights = normalizeWeights(options.weights, teachers.length);
    this.combine = combine;
    this.members = teachers.map((member, index) => resolveMember(member, index, weights[index]!));
    this.outputs = {
      form: 'logits',
      exactness:
        combine === 'mean-probs'
          ? 'temperature-dependent'
          : // log p of a probability member equals its logits up to a per-row constant.
            loosestExactness(this.members.map((m) => asLogitsSpec(teacherOutputSpec(m.teacher)).exactness)),
    };
  }

  /**
   * The LayersModels of every member.
   *
   * @returns The distinct models; `complete` is false when a member runs something else (a function, a GraphModel).
   */
  models(): TeacherModels {
    const parts = this.members.map((member) => teacherModels(member.teacher));
    return { models: [...new Set(parts.flatMap((p) => p.models))], complete: parts.every((p) => p.complete) };
  }

  /**
   * Runs every member once on the batch and combines their outputs.
   *
   * @param inputs - The batch, passed to each member (through its `inputs` selector, when given).
   * @param context - The temperature (used by `'mean-probs'`; default 1) and optional example ids, passed on to members.
   * @returns `[batch, classes]` logits, owned by the caller.
   * @throws {@link KdConfigError} `TEACHER_FAILED` when a member throws (the original is the `cause`;
   *   a member's own {@link KdError} keeps its class and code, with the member named in the message);
   *   `INVALID_TEMPERATURE` for `'mean-probs'` without a finite temperature > 0.
   * @throws {@link KdShapeError} `RANK_MISMATCH`, `BATCH_SIZE_MISMATCH` or `CLASS_COUNT_MISMATCH`
   *   when members disagree, naming both.
   */
  async predict(inputs: ModelInputs, context: TeacherContext = { temperature: 1 }): Promise<tf.Tensor> {
    // Checked before any member runs, so a bad temperature costs no inference.
    if (this.combine === 'mean-probs') assertTemperature(context.temperature);
    const settled = await Promise.allSettled(this.members.map((member) => runMember(member, inputs, context)));
    const outputs = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    try {
      const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
      checkShapes(this.members, outputs);
      return this.combineOutputs(outputs, context.temperature);
    } finally {
      tf.dispose(outputs);
    }
  }

  /** The combination itself, on checked `[batch, classes]` outputs (one per member, in order). */
  private combineOutputs(outputs: tf.Tensor[], temperature: number): tf.Tensor {
    return tf.tidy(() => {
      const counted = this.members.flatMap((member, k) =>
        member.weight > 0
          ? [{ weight: member.weight, logits: teacherOutputsAsLogits(outputs[k]!, teacherOutputSpec(member.teacher)) }]
          : [],
      );
      if (this.combine === 'mean-logits') {
        return tf.addN(counted.map(({ weight, logits }) => tf.mul(logits, weight)));
      }
      // log p̄ = logSumExp_k(log w_k + log softmax(z_k / T)): no probability is
      // ever formed, so classes every member finds very unlikely stay finite.
      const logTerms = counted.map(({ weight, logits }) =>
        tf.add(logSoftmaxWithTemperature(logits, temperature), Math.log(weight)),
      );
      const logMean = logTerms.length === 1 ? logTerms[0]! : tf.logSumExp(tf.stack(logTerms), 0);
      return tf.mul(logMean, temperature);
    });
  }
}

/** Normalized weights (uniform when absent); throws on anything that cannot be normalized. */
function normalizeWeights(weights: number[] | undefined, count: number): number[] {
  if (weights === undefined) return Array.from({ length: count }, () => 1 / count);
  const fix = 'pass one finite weight ≥ 0 per member, not all zero (they are normalized to sum 1)';
  if (!Array.isArray(weights) || weights.length !== count) {
    const given = Array.isArray(weights) ? `${weights.length} weights` : String(weights);
    throw new KdConfigError('INVALID_OPTION', `the ensemble has ${count} members but got ${given}: ${fix}`);
  }
  weights.forEach((w, i) => {
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
      throw new KdConfigError('INVALID_OPTION', `weight ${i} is ${String(w)}: ${fix}`);
    }
  });
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) throw new KdConfigError('INVALID_OPTION', `all ensemble weights are zero: ${fix}`);
  return weights.map((w) => w / total);
}

function isMemberSpec(value: unknown): value is EnsembleMember {
  return (
    value !== null &&
    typeof value === 'object' &&
    'teacher' in value &&
    typeof (value as { predict?: unknown }).predict !== 'function' &&
    !isLayersModel(value)
  );
}

function resolveMember(member: TeacherLike | EnsembleMember, index: number, weight: number): ResolvedEnsembleMember {
  const spec: EnsembleMember = isMemberSpec(member) ? member : { teacher: member };
  const label =
    spec.name !== undefined
      ? `"${spec.name}"`
      : isLayersModel(spec.teacher)
        ? `#${index} (${spec.teacher.name})`
        : `#${index}`;
  if (spec.inputs !== undefined && typeof spec.inputs !== 'function') {
    throw new KdConfigError(
      'INVALID_OPTION',
      `ensemble member ${label}: inputs must be a function (x, context) => what the member reads, e.g. (x) => x.tokens`,
    );
  }
  checkedOutputSpec(spec.outputs, `ensemble member ${label}: `);
  let teacher: Teacher;
  try {
    teacher = asTeacher(spec.teacher, { outputs: spec.outputs });
  } catch (error) {
    throw withMember(error, label);
  }
  return { label, teacher, source: spec.teacher, weight, ...(spec.inputs === undefined ? {} : { select: spec.inputs }) };
}

/** Runs one member (its selector first); any failure comes back naming the member. */
async function runMember(member: ResolvedEnsembleMember, inputs: ModelInputs, context: TeacherContext): Promise<tf.Tensor> {
  let created: tf.Tensor[] = [];
  try {
    let memberInputs = inputs;
    if (member.select !== undefined) {
      const select = member.select;
      // Tensors with ids above the marker's were made by the selector; picked ones are older.
      const marker = tf.scalar(0);
      const firstNew = marker.id;
      marker.dispose();
      memberInputs = tf.tidy(() => select(inputs, context) as tf.TensorContainer) as ModelInputs;
      created = tensorsOf(memberInputs).filter((t) => t.id > firstNew);
    }
    return await member.teacher.predict(memberInputs, context);
  } catch (error) {
    throw withMember(error, member.label);
  } finally {
    tf.dispose(created);
  }
}

/**
 * Names the member in an error. A kd-ts error keeps its class and code (so
 * callers matching `MISSING_INPUT` still can); anything else becomes
 * `TEACHER_FAILED`. The original is the `cause`.
 */
function withMember(error: unknown, label: string): KdError {
  if (error instanceof KdError) {
    const Kind = error.constructor as new (code: KdErrorCode, message: string, options?: { cause?: unknown }) => KdError;
    return new Kind(error.code, `ensemble member ${label}: ${error.message}`, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new KdConfigError(
    'TEACHER_FAILED',
    `ensemble member ${label} threw: ${reason}. Check that it accepts these inputs ` +
      '(give it an input selector, { teacher, inputs: (x) => ... }, when it reads something else than the other members)',
    { cause: error },
  );
}

/** Every output `[batch, classes]`, agreeing with the first member's. */
function checkShapes(members: readonly ResolvedEnsembleMember[], outputs: tf.Tensor[]): void {
  outputs.forEach((output, k) => assertLogits(output, `the output of ensemble member ${members[k]!.label}`));
  const [rows, classes] = outputs[0]!.shape;
  const first = members[0]!.label;
  outputs.forEach((output, k) => {
    const [memberRows, memberClasses] = output.shape;
    const label = members[k]!.label;
    if (memberClasses !== classes) {
      throw new KdShapeError(
        'CLASS_COUNT_MISMATCH',
        `ensemble member ${label} returns ${memberClasses} classes but member ${first} returns ${classes}: ` +
          'every member must score the same classes, in the same order',
      );
    }
    if (memberRows !== rows) {
      throw new KdShapeError(
        'BATCH_SIZE_MISMATCH',
        `ensemble member ${label} returns ${memberRows} rows but member ${first} returns ${rows}: ` +
          'every member must return one row per example of the batch',
      );
    }
  });
}
