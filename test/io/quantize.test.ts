/**
 * kd-ts's quantizing encoder for tfjs's weight format: bit-exact float16
 * against NumPy, affine uint8/uint16 against tfjs's own decoder, what is kept
 * in float32, sizes, stock-tfjs round trips and prediction agreement for an
 * MLP and the BiLSTM student, corrupt entries, and leaks.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { KdConfigError, KdDataError, buildBiLstmStudent, withSeed } from '../../src/index.js';
import { checkWeightSpecs, float16Bits, quantizeArtifacts, quantizeWeights, withQuantization, type WeightQuantization } from '../../src/io/quantize.js';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/float16.json', import.meta.url), 'utf8')) as { values: number[]; bits: number[] };

/** The artifacts `model.save` hands an IOHandler. */
async function artifactsOf(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return saved!;
}

/** Saves through `withQuantization` into memory and loads the result back with stock tfjs. */
async function quantizedCopy(model: tfl.LayersModel, dtype: WeightQuantization): Promise<{ copy: tfl.LayersModel; artifacts: tf.io.ModelArtifacts }> {
  let stored: tf.io.ModelArtifacts | undefined;
  const memory = tf.io.withSaveHandler(async (artifacts) => {
    stored = artifacts;
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  });
  await model.save(withQuantization(memory, { dtype }));
  return { copy: await tfl.loadLayersModel(tf.io.fromMemory(stored!)), artifacts: stored! };
}

function agreement(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(a, -1), tf.argMax(b, -1)), 'float32')).dataSync()[0]!);
}

function weightBytes(artifacts: tf.io.ModelArtifacts): number {
  return tf.io.CompositeArrayBuffer.join(artifacts.weightData!).byteLength;
}

function mlp(): tfl.Sequential {
  return withSeed(5, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 128, activation: 'relu', inputShape: [256] }),
        tfl.layers.dense({ units: 64, activation: 'relu' }),
        tfl.layers.dense({ units: 10 }),
      ],
    }),
  );
}

describe('float16 encoding', () => {
  it('gives the bits NumPy gives (round to nearest, ties to even, subnormals, overflow to infinity)', () => {
    const ours = fixture.values.map((v) => float16Bits(Math.fround(v)));
    expect(ours).toEqual(fixture.bits);
    expect(fixture.bits.filter((b) => (b & 0x7c00) === 0 && (b & 0x3ff) !== 0).length).toBeGreaterThan(5); // subnormals covered
  });

  it('decodes through tfjs to the nearest half of each value; a tensor beyond ±65504 stays float32', async () => {
    const values = Float32Array.from(fixture.values.filter((v) => Math.abs(v) <= 65504));
    const big = Float32Array.from([1, -2, 70000]);
    const { data, specs } = await tf.io.encodeWeights([
      { name: 'fits', tensor: tf.tensor1d(values) },
      { name: 'big', tensor: tf.tensor1d(big) },
    ]);
    const q = quantizeWeights(specs, data, { dtype: 'float16', minElements: 0 });
    expect(q.weightSpecs.map((s) => s.quantization?.dtype)).toEqual(['float16', undefined]);
    expect(q.summary.weights[1]).toMatchObject({ name: 'big', storedAs: 'float32', kept: 'float16-range', maxAbsError: 0 });
    const decoded = tf.io.decodeWeights(q.weightData, q.weightSpecs);
    const fits = decoded['fits']!.dataSync();
    // Relative error of a normal half is at most 2^-11; subnormal halves are 2^-24 apart.
    values.forEach((v, i) => expect(Math.abs(fits[i]! - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25)));
    expect(q.summary.weights[0]!.maxAbsError).toBe(Math.max(...Array.from(values, (v, i) => Math.abs(fits[i]! - v))));
    expect(Array.from(decoded['big']!.dataSync())).toEqual(Array.from(big));
    tf.dispose(Object.values(decoded));
  });
});

describe('affine uint8 / uint16', () => {
  it('decodes through tfjs within half a step, with 0 exact and the summary error exact', async () => {
    for (const dtype of ['uint8', 'uint16'] as const) {
      const values = withSeed(1, () => tf.randomNormal([4000], 0.1, 0.5));
      const withZeros = tf.concat([values, tf.zeros([50])]);
      const { data, specs } = await tf.io.encodeWeights([{ name: 'w', tensor: withZeros }]);
      const q = quantizeWeights(specs, data, { dtype });
      const { scale, min } = q.weightSpecs[0]!.quantization as { scale: number; min: number };
      const original = withZeros.dataSync();
      const decoded = tf.io.decodeWeights(q.weightData, q.weightSpecs)['w']!;
      const loaded = decoded.dataSync();
      const errors = Array.from(original, (v, i) => Math.abs(loaded[i]! - v));
      expect(Math.max(...errors)).toBe(q.summary.weights[0]!.maxAbsError);
      expect(Math.max(...errors)).toBeLessThanOrEqual(scale / 2 + 1e-6);
      expect(scale).toBeCloseTo((Math.max(...original) - Math.min(...original)) / (dtype === 'uint8' ? 255 : 65535), 10);
      expect(Array.from(loaded.slice(4000))).toEqual(new Array(50).fill(0));
      expect(min).toBeLessThan(0);
      expect(q.weightData.byteLength).toBe(4050 * (dtype === 'uint8' ? 1 : 2));
      tf.dispose([values, withZeros, decoded]);
    }
  });

  it('stores a constant tensor and an all-positive one exactly at their ends', async () => {
    const { data, specs } = await tf.io.encodeWeights([
      { name: 'constant', tensor: tf.fill([2000], 0.25) },
      { name: 'positive', tensor: tf.linspace(1, 2, 2000) },
    ]);
    const q = quantizeWeights(specs, data, { dtype: 'uint8' });
    const decoded = tf.io.decodeWeights(q.weightData, q.weightSpecs);
    expect(new Set(decoded['constant']!.dataSync()).size).toBe(1);
    expect(decoded['constant']!.dataSync()[0]).toBe(0.25);
    const original = (await tf.io.decodeWeights(data, specs))['positive']!;
    const positive = decoded['positive']!.dataSync();
    expect(positive[0]).toBe(original.dataSync()[0]);
    expect(positive[1999]).toBe(original.dataSync()[1999]);
    original.dispose();
    tf.dispose(Object.values(decoded));
  });

  it('keeps int32, bool and small tensors as they are, and says why', async () => {
    const { data, specs } = await tf.io.encodeWeights([
      { name: 'ids', tensor: tf.range(0, 3000, 1, 'int32') },
      { name: 'flags', tensor: tf.tensor1d([1, 0, 1], 'bool') },
      { name: 'bias', tensor: tf.linspace(-1, 1, 64) },
      { name: 'kernel', tensor: tf.linspace(-1, 1, 4096) },
    ]);
    const q = quantizeWeights(specs, data, { dtype: 'uint8' });
    expect(q.summary.weights.map((w) => [w.name, w.storedAs, w.kept])).toEqual([
      ['ids', 'int32', 'not-float32'],
      ['flags', 'bool', 'not-float32'],
      ['bias', 'float32', 'small'],
      ['kernel', 'uint8', undefined],
    ]);
    expect(q.summary.bytesAfter).toBe(3000 * 4 + 3 + 64 * 4 + 4096);
    const decoded = tf.io.decodeWeights(q.weightData, q.weightSpecs);
    expect(Array.from(decoded['ids']!.dataSync())).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    tf.dispose(Object.values(decoded));
    // minElements 0 quantizes the bias too.
    expect(quantizeWeights(specs, data, { dtype: 'uint8', minElements: 0 }).summary.weights[2]!.storedAs).toBe('uint8');
  });

  it('refuses NaN weights, bad options and data that does not match its specs, with typed errors', async () => {
    const { data, specs } = await tf.io.encodeWeights([{ name: 'w', tensor: tf.tensor1d(Float32Array.from({ length: 2000 }, (_, i) => (i === 7 ? NaN : i))) }]);
    expect(() => quantizeWeights(specs, data, { dtype: 'uint8' })).toThrow(expect.objectContaining({ name: 'KdDataError', code: 'NON_FINITE_WEIGHTS' }));
    expect(() => quantizeWeights(specs, data, { dtype: 'int4' as WeightQuantization })).toThrow(KdConfigError);
    expect(() => quantizeWeights(specs, data, { dtype: 'uint8', minElements: -1 })).toThrow(/minElements/);
    expect(() => quantizeWeights(specs, data.slice(0, 100), { dtype: 'uint8' })).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE' }));
  });
});

/** How many classes the model's argmax takes over the rows. */
function classesPredicted(logits: tf.Tensor): number {
  return tf.tidy(() => new Set(tf.argMax(logits, -1).dataSync()).size);
}

describe('withQuantization: save through any IOHandler, load with stock tfjs', () => {
  it('an MLP: uint8 ≤ 30 % and float16/uint16 ≤ 55 % of the float32 bytes, ≥ 95 % of predictions unchanged, no leak', async () => {
    const model = mlp();
    const x = withSeed(2, () => tf.randomNormal([1000, 256]));
    const reference = model.predict(x) as tf.Tensor;
    // Agreement means something only if the float model's answers vary.
    expect(classesPredicted(reference)).toBeGreaterThanOrEqual(6);
    const floatBytes = weightBytes(await artifactsOf(model));
    const before = tf.memory().numTensors;
    for (const [dtype, share] of [['uint8', 0.3], ['uint16', 0.55], ['float16', 0.55]] as const) {
      const { copy, artifacts } = await quantizedCopy(model, dtype);
      expect(weightBytes(artifacts) / floatBytes).toBeLessThanOrEqual(share);
      // The two large kernels; the 64 × 10 output kernel (640 values) and the biases stay float32.
      expect(artifacts.weightSpecs!.filter((s) => s.quantization?.dtype === dtype).map((s) => s.name)).toEqual(['dense_Dense1/kernel', 'dense_Dense2/kernel']);
      const predicted = copy.predict(x) as tf.Tensor;
      expect(agreement(predicted, reference)).toBeGreaterThanOrEqual(0.95);
      if (dtype !== 'uint8') expect(agreement(predicted, reference)).toBeGreaterThanOrEqual(0.995);
      predicted.dispose();
      copy.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, reference]);
  });

  it('the BiLSTM student: every quantization keeps ≥ 95 % of its predictions', async () => {
    const student = withSeed(3, () => buildBiLstmStudent({ vocabSize: 400, numClasses: 4, embeddingDim: 32, hiddenUnits: 24, fcUnits: 32 }));
    const tokens = withSeed(4, () => tf.tidy(() => tf.mul(tf.randomUniform([200, 12], 3, 400, 'int32'), tf.cast(tf.greater(tf.randomUniform([200, 12]), 0.2), 'int32'))));
    const reference = student.predict(tokens) as tf.Tensor;
    expect(classesPredicted(reference)).toBeGreaterThanOrEqual(3);
    const floatBytes = weightBytes(await artifactsOf(student));
    const before = tf.memory().numTensors;
    for (const dtype of ['uint8', 'uint16', 'float16'] as const) {
      const { copy, artifacts } = await quantizedCopy(student, dtype);
      expect(weightBytes(artifacts) / floatBytes).toBeLessThanOrEqual(dtype === 'uint8' ? 0.3 : 0.55);
      const predicted = copy.predict(tokens) as tf.Tensor;
      expect(agreement(predicted, reference)).toBeGreaterThanOrEqual(0.95);
      predicted.dispose();
      copy.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([tokens, reference]);
    student.dispose();
  });

  it('reports what it stored through onQuantized, and leaves the model unchanged', async () => {
    const model = mlp();
    const weights = model.getWeights().map((w) => w.dataSync().slice());
    let summary: unknown;
    const memory = tf.io.withSaveHandler(async (artifacts) => ({ modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) }));
    await model.save(withQuantization(memory, { dtype: 'uint8', onQuantized: (s) => (summary = s) }));
    expect(summary).toMatchObject({ dtype: 'uint8', bytesBefore: (256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10) * 4 });
    expect(model.getWeights().map((w) => w.dataSync())).toEqual(weights);
    model.dispose();
  });

  it('names a corrupt quantization entry with a typed error where stock tfjs loads NaN weights', async () => {
    const model = mlp();
    const { artifacts } = quantizeArtifacts(await artifactsOf(model), { dtype: 'uint8' });
    const corrupt = { ...artifacts, weightSpecs: artifacts.weightSpecs!.map((s, i) => (i === 0 ? { ...s, quantization: { ...s.quantization!, scale: 'x' as unknown as number } } : s)) };
    // Stock tfjs: no error, NaN weights.
    const stock = await tfl.loadLayersModel(tf.io.fromMemory(corrupt));
    expect(Number.isNaN(stock.getWeights()[0]!.dataSync()[0])).toBe(true);
    stock.dispose();
    await expect(tfl.loadLayersModel(withQuantization(tf.io.fromMemory(corrupt), { dtype: 'uint8' }))).rejects.toMatchObject({
      name: 'KdDataError',
      code: 'CORRUPT_FILE',
      message: expect.stringMatching(/weight 'dense_Dense\d+\/kernel'.*scale "x"/),
    });
    const cases: Array<[object, RegExp]> = [
      [{ dtype: 'int4' }, /quantization dtype "int4"/],
      [{ dtype: 'uint8', scale: 0.1 }, /min missing/],
      [{ dtype: 'uint16', scale: -1, min: 0 }, /negative quantization scale/],
    ];
    for (const [quantization, message] of cases) {
      expect(() => checkWeightSpecs([{ name: 'k', shape: [2], dtype: 'float32', quantization } as tf.io.WeightsManifestEntry], 'model.json')).toThrow(message);
    }
    expect(() => checkWeightSpecs([{ name: 'k', shape: [2], dtype: 'int32', quantization: { dtype: 'float16' } }], 'model.json')).toThrow(KdDataError);
    model.dispose();
  });

  it('refuses a URL no tfjs router handles, when saving', async () => {
    const model = mlp();
    await expect(model.save(withQuantization('nowhere://student', { dtype: 'uint8' }))).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(() => withQuantization('nowhere://student', { dtype: 'uint4' as WeightQuantization })).toThrow(KdConfigError);
    model.dispose();
  });
});
