/**
 * The three students of the benchmarks, with their data and loss settings.
 * Keep in sync with bench/reference/kd_step.py (the PyTorch reference).
 *
 * - mlp:    784-800-800-10, ReLU; KL at T = 4, × T², against fixed teacher logits.
 * - bilstm: embedding 10000×100 → bidirectional LSTM 150 (last states of both
 *           directions, concatenated) → Dense 200 ReLU → 2 logits; 32 tokens;
 *           MSE on logits summed over classes (Tang et al. 2019, eq. 2).
 * - conv:   28×28×1 → Conv 3×3×16 ReLU → MaxPool 2 → Conv 3×3×32 ReLU →
 *           MaxPool 2 → Flatten → Dense 10 ('valid' padding); KL at T = 4, × T².
 *
 * The LSTM gates use the sigmoid, as PyTorch's do (tfjs defaults to hardSigmoid).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { DistillationKind } from '../src/index.js';
import { bidirectionalFastLstm } from '../src/layers/fastLstm.js';

export const MODEL_NAMES = ['mlp', 'bilstm', 'conv'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Which LSTM the BiLSTM student uses: tfjs-layers' own or kd-ts's FastLSTM. */
export type LstmKind = 'tfjs' | 'fast';

/** Every size and loss setting of the students, in one place. */
export const MODEL_SETTINGS = {
  batch: 128,
  temperature: 4,
  learningRate: 1e-3,
  mlp: { sizes: [784, 800, 800, 10] },
  bilstm: { vocabulary: 10_000, embedding: 100, tokens: 32, units: 150, hidden: 200, classes: 2 },
  conv: { image: [28, 28, 1], filters: [16, 32], kernel: 3, pool: 2, classes: 10 },
} as const;

/** A student, one batch of its inputs, fixed teacher logits, and its loss settings. */
export interface BenchCase {
  student: tfl.LayersModel;
  inputs: tf.Tensor;
  teacherLogits: tf.Tensor;
  kind: DistillationKind;
  temperature: number;
}

/** Builds a student with a batch of random inputs and random teacher logits (as in kd_step.py). */
export function benchCase(name: ModelName, lstm: LstmKind = 'tfjs'): BenchCase {
  const { batch, temperature } = MODEL_SETTINGS;
  switch (name) {
    case 'mlp': {
      const sizes = MODEL_SETTINGS.mlp.sizes;
      return {
        student: mlp(sizes),
        inputs: tf.randomUniform([batch, sizes[0]], 0, 1, 'float32', 1),
        teacherLogits: tf.randomNormal([batch, sizes[sizes.length - 1]!], 0, 1, 'float32', 2),
        kind: 'kl',
        temperature,
      };
    }
    case 'bilstm': {
      const s = MODEL_SETTINGS.bilstm;
      return {
        student: biLstm(lstm),
        // Ids 1..vocabulary-1: id 0 is PyTorch's padding_idx, never drawn there either.
        inputs: tf.randomUniform([batch, s.tokens], 1, s.vocabulary, 'int32', 3),
        teacherLogits: tf.randomNormal([batch, s.classes], 0, 1, 'float32', 4),
        kind: 'mse',
        temperature,
      };
    }
    case 'conv': {
      const s = MODEL_SETTINGS.conv;
      return {
        student: conv(),
        inputs: tf.randomUniform([batch, ...s.image], 0, 1, 'float32', 5),
        teacherLogits: tf.randomNormal([batch, s.classes], 0, 1, 'float32', 6),
        kind: 'kl',
        temperature,
      };
    }
  }
}

/** Dense ReLU layers ending in linear logits. */
export function mlp(sizes: readonly number[]): tfl.LayersModel {
  const layers = sizes.slice(1).map((units, i) =>
    tfl.layers.dense({
      units,
      activation: i === sizes.length - 2 ? 'linear' : 'relu',
      ...(i === 0 ? { inputShape: [sizes[0]!] } : {}),
    }),
  );
  return tfl.sequential({ layers });
}

function biLstm(lstm: LstmKind): tfl.LayersModel {
  const s = MODEL_SETTINGS.bilstm;
  const recurrent =
    lstm === 'fast'
      ? bidirectionalFastLstm({ units: s.units, recurrentActivation: 'sigmoid' })
      : tfl.layers.bidirectional({
          // tfjs's default orthogonal initializer needs the umbrella @tensorflow/tfjs package.
          layer: tfl.layers.lstm({ units: s.units, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform' }),
          mergeMode: 'concat',
        });
  return tfl.sequential({
    layers: [
      tfl.layers.embedding({ inputDim: s.vocabulary, outputDim: s.embedding, inputLength: s.tokens, inputShape: [s.tokens] }),
      recurrent,
      tfl.layers.dense({ units: s.hidden, activation: 'relu' }),
      tfl.layers.dense({ units: s.classes }),
    ],
  });
}

function conv(): tfl.LayersModel {
  const s = MODEL_SETTINGS.conv;
  const [first, second] = s.filters;
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ filters: first, kernelSize: s.kernel, activation: 'relu', padding: 'valid', inputShape: [...s.image] }),
      tfl.layers.maxPooling2d({ poolSize: s.pool }),
      tfl.layers.conv2d({ filters: second, kernelSize: s.kernel, activation: 'relu', padding: 'valid' }),
      tfl.layers.maxPooling2d({ poolSize: s.pool }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: s.classes }),
    ],
  });
}
