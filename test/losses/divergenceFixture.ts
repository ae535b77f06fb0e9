/**
 * Loads fixtures/divergences.json (made by fixtures/make_divergence_fixtures.py)
 * and builds each case's tensors and options as a caller of the loss would.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { DistillationLossOptions } from '../../src/index.js';
import type { DistillationKind, TopKLogits } from '../../src/losses/index.js';

export type Nested = number | Nested[];

export interface Case {
  name: string;
  kind: DistillationKind;
  temperature: number;
  beta: number | null;
  topK: number | null;
  teacherFormat: 'logits' | 'probs' | 'topk';
  scaleByTemperatureSquared: boolean;
  alpha: number;
  student: string;
  teacher: string;
  teacherIds: string | null;
  mask: string | null;
  labels: string | null;
  labelsFormat: 'ids' | null;
  sampleWeights: string | null;
  loss: number;
  distillation: number;
  student_loss: number | null;
  perRow: number[];
  grad: Nested;
}

interface Fixture {
  generator: string;
  probFloor: number;
  ignoreLabel: number;
  inputs: Record<string, Nested>;
  cases: Case[];
}

export const fixture = JSON.parse(readFileSync(new URL('./fixtures/divergences.json', import.meta.url), 'utf8')) as Fixture;

export function input(name: string): Nested {
  const value = fixture.inputs[name];
  if (value === undefined) throw new Error(`fixture input ${name} is missing`);
  return value;
}

export function flat(x: Nested): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x];
}

/** The case's tensors and options, as a caller of the loss would build them. */
export function build(c: Case): {
  student: tf.Tensor;
  teacher: tf.Tensor | TopKLogits;
  options: DistillationLossOptions;
  tensors: tf.Tensor[];
} {
  const tensors: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    tensors.push(t);
    return t;
  };
  const student = keep(tf.tensor(input(c.student) as number[], undefined, 'float32'));
  let teacher: tf.Tensor | TopKLogits;
  if (c.teacherFormat === 'topk') {
    teacher = {
      ids: keep(tf.tensor(input(c.teacherIds!) as number[], undefined, 'int32')),
      logits: keep(tf.tensor(input(c.teacher) as number[], undefined, 'float32')),
    };
  } else if (c.teacherFormat === 'probs') {
    // What the train step does with a teacher declared `outputs: 'probs'`.
    const probs = keep(tf.tensor(input(c.teacher) as number[], undefined, 'float32'));
    teacher = keep(tf.tidy(() => tf.log(tf.maximum(probs, fixture.probFloor))));
  } else {
    teacher = keep(tf.tensor(input(c.teacher) as number[], undefined, 'float32'));
  }
  const options: DistillationLossOptions = {
    kind: c.kind,
    temperature: c.temperature,
    alpha: c.alpha,
    scaleByTemperatureSquared: c.scaleByTemperatureSquared,
  };
  if (c.beta !== null) options.beta = c.beta;
  if (c.topK !== null) options.topK = c.topK;
  if (c.mask !== null) options.mask = keep(tf.tensor(input(c.mask) as number[], undefined, 'int32'));
  if (c.labels !== null) options.labels = keep(tf.tensor(input(c.labels) as number[], undefined, 'int32'));
  if (c.sampleWeights !== null) options.sampleWeights = keep(tf.tensor(input(c.sampleWeights) as number[], undefined, 'float32'));
  return { student, teacher, options, tensors };
}

/** Row r of `[rows..., last]` as a `[1, last]` tensor (token rows of rank-3 inputs included). */
export function row(x: tf.Tensor, r: number): tf.Tensor2D {
  const last = x.shape[x.rank - 1]!;
  return tf.slice(tf.reshape(x, [-1, last]), [r, 0], [1, last]) as tf.Tensor2D;
}

