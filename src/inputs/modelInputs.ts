import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdShapeError } from '../errors.js';

// What any model reads, and the helpers over it that teachers, students,
// distill and report all need. Ground floor: imports only errors.

/** What a model reads: one tensor, several (multi-input models) or a named map. */
export type ModelInputs = tf.Tensor | tf.Tensor[] | tf.NamedTensorMap;

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

/** The first tensor of a {@link ModelInputs} (the batch size is its first dimension). */
export function firstTensor(inputs: ModelInputs): tf.Tensor {
  return tensorsOf(inputs)[0]!;
}

/** Orders a named input map by the model's input names; passes tensors and arrays through. */
export function orderInputs(model: tfl.LayersModel, inputs: ModelInputs): tf.Tensor | tf.Tensor[] {
  if (inputs instanceof tf.Tensor || Array.isArray(inputs)) return inputs;
  return model.inputNames.map((name) => {
    const tensor = inputs[name];
    if (tensor === undefined) {
      throw new KdShapeError(
        'MISSING_INPUT',
        `the model expects an input named "${name}" but the map has ${Object.keys(inputs).join(', ') || 'no keys'}: ` +
          `name the inputs ${model.inputNames.join(', ')}`,
      );
    }
    return tensor;
  });
}
