import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  biLstmStudentParamCount,
  buildBiLstmStudent,
  KdConfigError,
  KdShapeError,
  registerKdLayers,
  withSeed,
  type BiLstmStudentOptions,
} from '../../src/index.js';
import { loadStudent, saveStudent } from '../../src/node/index.js';

/** Small sizes: the structure is what is tested. */
const SMALL = { vocabSize: 40, numClasses: 3, embeddingDim: 6, hiddenUnits: 5, fcUnits: 7 } as const;

function build(options: Partial<BiLstmStudentOptions> = {}, seed = 1): tfl.LayersModel {
  return withSeed(seed, () => buildBiLstmStudent({ ...SMALL, ...options }));
}

function padded(ids: number[], length: number, where: 'post' | 'pre' = 'post'): number[] {
  const padding = new Array<number>(length - ids.length).fill(0);
  return where === 'post' ? [...ids, ...padding] : [...padding, ...ids];
}

function ids(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');
}

function predict(model: tfl.LayersModel, x: tf.Tensor | tf.Tensor[]): number[][] {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).arraySync() as number[][]);
}

function expectClose(actual: number[], expected: number[], tolerance: number): void {
  expect(actual).toHaveLength(expected.length);
  const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i]!)));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

function matrix(rows: number, cols: number, seed: number): number[][] {
  return withSeed(seed, () => tf.tidy(() => tf.randomNormal([rows, cols]).arraySync() as number[][]));
}

describe('buildBiLstmStudent', () => {
  it('maps int token ids of any length to [batch, numClasses] logits', () => {
    const model = build();
    expect(model.inputs.map((i) => i.shape)).toEqual([[null, null]]);
    expect(model.inputs[0]!.dtype).toBe('int32');
    expect(model.outputs[0]!.shape).toEqual([null, 3]);
    for (const length of [1, 4, 23]) {
      const out = predict(model, ids([padded([5], length), padded([7, 8], Math.max(2, length)).slice(0, length)]));
      expect(out).toHaveLength(2);
      expect(out[0]).toHaveLength(3);
    }
    // Logits, not probabilities: the last layer is linear.
    expect(model.getLayer('logits').getConfig()['activation']).toBe('linear');
    expect(model.getLayer('fc').getConfig()['activation']).toBe('relu');
  });

  it('takes two inputs with pair: true and shares one encoder between them', () => {
    const model = build({ pair: true });
    expect(model.inputNames).toEqual(['tokens_a', 'tokens_b']);
    expect(model.outputs[0]!.shape).toEqual([null, 3]);
    // One embedding and one BiLSTM, each used twice; the ReLU layer reads 4 × 2h features.
    expect(model.layers.filter((l) => l.name === 'embedding')).toHaveLength(1);
    expect(model.getLayer('bilstm').inboundNodes).toHaveLength(2);
    expect(model.getLayer('embedding').inboundNodes).toHaveLength(2);
    expect(model.getLayer('fc').getWeights()[0]!.shape).toEqual([4 * 2 * SMALL.hiddenUnits, SMALL.fcUnits]);
    const a = ids([padded([3, 4, 5], 6)]);
    const b = ids([padded([9, 10], 6)]);
    // Each input's path through the shared encoder, as a model of its own: one function, whichever input.
    const bilstm = model.getLayer('bilstm');
    const [encodeA, encodeB] = [0, 1].map((i) =>
      tfl.model({ inputs: model.inputs[i]!, outputs: bilstm.getOutputAt(i) as tfl.SymbolicTensor }),
    );
    for (const sentence of [a, b]) expectClose(predict(encodeA!, sentence)[0]!, predict(encodeB!, sentence)[0]!, 0);
    // What the ReLU layer reads is [h1, h2, h1 ⊙ h2, |h1 − h2|] of those encodings, in that order.
    const h1 = predict(encodeA!, a)[0]!;
    const h2 = predict(encodeB!, b)[0]!;
    const features = tfl.model({ inputs: model.inputs, outputs: model.getLayer('pair_features').output as tfl.SymbolicTensor });
    const byHand = [...h1, ...h2, ...h1.map((v, i) => v * h2[i]!), ...h1.map((v, i) => Math.abs(v - h2[i]!))];
    expectClose(predict(features, [a, b])[0]!, byHand, 1e-6);
    // The order of the pair matters ([h1, h2] is not symmetric).
    expect(predict(model, [a, b])[0]!).not.toEqual(predict(model, [b, a])[0]!);
    tf.dispose([a, b]);
  });

  describe('parameter count equals the closed form', () => {
    const V = SMALL.vocabSize;
    const d = SMALL.embeddingDim;
    const h = SMALL.hiddenUnits;
    const f = SMALL.fcUnits;
    const C = SMALL.numClasses;
    for (const pair of [false, true]) {
      for (const pooling of ['last', 'max'] as const) {
        for (const mode of ['random', 'trainable', 'frozen', 'multichannel'] as const) {
          it(`pair ${pair}, pooling ${pooling}, embeddings ${mode}`, () => {
            const embeddings = mode === 'random' ? undefined : { weights: matrix(V, d, 3), mode };
            const options = { pair, pooling, ...(embeddings ? { embeddings } : {}) };
            const model = build(options);
            const k = mode === 'multichannel' ? 2 : 1;
            const p = pair ? 4 : 1;
            // Written out by hand, term by term, as in the TSDoc.
            const expected = k * V * d + 8 * h * (k * d + h + 1) + (2 * h * p + 1) * f + (f + 1) * C;
            expect(model.countParams()).toBe(expected);
            expect(biLstmStudentParamCount({ ...SMALL, ...options })).toBe(expected);
            const trainable = model.trainableWeights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b ?? 0), 1), 0);
            const frozen = mode === 'frozen' || mode === 'multichannel' ? V * d : 0;
            expect(trainable).toBe(expected - frozen);
          });
        }
      }
    }

    it("Tang et al.'s SST-2 sizes: about 5.0M parameters, 4.4M in the embedding", () => {
      const count = biLstmStudentParamCount({ vocabSize: 14_800, numClasses: 2 });
      expect(count).toBe(14_800 * 300 + 8 * 150 * 451 + 301 * 200 + 201 * 2);
      expect(count / 1e6).toBeCloseTo(5.0, 1);
    });
  });

  describe('padding (id 0) changes nothing', () => {
    const sentence = [5, 12, 7, 33, 2, 9];
    const other = [4, 21, 1];
    for (const cell of ['fast', 'tfjs'] as const) {
      for (const pooling of ['last', 'max'] as const) {
        it(`cell ${cell}, pooling ${pooling}: unpadded, padded to 16 and to 64 give the same logits`, () => {
          const model = build({ cell, pooling }, 4);
          const alone = predict(model, ids([sentence]))[0]!;
          for (const length of [16, 64]) {
            // Batched with a shorter sentence, so the padding is real work for the mask.
            const batch = predict(model, ids([padded(sentence, length), padded(other, length)]));
            expectClose(batch[0]!, alone, 1e-5);
            expectClose(batch[1]!, predict(model, ids([other]))[0]!, 1e-5);
          }
          // Padding before the sentence is masked too.
          expectClose(predict(model, ids([padded(sentence, 16, 'pre')]))[0]!, alone, 1e-5);
        });
      }
    }

    it('pairs too, with a and b padded to different lengths', () => {
      const model = build({ pair: true, pooling: 'max' }, 5);
      const alone = predict(model, [ids([sentence]), ids([other])])[0]!;
      expectClose(predict(model, [ids([padded(sentence, 16)]), ids([padded(other, 64)])])[0]!, alone, 1e-5);
    });

    it('the fast and the tfjs cell compute the same function of the same weights', () => {
      for (const pooling of ['last', 'max'] as const) {
        const fast = build({ cell: 'fast', pooling }, 6);
        const reference = build({ cell: 'tfjs', pooling }, 7);
        reference.setWeights(fast.getWeights());
        const x = ids([padded(sentence, 10), padded(other, 10)]);
        const [a, b] = [predict(fast, x), predict(reference, x)];
        for (let row = 0; row < 2; row++) expectClose(a[row]!, b[row]!, 1e-5);
        x.dispose();
      }
    });
  });

  describe('embeddings', () => {
    it('starts from the given matrix, in each mode, and freezes what it should', () => {
      const weights = matrix(SMALL.vocabSize, SMALL.embeddingDim, 8);
      for (const mode of ['trainable', 'frozen', 'multichannel'] as const) {
        const model = build({ embeddings: { weights, mode } });
        const embedding = model.getLayer('embedding');
        expect(embedding.getWeights()[0]!.arraySync()).toEqual(tf.tidy(() => tf.tensor2d(weights).arraySync()));
        expect(embedding.trainable).toBe(mode !== 'frozen');
        if (mode === 'multichannel') {
          const frozen = model.getLayer('embedding_frozen');
          expect(frozen.trainable).toBe(false);
          expect(frozen.getWeights()[0]!.arraySync()).toEqual(embedding.getWeights()[0]!.arraySync());
          // The BiLSTM reads both copies: 2·embeddingDim features per token.
          expect(model.getLayer('bilstm').getWeights()[0]!.shape).toEqual([2 * SMALL.embeddingDim, 4 * SMALL.hiddenUnits]);
        }
      }
    });

    it('takes the matrix as a tensor (left to the caller), nested rows, or a flat Float32Array', () => {
      const rows = matrix(SMALL.vocabSize, SMALL.embeddingDim, 9);
      const tensor = tf.tensor2d(rows);
      const flat = Float32Array.from(rows.flat());
      const fromRows = build({ embeddings: { weights: rows, mode: 'frozen' } });
      const fromTensor = build({ embeddings: { weights: tensor, mode: 'frozen' } });
      expect(tensor.isDisposed).toBe(false);
      const fromFlat = build({ embeddings: { weights: flat, mode: 'frozen' } });
      const x = ids([[3, 4, 5, 6]]);
      const expected = predict(fromRows, x);
      fromTensor.setWeights(fromRows.getWeights());
      fromFlat.setWeights(fromRows.getWeights().map((w, i) => (i === 0 ? fromFlat.getWeights()[0]! : w)));
      expect(predict(fromFlat, x)).toEqual(expected);
      tensor.dispose();
      // The model keeps its own reference to the data.
      expect(predict(fromTensor, x)).toEqual(expected);
      x.dispose();
    });

    it('takes embeddingDim from the matrix when omitted', () => {
      const { embeddingDim: _omitted, ...rest } = SMALL;
      const model = withSeed(1, () => buildBiLstmStudent({ ...rest, embeddings: { weights: matrix(40, 11, 1) } }));
      expect(model.getLayer('embedding').getWeights()[0]!.shape).toEqual([40, 11]);
    });

    it('rejects a matrix of the wrong shape with EMBEDDING_SHAPE_MISMATCH', () => {
      const cases: Array<tf.Tensor2D | number[][] | Float32Array> = [
        matrix(39, 6, 1),
        [...matrix(39, 6, 1), [1, 2, 3]],
        new Float32Array(40 * 6 - 1),
        tf.zeros([40, 5]) as tf.Tensor2D,
      ];
      for (const weights of cases) {
        const attempt = () => buildBiLstmStudent({ ...SMALL, embeddings: { weights, mode: 'trainable' } });
        expect(attempt).toThrow(KdShapeError);
        expect(attempt).toThrow(/\[40, 6\]/);
      }
    });

    it('rejects weights of another type (a Float64Array) with INVALID_OPTION naming the fix', () => {
      const weights = new Float64Array(40 * 6) as unknown as Float32Array;
      const attempt = () => buildBiLstmStudent({ ...SMALL, embeddings: { weights } });
      expect(attempt).toThrow(KdConfigError);
      expect(attempt).toThrow(/got Float64Array: convert it/);
      const { embeddingDim: _omitted, ...rest } = SMALL;
      expect(() => buildBiLstmStudent({ ...rest, embeddings: { weights } })).toThrow(/got Float64Array/);
    });
  });

  it('puts dropout after the ReLU layer, active only in training', () => {
    const model = build({ dropout: 0.5, fcUnits: 32 });
    const names = model.layers.map((l) => l.name);
    expect(names.slice(-3)).toEqual(['fc', 'fc_dropout', 'logits']);
    expect(build().layers.map((l) => l.name)).not.toContain('fc_dropout');
    const x = ids([[3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14]]);
    const inference = predict(model, x);
    expect(predict(model, x)).toEqual(inference);
    // Seeded, so the dropout masks (half of 4 × 32 units) are fixed: no flaky coincidence.
    const training = withSeed(3, () => tf.tidy(() => (model.apply(x, { training: true }) as tf.Tensor).arraySync() as number[][]));
    expect(training).not.toEqual(inference);
    x.dispose();
  });

  it.each([
    [{ vocabSize: 2 }, /vocabSize must be an integer ≥ 3.*PAD, UNK and MASK/],
    [{ vocabSize: 10.5 }, /vocabSize/],
    [{ numClasses: 1 }, /numClasses must be an integer ≥ 2/],
    [{ hiddenUnits: 0 }, /hiddenUnits/],
    [{ fcUnits: -3 }, /fcUnits/],
    [{ embeddingDim: Number.NaN }, /embeddingDim/],
    [{ dropout: 1 }, /dropout must be in \[0, 1\)/],
    [{ dropout: -0.1 }, /dropout/],
    [{ pooling: 'mean' }, /pooling must be one of 'last', 'max'/],
    [{ cell: 'gru' }, /cell must be one of/],
    [{ hiddenSize: 150 }, /unknown BiLSTM student option 'hiddenSize'/],
    [{ embeddings: { weights: [[1]], mode: 'static' } }, /embeddings.mode must be one of/],
  ])('rejects %j with INVALID_OPTION', (bad, message) => {
    const attempt = () => buildBiLstmStudent({ ...SMALL, ...(bad as Partial<BiLstmStudentOptions>) });
    expect(attempt).toThrow(KdConfigError);
    expect(attempt).toThrow(message);
    expect(() => biLstmStudentParamCount({ ...SMALL, ...(bad as Partial<BiLstmStudentOptions>) })).toThrow(KdConfigError);
  });

  describe('save and load', () => {
    const variants: Array<[string, Partial<BiLstmStudentOptions>]> = [
      ['single, last, fast cell', {}],
      ['pair, max, tfjs cell, multichannel', { pair: true, pooling: 'max', cell: 'tfjs', embeddings: { weights: matrix(40, 6, 2), mode: 'multichannel' } }],
      ['single, max, frozen, dropout', { pooling: 'max', dropout: 0.2, embeddings: { weights: matrix(40, 6, 3), mode: 'frozen' } }],
    ];

    function inputsFor(options: Partial<BiLstmStudentOptions>): tf.Tensor[] {
      const a = ids([padded([3, 4, 5, 6], 8), padded([7, 1], 8)]);
      return options.pair ? [a, ids([padded([9, 2], 5), padded([3, 3, 3, 3, 3], 5)])] : [a];
    }

    for (const [label, options] of variants) {
      it(`${label}: tfjs IO handlers round-trip with identical predictions`, async () => {
        const model = build(options, 11);
        let artifacts: tf.io.ModelArtifacts | undefined;
        await model.save(
          tf.io.withSaveHandler(async (saved) => {
            artifacts = saved;
            return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
          }),
        );
        registerKdLayers();
        const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
        const x = inputsFor(options);
        expect(predict(loaded, x)).toEqual(predict(model, x));
        expect(loaded.countParams()).toBe(model.countParams());
        expect(loaded.trainableWeights.length).toBe(model.trainableWeights.length);
        tf.dispose(x);
      });
    }

    it('kd-ts/node saveStudent / loadStudent round-trip with identical predictions', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kd-ts-bilstm-'));
      try {
        for (const [index, [, options]] of variants.entries()) {
          const model = build(options, 12);
          await saveStudent(model, join(dir, String(index)));
          const loaded = await loadStudent(join(dir, String(index)));
          const x = inputsFor(options);
          expect(predict(loaded, x)).toEqual(predict(model, x));
          tf.dispose(x);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
