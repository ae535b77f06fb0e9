import { KdConfigError, type KdErrorCode } from '../errors.js';
import type { DistillationKind } from './distillationLoss.js';

/**
 * The forms teacher outputs come in: `'logits'` or `'probs'` (probabilities).
 * A new form (e.g. top-k class ids and logits) is added here, then given a
 * column in `ACCEPTS` and a reason in `REJECTED_BECAUSE`.
 */
export type TeacherOutputForm = 'logits' | 'probs';

/**
 * How exactly teacher outputs stand for the teacher's logits, from the
 * strictest to the loosest:
 *
 * - `'exact'`: the teacher's own values (its logits, or its probabilities),
 *   whatever the temperature;
 * - `'up-to-constant'`: logits only up to a per-row constant (e.g. `log p` of
 *   a probability member inside a `mean-logits` ensemble): exact for a
 *   softmax at any temperature, not for matching logits;
 * - `'temperature-dependent'`: exact only for a softmax at the temperature
 *   they were computed at (e.g. `T · log p̄` of a `mean-probs` ensemble).
 */
export type TeacherOutputExactness = 'exact' | 'up-to-constant' | 'temperature-dependent';

/** What a distillation kind can use of the teacher's outputs: one row of `ACCEPTS`. */
interface Accepts {
  /** What the kind compares, for messages. */
  readonly compares: string;
  /** The forms it accepts. */
  readonly forms: readonly TeacherOutputForm[];
  /** The exactness it accepts. */
  readonly exactness: readonly TeacherOutputExactness[];
  /** The error code when the teacher's outputs do not fit. */
  readonly code: KdErrorCode;
}

/** A divergence between tempered distributions uses any output whose softmax at T is the teacher's. */
const DISTRIBUTIONS: Accepts = {
  compares: 'the tempered distributions',
  forms: ['logits', 'probs'],
  exactness: ['exact', 'up-to-constant', 'temperature-dependent'],
  code: 'INVALID_OPTION',
};

/**
 * Which teacher outputs each distillation kind accepts. A new kind gets a row
 * (the assignment below fails to compile until it has one).
 */
const ACCEPTS = {
  kl: DISTRIBUTIONS,
  'reverse-kl': DISTRIBUTIONS,
  jsd: DISTRIBUTIONS,
  tvd: DISTRIBUTIONS,
  // Tang et al.: squared differences of the logits themselves.
  mse: { compares: 'logits', forms: ['logits'], exactness: ['exact'], code: 'PROBS_TEACHER_WITH_MSE' },
} satisfies Record<string, Accepts>;
const EVERY_KIND_HAS_A_ROW: Readonly<Record<DistillationKind, Accepts>> = ACCEPTS;

/** The kind advised instead, when it accepts the outputs: Hinton's KL, the default. */
const ADVISED: DistillationKind = 'kl';

/** Why outputs of each form or exactness are refused, and what else helps beside another kind. */
const REJECTED_BECAUSE: Readonly<Record<TeacherOutputForm | TeacherOutputExactness, { why: string; fix?: string }>> = {
  logits: { why: 'the teacher outputs logits' },
  probs: { why: 'the teacher outputs probabilities', fix: 'give a teacher that returns logits' },
  exact: { why: "the teacher's outputs are exact" },
  'up-to-constant': {
    why:
      "this teacher's outputs are logits only up to a per-row constant " +
      '(e.g. a mean-logits ensemble with a member that returns probabilities)',
  },
  'temperature-dependent': {
    why: "this teacher's outputs depend on the temperature (e.g. an EnsembleTeacher with combine: 'mean-probs')",
    fix: "combine: 'mean-logits'",
  },
};

/**
 * Why a distillation kind cannot use a teacher's outputs, or `undefined` when
 * it can (also for a kind it does not know: the loss options check those).
 * Exactness is checked before form, so the message names the deeper reason.
 *
 * @param kind - The distillation kind.
 * @param outputs - What the teacher returns (its `TeacherOutputSpec`).
 * @returns `{ code, message }` of the refusal, or undefined.
 * @internal
 */
export function teacherOutputsProblem(
  kind: DistillationKind,
  outputs: { readonly form: TeacherOutputForm; readonly exactness: TeacherOutputExactness },
): { code: KdErrorCode; message: string } | undefined {
  const row: Accepts | undefined = (EVERY_KIND_HAS_A_ROW as Partial<Record<string, Accepts>>)[kind];
  if (row === undefined) return undefined;
  const refused = !row.exactness.includes(outputs.exactness)
    ? outputs.exactness
    : !row.forms.includes(outputs.form)
      ? outputs.form
      : undefined;
  if (refused === undefined) return undefined;
  const { why, fix } = REJECTED_BECAUSE[refused];
  const advised = kind !== ADVISED && teacherOutputsProblem(ADVISED, outputs) === undefined ? `use kind '${ADVISED}'` : '';
  const remedy = [advised, fix].filter((s): s is string => s !== undefined && s !== '').join(', or ');
  return { code: row.code, message: `kind '${kind}' matches ${row.compares}, but ${why}${remedy ? `: ${remedy}` : ''}` };
}

/**
 * Throws unless the distillation kind can use the teacher's outputs: every
 * divergence takes logits, probabilities and temperature-dependent outputs;
 * `'mse'` only plain logits.
 *
 * @param kind - The distillation kind.
 * @param outputs - What the teacher returns (its `TeacherOutputSpec`).
 * @throws {@link KdConfigError} `PROBS_TEACHER_WITH_MSE` for `'mse'` with outputs that are not plain
 *   logits, naming why and what to use instead.
 * @internal
 */
export function assertTeacherOutputsFit(
  kind: DistillationKind,
  outputs: { readonly form: TeacherOutputForm; readonly exactness: TeacherOutputExactness },
): void {
  const problem = teacherOutputsProblem(kind, outputs);
  if (problem !== undefined) throw new KdConfigError(problem.code, problem.message);
}
