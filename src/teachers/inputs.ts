import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdShapeError } from '../errors.js';
import type { ModelInputs } from './teacher.js';

// Helpers over ModelInputs shared by `teachers` and `distill` (distill depends
// on teachers, never the reverse, so they live here).

/** Every tensor of a {@link ModelInputs}, with a name for messages. */
export function namedTensors(inputs: ModelInputs, label: string): Array<[string, tf.Tensor]> {
  if (inputs instanceof tf.Tensor) return [[label, inputs]];
  if (Array.isArray(inputs)) return inputs.map((t, i) => [`${label}[${i}]`, t]);
  if (inputs !== null && typeof inputs === 'object') {
    return Object.entries(inputs).map(([k, t]) => [`${label}.${k}`, t]);
  }
  throw new KdShapeError('MISSING_INPUT', `${label} must be a tensor, an array of tensors or a map of named tensors`);
}

/** The shared first dimension of all tensors; throws when they disagree. */
export function countRows(groups: Array<[string, ModelInputs | tf.Tensor | undefined]>): number {
  let rows: number | undefined;
  let first = '';
  for (const [label, inputs] of groups) {
    if (inputs === undefined) continue;
    for (const [name, tensor] of namedTensors(inputs, label)) {
      if (!(tensor instanceof tf.Tensor) || tensor.rank === 0) {
        throw new KdShapeError('MISSING_INPUT', `${name} must be a tensor with a batch dimension`);
      }
      const n = tensor.shape[0]!;
      if (rows === undefined) {
        rows = n;
        first = name;
      } else if (n !== rows) {
        throw new KdShapeError(
          'LENGTH_MISMATCH',
          `${name} has ${n} rows but ${first} has ${rows}: every input, label and teacher input needs one row per example`,
        );
      }
    }
  }
  if (rows === undefined || rows === 0) {
    throw new KdShapeError('LENGTH_MISMATCH', 'no examples: x must have at least one row');
  }
  return rows;
}

/** Applies `f` to every tensor, keeping the structure (tensor, array or map). */
export function mapInputs(inputs: ModelInputs, f: (t: tf.Tensor) => tf.Tensor): ModelInputs {
  if (inputs instanceof tf.Tensor) return f(inputs);
  if (Array.isArray(inputs)) return inputs.map(f);
  const out: tf.NamedTensorMap = {};
  for (const [k, t] of Object.entries(inputs)) out[k] = f(t);
  return out;
}

/** Every tensor inside a {@link ModelInputs}, for disposal. */
export function tensorsOf(inputs: ModelInputs | undefined): tf.Tensor[] {
  if (inputs === undefined) return [];
  if (inputs instanceof tf.Tensor) return [inputs];
  return Array.isArray(inputs) ? inputs : Object.values(inputs);
}

/**
 * Returns `value` when it is a positive integer.
 *
 * @throws {@link KdConfigError} `INVALID_OPTION` naming the option otherwise.
 */
export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new KdConfigError('INVALID_OPTION', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}
