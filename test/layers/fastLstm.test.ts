import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bidirectionalFastLstm, FastLSTM, fastLstm, type FastLstmArgs } from '../../src/layers/fastLstm.js';
import { registerKdLayers } from '../../src/layers/register.js';
import { canRunLstmInference } from '../../src/layers/lstmInference.js';
import { KdConfigError } from '../../src/errors.js';
import { withSeed } from '../../src/distill/seed.js';

const BATCH = 5;
const STEPS = 6;
const FEATURES = 4;
const UNITS = 7;
/** Post-padded rows: full, partial, one step, empty, nearly full. */
const LENGTHS = [6, 3, 1, 0, 5];

type Options = Pick<FastLstmArgs, 'returnSequences' | 'goBackwards' | 'recurrentActivation' | 'useBias'>;

/** Largest |a - b|, against tolerance × max(1, largest |b|). */
function expectClose(actual: tf.Tensor, expected: tf.Tensor, tolerance = 1e-5): void {
  expect(actual.shape).toEqual(expected.shape);
  const [diff, scale] = tf.tidy(() => [
    tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]!,
    tf.max(tf.abs(expected)).dataSync()[0]!,
  ]);
  expect(diff).toBeLessThanOrEqual(tolerance * Math.max(1, scale!));
}

function paddingMask(lengths: number[], steps: number): tf.Tensor2D {
  return tf.tensor2d(
    lengths.map((length) => Array.from({ length: steps }, (_, t) => (t < length ? 1 : 0))),
    [lengths.length, steps],
    'bool',
  );
}

/** A tfjs LSTM and a FastLSTM with the same (random, bias included) weights, both built. */
function twinLayers(options: Options, seed: number) {
  return withSeed(seed, () => {
    const reference = tfl.layers.lstm({ units: UNITS, recurrentInitializer: 'glorotUniform', ...options });
    const fast = new FastLSTM({ units: UNITS, ...options });
    const probe = tfl.input({ shape: [null, FEATURES] });
    reference.apply(probe);
    fast.apply(probe);
    const weights = reference.getWeights().map((w, i) => (i === 2 ? tf.randomNormal(w.shape, 0, 0.5) : tf.clone(w)));
    reference.setWeights(weights);
    fast.setWeights(weights);
    tf.dispose(weights);
    return { reference, fast };
  });
}

/** Output, input gradient and weight gradients of Σ (y² · projection), a scalar that mixes all outputs. */
function outputsAndGradients(layer: tfl.layers.Layer, x: tf.Tensor, kwargs: Record<string, unknown>, projection: tf.Tensor) {
  const loss = (input: tf.Tensor) =>
    tf.sum(tf.mul(tf.square(layer.apply(input, kwargs) as tf.Tensor), projection)) as tf.Scalar;
  const output = layer.apply(x, kwargs) as tf.Tensor;
  const dx = tf.grad(loss)(x);
  const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => loss(x), variables);
  value.dispose();
  return { output, dx, dWeights: variables.map((v) => grads[v.name]!) };
}

function expectSameAsReference(
  reference: tfl.layers.Layer,
  fast: tfl.layers.Layer,
  x: tf.Tensor,
  kwargs: Record<string, unknown>,
  tolerance = 1e-5,
) {
  tf.tidy(() => {
    const expectedShape = reference.apply(x, kwargs) as tf.Tensor;
    const projection = tf.randomNormal(expectedShape.shape, 0, 1, 'float32', 3);
    const expected = outputsAndGradients(reference, x, kwargs, projection);
    const actual = outputsAndGradients(fast, x, kwargs, projection);
    expectClose(actual.output, expected.output, tolerance);
    expectClose(actual.dx, expected.dx, tolerance);
    expect(actual.dWeights).toHaveLength(expected.dWeights.length);
    actual.dWeights.forEach((grad, i) => expectClose(grad, expected.dWeights[i]!, tolerance));
  });
}

const CASES: Array<Options & { masked: boolean }> = [];
for (const returnSequences of [false, true])
  for (const goBackwards of [false, true])
    for (const recurrentActivation of ['hardSigmoid', 'sigmoid'] as const)
      for (const masked of [false, true]) CASES.push({ returnSequences, goBackwards, recurrentActivation, masked });

describe('FastLSTM matches tfjs LSTM (cpu)', () => {
  it.each(CASES)(
    'forward and gradients: returnSequences $returnSequences, goBackwards $goBackwards, $recurrentActivation, masked $masked',
    ({ masked, ...options }) => {
      const { reference, fast } = twinLayers(options, 11);
      const x = tf.randomNormal([BATCH, STEPS, FEATURES], 0, 1, 'float32', 5);
      const mask = masked ? paddingMask(LENGTHS, STEPS) : null;
      expectSameAsReference(reference, fast, x, mask === null ? {} : { mask });
      tf.dispose(mask === null ? [x] : [x, mask]);
    },
  );

  it('without a bias', () => {
    const { reference, fast } = twinLayers({ useBias: false, returnSequences: true }, 12);
    expect(fast.weights).toHaveLength(2);
    const x = tf.randomNormal([BATCH, STEPS, FEATURES], 0, 1, 'float32', 13);
    const mask = paddingMask(LENGTHS, STEPS);
    expectSameAsReference(reference, fast, x, { mask });
    tf.dispose([x, mask]);
  });

  it('takes a single time step (tfjs LSTM\'s own gradient fails there: compared on 2 steps, the second masked)', () => {
    const { reference, fast } = twinLayers({}, 14);
    tf.tidy(() => {
      const x = tf.randomNormal([BATCH, 1, FEATURES], 0, 1, 'float32', 15);
      const twoSteps = tf.concat([x, tf.zeros([BATCH, 1, FEATURES])], 1);
      const mask = paddingMask(new Array<number>(BATCH).fill(1), 2);
      const projection = tf.randomNormal([BATCH, UNITS], 0, 1, 'float32', 16);
      const expected = outputsAndGradients(reference, twoSteps, { mask }, projection);
      const actual = outputsAndGradients(fast, x, {}, projection);
      expectClose(actual.output, expected.output);
      expectClose(actual.dx, tf.slice(expected.dx, [0, 0, 0], [BATCH, 1, FEATURES]));
      actual.dWeights.forEach((grad, i) => expectClose(grad, expected.dWeights[i]!));
    });
  });

  it('has tfjs LSTM weight names, shapes and order; setWeights takes an LSTM\'s weights', () => {
    const reference = tfl.layers.lstm({ units: UNITS, recurrentInitializer: 'glorotUniform', name: 'enc' });
    const fast = new FastLSTM({ units: UNITS, name: 'enc' });
    const probe = tfl.input({ shape: [null, FEATURES] });
    reference.apply(probe);
    fast.apply(probe);
    const describeWeights = (layer: tfl.layers.Layer) => layer.weights.map((w) => [w.originalName, w.shape]);
    expect(describeWeights(fast)).toEqual(describeWeights(reference));
    expect(describeWeights(fast)).toEqual([
      ['enc/kernel', [FEATURES, 4 * UNITS]],
      ['enc/recurrent_kernel', [UNITS, 4 * UNITS]],
      ['enc/bias', [4 * UNITS]],
    ]);
  });

  it('inside Bidirectional (concat), with masks: outputs and gradients of both directions', () => {
    for (const returnSequences of [false, true]) {
      const { reference, fast } = withSeed(21, () => ({
        reference: tfl.layers.bidirectional({
          layer: tfl.layers.lstm({ units: UNITS, recurrentInitializer: 'glorotUniform', recurrentActivation: 'sigmoid', returnSequences }),
          mergeMode: 'concat',
        }),
        fast: bidirectionalFastLstm({ units: UNITS, recurrentActivation: 'sigmoid', returnSequences, mergeMode: 'concat' }),
      }));
      const probe = tfl.input({ shape: [null, FEATURES] });
      reference.apply(probe);
      fast.apply(probe);
      const weights = reference.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.5, 'float32', 4));
      reference.setWeights(weights);
      fast.setWeights(weights);
      const x = tf.randomNormal([BATCH, STEPS, FEATURES], 0, 1, 'float32', 6);
      const mask = paddingMask(LENGTHS, STEPS);
      expect(fast.trainableWeights).toHaveLength(6);
      expectSameAsReference(reference, fast, x, { mask });
      tf.dispose([x, mask, ...weights]);
    }
  });
});

/** Embedding(maskZero) → Bidirectional(rnn, concat) → Dense: the Tang et al. student, small. */
function textStudent(rnn: () => tfl.layers.Layer, seed: number): tfl.Sequential {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.embedding({ inputDim: 50, outputDim: 8, maskZero: true, inputShape: [null] }),
        tfl.layers.bidirectional({ layer: rnn() as tfl.RNN, mergeMode: 'concat' }),
        tfl.layers.dense({ units: 3 }),
      ],
    }),
  );
}

const fastRnn = () => new FastLSTM({ units: 6, recurrentActivation: 'sigmoid' });
const sentence = [5, 12, 7, 3, 9, 41, 2];
const padded = (ids: number[], length: number) => [...ids, ...new Array<number>(length - ids.length).fill(0)];

describe('FastLSTM in a masked text student', () => {
  it('gives the same logits for a sentence unpadded, padded to 16 and to 64, and the same as tfjs LSTM', () => {
    const student = textStudent(fastRnn, 1);
    const reference = textStudent(
      () => tfl.layers.lstm({ units: 6, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform' }),
      2,
    );
    reference.setWeights(student.getWeights());
    tf.tidy(() => {
      const unpadded = student.predict(tf.tensor2d([sentence], undefined, 'int32')) as tf.Tensor;
      for (const length of [16, 64]) {
        const ids = tf.tensor2d([padded(sentence, length), padded([4, 8], length)], undefined, 'int32');
        const logits = student.predict(ids) as tf.Tensor;
        expectClose(tf.slice(logits, [0, 0], [1, 3]), unpadded);
        expectClose(logits, reference.predict(ids) as tf.Tensor);
      }
    });
  });

  it('survives a save/load round trip through tf.io handlers and loadLayersModel', async () => {
    const student = textStudent(() => new FastLSTM({ units: 6, goBackwards: false, unitForgetBias: true }), 3);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await student.save(
      tf.io.withSaveHandler(async (saved) => {
        artifacts = saved;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    expect(registerKdLayers()).toContain('kd>FastLSTM');
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    const bidirectional = loaded.layers[1] as unknown as { forwardLayer: FastLSTM; backwardLayer: FastLSTM };
    expect(bidirectional.forwardLayer).toBeInstanceOf(FastLSTM);
    expect(bidirectional.backwardLayer.goBackwards).toBe(true);
    expect(bidirectional.forwardLayer.getConfig()).toMatchObject({
      units: 6,
      recurrentActivation: 'hardSigmoid',
      unitForgetBias: true,
      recurrentInitializer: { className: 'Orthogonal' },
    });
    expect(loaded.weights.map((w) => w.originalName)).toEqual(student.weights.map((w) => w.originalName));
    tf.tidy(() => {
      const ids = tf.tensor2d([padded(sentence, 10), padded([4, 8, 1], 10)], undefined, 'int32');
      const before = (student.predict(ids) as tf.Tensor).dataSync();
      expect(Array.from((loaded.predict(ids) as tf.Tensor).dataSync())).toEqual(Array.from(before));
    });
  });

  it('leaks no tensors over 21 training steps (baseline after the first)', () => {
    const student = textStudent(fastRnn, 4);
    const optimizer = tf.train.adam(0.01);
    const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
    const ids = tf.tensor2d([padded(sentence, 9), padded([4, 8, 1], 9), padded([6], 9)], undefined, 'int32');
    const targets = tf.tensor2d([[1, -1, 0], [0, 2, -1], [-2, 0, 1]]);
    const step = () =>
      tf.tidy(() => {
        const loss = optimizer.minimize(
          () => tf.mean(tf.squaredDifference(student.apply(ids, { training: true }) as tf.Tensor, targets)) as tf.Scalar,
          true,
          variables,
        );
        return loss!.dataSync()[0]!;
      });
    const first = step();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    let last = first;
    for (let i = 0; i < 20; i++) {
      last = step();
      expect(tf.memory().numTensors).toBe(tensors);
      expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    }
    expect(last).toBeLessThan(first);
    // Inference (no tape: nothing saved) leaks nothing either.
    for (let i = 0; i < 3; i++) tf.tidy(() => {
      student.predict(ids);
    });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    // The kernel leak check that the op suspends is back on.
    expect(tf.env().getBool('IS_TEST')).toBe(true);
    tf.dispose([ids, targets]);
    optimizer.dispose();
  });

  it('trains with tfjs\'s own model.fit', async () => {
    const student = textStudent(fastRnn, 5);
    student.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const ids = tf.tensor2d([padded(sentence, 9), padded([4, 8, 1], 9)], undefined, 'int32');
    const targets = tf.tensor2d([[1, -1, 0], [0, 2, -1]]);
    const history = await student.fit(ids, targets, { epochs: 5, batchSize: 2, verbose: 0 });
    const loss = history.history.loss as number[];
    expect(loss[4]).toBeLessThan(loss[0]!);
    tf.dispose([ids, targets]);
  });
});

describe('FastLSTM options', () => {
  it('defaults to an orthogonal recurrent kernel without the umbrella package, quietly', () => {
    const layer = fastLstm({ units: 40 });
    layer.apply(tfl.input({ shape: [null, 3] }));
    tf.tidy(() => {
      const recurrent = layer.getWeights()[1]!;
      expect(recurrent.shape).toEqual([40, 160]);
      // [u, 4u] with orthonormal rows: U·Uᵀ = I.
      expectClose(tf.matMul(recurrent, tf.transpose(recurrent)), tf.eye(40), 1e-5);
    });
    expect(layer.getConfig()).toMatchObject({
      recurrentActivation: 'hardSigmoid',
      // tfjs serializes GlorotNormal as VarianceScaling, as Keras does.
      kernelInitializer: { className: 'VarianceScaling', config: { mode: 'fanAvg', distribution: 'normal' } },
      recurrentInitializer: { className: 'Orthogonal' },
      biasInitializer: { className: 'Zeros' },
    });
  });

  it('sets the forget-gate bias to 1 with unitForgetBias', () => {
    const layer = new FastLSTM({ units: 3, unitForgetBias: true, biasInitializer: 'zeros' });
    layer.apply(tfl.input({ shape: [null, 2] }));
    expect(Array.from(layer.getWeights()[2]!.dataSync())).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('is built from a tfjs LSTM\'s config, as Bidirectional clones it', () => {
    const lstmConfig = tfl.layers.lstm({ units: 5, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform' }).getConfig();
    const layer = new FastLSTM(lstmConfig as unknown as FastLstmArgs);
    expect(layer.getConfig()).toMatchObject({
      units: 5,
      recurrentActivation: 'sigmoid',
      recurrentInitializer: { className: 'VarianceScaling', config: { mode: 'fanAvg', distribution: 'uniform' } },
    });
    const clone = new FastLSTM(layer.getConfig() as unknown as FastLstmArgs);
    expect(clone.getConfig()).toEqual({ ...layer.getConfig(), name: clone.name });
  });

  it.each([
    [{ dropout: 0.2 }, /dropout/],
    [{ recurrentDropout: 0.1 }, /recurrentDropout/],
    [{ returnState: true }, /returnState/],
    [{ stateful: true }, /stateful/],
    [{ activation: 'relu' }, /activation 'tanh' only/],
    [{ recurrentActivation: 'tanh' }, /recurrentActivation/],
    [{ kernelRegularizer: tfl.regularizers.l2() }, /kernelRegularizer/],
    [{ units: 0 }, /positive integer/],
    [{ kernelInitializer: 'noSuchInit' }, /unknown initializer/],
  ])('rejects %o', (options, message) => {
    const create = () => new FastLSTM({ units: 4, ...options } as unknown as FastLstmArgs);
    expect(create).toThrow(KdConfigError);
    expect(create).toThrow(message);
  });

  it('rejects initial states at call time', () => {
    const layer = new FastLSTM({ units: 2 });
    layer.apply(tfl.input({ shape: [null, 3] }));
    const x = tf.zeros([1, 2, 3]);
    expect(() => layer.apply(x, { initialState: [tf.zeros([1, 2]), tf.zeros([1, 2])] })).toThrow(/initialState/);
    x.dispose();
  });
});

describe('FastLSTM on wasm (smoke test)', () => {
  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    // See test/backend/wasm.test.ts: IS_TEST's per-kernel data-id check trips on wasm's fused matMul (Dense).
    tf.env().set('IS_TEST', false);
    expect(await tf.setBackend('wasm')).toBe(true);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  // Sigmoid gates take the full-width path on wasm (lstmFullWidth.ts), hardSigmoid the general one.
  it.each(CASES)(
    'matches tfjs LSTM on wasm: returnSequences $returnSequences, goBackwards $goBackwards, $recurrentActivation, masked $masked',
    ({ masked, ...options }) => {
      expect(tf.getBackend()).toBe('wasm');
      const { reference, fast } = twinLayers(options, 31);
      const x = tf.randomNormal([BATCH, STEPS, FEATURES], 0, 1, 'float32', 7);
      const mask = masked ? paddingMask(LENGTHS, STEPS) : null;
      expectSameAsReference(reference, fast, x, mask === null ? {} : { mask }, 1e-4);
      tf.dispose(mask === null ? [x] : [x, mask]);
    },
  );

  it('matches tfjs LSTM on wasm at 160 × 12: four weight-gradient blocks, tanh as 2σ(2x) − 1 (over 1,024 elements)', () => {
    const { reference, fast } = twinLayers({ recurrentActivation: 'sigmoid', goBackwards: true }, 33);
    const x = tf.randomNormal([160, 12, FEATURES], 0, 1, 'float32', 9);
    expectSameAsReference(reference, fast, x, {}, 1e-4);
    x.dispose();
  });

  // Inference (no tape) up to 24 rows runs the whole recurrence in one WebAssembly call (lstmInference.ts), above it the tfjs path.
  it.each([
    [1, false, false],
    [3, true, true],
    [24, true, false],
    [25, true, true],
  ])('inference at batch %i (masked %s, goBackwards %s), 150 units as in Tang et al.: the outputs of the training path', (batch, masked, goBackwards) => {
    const layer = withSeed(40, () => new FastLSTM({ units: 150, returnSequences: true, goBackwards, recurrentActivation: 'sigmoid' }));
    layer.apply(tfl.input({ shape: [null, 20] }));
    tf.tidy(() => {
      const x = tf.randomNormal([batch, 10, 20], 0, 1, 'float32', 41);
      const kwargs = masked ? { mask: paddingMask(Array.from({ length: batch }, (_, i) => (i * 3) % 11), 10) } : {};
      const inference = layer.apply(x, kwargs) as tf.Tensor;
      let recorded: tf.Tensor | undefined;
      tf.grad((input: tf.Tensor) => {
        recorded = tf.keep(layer.apply(input, kwargs) as tf.Tensor);
        return tf.sum(recorded);
      })(x);
      expectClose(inference, recorded!, 1e-5);
      expect(tf.max(tf.abs(inference)).dataSync()[0]).toBeGreaterThan(0.1);
      recorded!.dispose();
    });
    layer.dispose();
  });

  it('keeps the tfjs path where the inference kernel would not fit or does not apply', () => {
    tf.tidy(() => {
      const small = tf.zeros([2, 5, 3]) as tf.Tensor3D;
      expect(canRunLstmInference(small, 150, null)).toBe(true);
      expect(canRunLstmInference(small, 150, tf.ones([2, 5]))).toBe(true);
      expect(canRunLstmInference(tf.zeros([25, 5, 3]) as tf.Tensor3D, 150, null)).toBe(false); // above 24 rows
      expect(canRunLstmInference(tf.zeros([24, 2000, 1]) as tf.Tensor3D, 512, null)).toBe(false); // above 64 MiB of kernel memory
      expect(canRunLstmInference(small, 150, tf.ones([2, 5, 2]))).toBe(false); // not a [batch, time] mask
    });
  });

  it('matches tfjs LSTM on wasm without a bias (full-width path)', () => {
    const { reference, fast } = twinLayers({ useBias: false, returnSequences: true, recurrentActivation: 'sigmoid' }, 32);
    const x = tf.randomNormal([BATCH, STEPS, FEATURES], 0, 1, 'float32', 8);
    expectSameAsReference(reference, fast, x, {}, 1e-4);
    x.dispose();
  });

  it('trains a pre-embedded BiLSTM student without leaks', () => {
    const student = withSeed(8, () =>
      tfl.sequential({
        layers: [
          tfl.layers.bidirectional({ layer: fastRnn() as unknown as tfl.RNN, mergeMode: 'concat', inputShape: [null, 8] }),
          tfl.layers.dense({ units: 3 }),
        ],
      }),
    );
    const optimizer = tf.train.adam(0.01);
    const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.randomNormal([4, 9, 8], 0, 1, 'float32', 9);
    const targets = tf.randomNormal([4, 3], 0, 1, 'float32', 10);
    const step = () =>
      tf.tidy(() => {
        const loss = optimizer.minimize(
          () => tf.mean(tf.squaredDifference(student.apply(x, { training: true }) as tf.Tensor, targets)) as tf.Scalar,
          true,
          variables,
        );
        return loss!.dataSync()[0]!;
      });
    const first = step();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    let last = first;
    for (let i = 0; i < 10; i++) last = step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(first);
    tf.dispose([x, targets]);
    optimizer.dispose();
  });
});
