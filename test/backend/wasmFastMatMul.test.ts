import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KdBackendError, distillationLoss, seededRandom, withSeed } from '../../src/index.js';
import { registerWasmFastMatMul, unregisterWasmFastMatMul } from '../../src/backend/wasmFastMatMul.js';

/**
 * Tolerance. Each output is a float32 sum of k products; the two backends
 * add in different orders, so they differ by about √k·2⁻²⁴·Σ|aᵢbᵢ|
 * (worst case k·2⁻²⁴·Σ|aᵢbᵢ|), i.e. relative to the result's scale, not to
 * each element (an element near 0 comes from cancellation). With inputs in
 * [-1, 1] and k ≤ 800 the largest difference these tests see is 1.2e-6 of
 * the largest expected magnitude. We allow 1e-4 of it (plus 1e-4 absolute):
 * about 80× the observed, and still 1000× below what a wrong index, bias,
 * transpose or activation produces (0.4 to 3 with the stock wasm kernel).
 */
const TOLERANCE = 1e-4;

interface Values {
  shape: number[];
  values: Float32Array;
}

/** Deterministic inputs in [-1, 1]. */
function randomValues(shape: number[], seed: string): Values {
  const random = seededRandom(seed);
  const values = Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => 2 * random() - 1);
  return { shape, values };
}

/** Runs `f` on `backend` with fresh tensors made from `inputs`, and reads its outputs. */
async function runOn(backend: string, inputs: Values[], f: (...tensors: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Promise<Values[]> {
  await tf.setBackend(backend);
  const outputs = tf.tidy(() => {
    const result = f(...inputs.map((v) => tf.tensor(v.values, v.shape)));
    return Array.isArray(result) ? result : [result];
  });
  const read = outputs.map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }));
  tf.dispose(outputs);
  await tf.setBackend('wasm');
  return read;
}

function expectClose(actual: Values[], expected: Values[], label: string): void {
  expect(actual.length, label).toBe(expected.length);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    expect(a.shape, label).toEqual(e.shape);
    const scale = e.values.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
    let worst = 0;
    e.values.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - a.values[j]!))));
    expect(worst, `${label}: max |wasm − cpu| = ${worst} (scale ${scale})`).toBeLessThanOrEqual(TOLERANCE * (1 + scale));
  });
}

/** The same function on wasm (fast kernels registered) and on cpu, compared. */
async function expectSameAsCpu(label: string, inputs: Values[], f: (...tensors: tf.Tensor[]) => tf.Tensor | tf.Tensor[]) {
  const wasm = await runOn('wasm', inputs, f);
  const cpu = await runOn('cpu', inputs, f);
  expectClose(wasm, cpu, label);
}

/** Shapes of op(a) = [m, k] and op(b) = [k, n], stored transposed where flagged, with batch dims. */
function operands(m: number, k: number, n: number, tA: boolean, tB: boolean, batchA: number[], batchB: number[], seed: string) {
  return [
    randomValues([...batchA, ...(tA ? [k, m] : [m, k])], `${seed}/a`),
    randomValues([...batchB, ...(tB ? [n, k] : [k, n])], `${seed}/b`),
  ];
}

const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

/** [m, k, n]: edge shapes, then sizes large enough for every code path. */
const EDGE_SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 7, 5],
  [6, 1, 5],
  [6, 7, 1],
  [1, 7, 1],
  [6, 100, 5], // k > 48: the stock fallback loop's block size
  [40, 30, 20], // above the per-matrix threshold for batches of distinct matrices
];

/** Batch dims of a and b: none, 1, equal, right shared, left shared, rank 4. */
const BATCHES: Array<[number[], number[]]> = [
  [[], []],
  [[1], [1]],
  [[3], [3]],
  [[3], [1]],
  [[3], []],
  [[1], [3]],
  [[], [3]],
  [[2, 3], [2, 3]],
  [[2, 3], []],
  [[2, 3], [1, 1]],
];

describe('registerWasmFastMatMul', () => {
  const stock: Record<string, tf.KernelFunc> = {};
  let prod = false;

  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    // IS_TEST (test/setup.ts) turns on tfjs's per-kernel data-id check. Our kernels pass it
    // (see the leak test), but the engine's check of the fused op's custom gradient fails on
    // wasm with the stock kernels too, so it is on only where stated.
    tf.env().set('IS_TEST', false);
    // Without IS_TEST, PROD keeps tfjs-backend-cpu's "use tfjs-node" banner quiet.
    prod = tf.env().getBool('PROD');
    tf.env().set('PROD', true);
    expect(await tf.setBackend('wasm')).toBe(true);
    for (const name of ['BatchMatMul', '_FusedMatMul']) stock[name] = tf.getKernel(name, 'wasm')!.kernelFunc;
    registerWasmFastMatMul();
  });
  afterEach(() => {
    tf.env().set('IS_TEST', false);
  });
  afterAll(async () => {
    unregisterWasmFastMatMul();
    tf.env().set('PROD', prod);
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('replaces both wasm kernels, is idempotent, and unregister restores the stock ones', () => {
    const fast = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    const fastFused = tf.getKernel('_FusedMatMul', 'wasm')!.kernelFunc;
    expect(fast).not.toBe(stock.BatchMatMul);
    expect(fastFused).not.toBe(stock._FusedMatMul);
    // A second registration would make tfjs warn, which fails the test (test/setup.ts).
    registerWasmFastMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(fast);

    unregisterWasmFastMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(stock.BatchMatMul);
    expect(tf.getKernel('_FusedMatMul', 'wasm')!.kernelFunc).toBe(stock._FusedMatMul);
    unregisterWasmFastMatMul(); // no-op
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(stock.BatchMatMul);
    expect(tf.getKernel('BatchMatMul', 'cpu')!.kernelFunc).not.toBe(fast);

    registerWasmFastMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).not.toBe(stock.BatchMatMul);
  });

  it('throws KdBackendError when the wasm kernels are not registered', () => {
    const transpose = tf.getKernel('Transpose', 'wasm')!;
    unregisterWasmFastMatMul();
    tf.unregisterKernel('Transpose', 'wasm');
    try {
      expect(() => registerWasmFastMatMul()).toThrow(KdBackendError);
    } finally {
      tf.registerKernel(transpose);
      registerWasmFastMatMul();
    }
  });

  it('matches the cpu backend on edge shapes, every transpose combination and batch broadcast', async () => {
    for (const [m, k, n] of EDGE_SHAPES) {
      for (const [tA, tB] of TRANSPOSES) {
        for (const [batchA, batchB] of BATCHES) {
          const label = `${m}×${k}×${n} tA=${tA} tB=${tB} batch ${JSON.stringify(batchA)}·${JSON.stringify(batchB)}`;
          await expectSameAsCpu(label, operands(m, k, n, tA, tB, batchA, batchB, label), (a, b) => tf.matMul(a!, b!, tA, tB));
        }
      }
    }
  });

  it('matches the cpu backend on random shapes', async () => {
    const random = seededRandom('random shapes');
    const size = (max: number) => 1 + Math.floor(random() * max);
    for (let i = 0; i < 40; i++) {
      const [m, k, n] = [size(70), size(90), size(70)];
      const tA = random() < 0.5;
      const tB = random() < 0.5;
      const [batchA, batchB] = BATCHES[Math.floor(random() * BATCHES.length)]!;
      const label = `random #${i}: ${m}×${k}×${n} tA=${tA} tB=${tB} batch ${JSON.stringify(batchA)}·${JSON.stringify(batchB)}`;
      await expectSameAsCpu(label, operands(m, k, n, tA, tB, batchA, batchB, label), (a, b) => tf.matMul(a!, b!, tA, tB));
    }
  });

  it('matches the cpu backend on the Dense layer products at full size', async () => {
    const x = randomValues([128, 784], 'x');
    const w = randomValues([784, 800], 'w');
    const dy = randomValues([128, 800], 'dy');
    await expectSameAsCpu('x·W', [x, w], (a, b) => tf.matMul(a!, b!));
    await expectSameAsCpu('xᵀ·dy', [x, dy], (a, b) => tf.matMul(a!, b!, true, false));
    await expectSameAsCpu('dy·Wᵀ', [dy, w], (a, b) => tf.matMul(a!, b!, false, true));
  });

  it('is not fooled by a reshaped right operand (stock wasm caches XNNPACK operators by data id)', async () => {
    const inputs = [randomValues([6, 4], 'w'), randomValues([2, 6], 'x1'), randomValues([2, 4], 'x2')];
    await expectSameAsCpu('x·W then x·reshape(W)', inputs, (w, x1, x2) => {
      const first = tf.matMul(x1!, w!); // XNNPACK packs W as 6×4, cached under W's data id
      const second = tf.matMul(x2!, tf.reshape(w!, [4, 6])); // same data id, 4×6
      const fused = tf.fused.matMul({ a: x2!, b: tf.reshape(w!, [4, 6]), activation: 'relu' });
      return [first, second, fused];
    });
  });

  it('returns zeros for k = 0 and empty outputs for m = 0', async () => {
    await expectSameAsCpu('k=0', [randomValues([3, 0], 'a'), randomValues([0, 4], 'b')], (a, b) => tf.matMul(a!, b!));
    await expectSameAsCpu('m=0', [randomValues([0, 3], 'a'), randomValues([3, 4], 'b')], (a, b) => tf.matMul(a!, b!));
  });

  const ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'leakyrelu', 'prelu', 'sigmoid'] as const;

  it('keeps _FusedMatMul semantics: bias of any broadcastable shape, every activation', async () => {
    const [m, k, n] = [6, 100, 5];
    const biasShapes: Array<number[] | null> = [null, [n], [1, n], [m, n], [1, m, n], [m, 1], []];
    for (const [tA, tB] of TRANSPOSES) {
      for (const activation of ACTIVATIONS) {
        for (const biasShape of biasShapes) {
          const label = `fused tA=${tA} tB=${tB} ${activation} bias ${JSON.stringify(biasShape)}`;
          const inputs = operands(m, k, n, tA, tB, [], [], label);
          if (biasShape !== null) inputs.push(randomValues(biasShape, `${label}/bias`));
          const prelu = randomValues([n], `${label}/prelu`);
          await expectSameAsCpu(label, [...inputs, prelu], (a, b, ...rest) =>
            tf.fused.matMul({
              a: a!,
              b: b!,
              transposeA: tA,
              transposeB: tB,
              bias: biasShape === null ? undefined : rest[0],
              activation,
              preluActivationWeights: activation === 'prelu' ? rest[rest.length - 1] : undefined,
              leakyreluAlpha: 0.3,
            }),
          );
        }
      }
    }
  });

  it('keeps _FusedMatMul semantics for batches and PReLU weights of any broadcastable shape', async () => {
    const [m, k, n] = [6, 60, 5];
    for (const [batchA, batchB] of BATCHES) {
      for (const preluShape of [[n], [m, n], [m, 1], [1]]) {
        const label = `fused batch ${JSON.stringify(batchA)}·${JSON.stringify(batchB)} prelu ${JSON.stringify(preluShape)}`;
        const inputs = [...operands(m, k, n, false, true, batchA, batchB, label), randomValues([n], 'bias'), randomValues(preluShape, 'alpha')];
        await expectSameAsCpu(label, inputs, (a, b, bias, alpha) =>
          tf.fused.matMul({ a: a!, b: b!, transposeB: true, bias, activation: 'prelu', preluActivationWeights: alpha }),
        );
      }
      const label = `fused batch ${JSON.stringify(batchA)}·${JSON.stringify(batchB)} relu`;
      const inputs = [...operands(m, k, n, true, false, batchA, batchB, label), randomValues([n], 'bias')];
      await expectSameAsCpu(label, inputs, (a, b, bias) => tf.fused.matMul({ a: a!, b: b!, transposeA: true, bias, activation: 'relu' }));
    }
  });

  it('matches the cpu backend on gradients of tf.matMul', async () => {
    // tfjs-core's BatchMatMul gradient does not reduce broadcast batch dims (on any backend): equal batches only.
    for (const [tA, tB] of TRANSPOSES) {
      for (const batch of [[], [1], [3], [2, 3]]) {
        const label = `grad tA=${tA} tB=${tB} batch ${JSON.stringify(batch)}`;
        const inputs = [...operands(20, 30, 10, tA, tB, batch, batch, label), randomValues([...batch, 20, 10], 'dy')];
        await expectSameAsCpu(label, inputs, (a, b, dy) => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, tA, tB))([a!, b!], dy));
      }
    }
  });

  it('matches the cpu backend on gradients of a Dense layer', async () => {
    for (const activation of ['relu', 'linear', 'sigmoid'] as const) {
      const inputs = [randomValues([32, 50], 'x'), randomValues([50, 40], 'kernel'), randomValues([40], 'bias')];
      await expectSameAsCpu(`Dense ${activation}`, inputs, (x, kernel, bias) => {
        const layer = tfl.layers.dense({ units: 40, activation, inputShape: [50] });
        layer.apply(x!);
        layer.setWeights([kernel!, bias!]);
        const loss = () => tf.sum(tf.square(layer.apply(x!) as tf.Tensor)) as tf.Scalar;
        const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads } = tf.variableGrads(loss, variables);
        const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.square(layer.apply(input) as tf.Tensor)))(x!);
        const out = [value, ...variables.map((v) => grads[v.name]!), dx];
        layer.dispose();
        return out;
      });
    }
  });

  it('trains a student like the cpu backend does (5 SGD steps of a KD loss)', async () => {
    // SGD, not Adam: Adam divides by √v and would magnify rounding in near-zero gradients.
    const inputs = [randomValues([64, 30], 'x'), randomValues([64, 5], 'teacher logits')];
    await expectSameAsCpu('KD training', inputs, (x, teacherLogits) => {
      const student = withSeed(0, () =>
        tfl.sequential({
          layers: [tfl.layers.dense({ units: 40, activation: 'relu', inputShape: [30] }), tfl.layers.dense({ units: 5 })],
        }),
      );
      const optimizer = tf.train.sgd(0.1);
      const losses = [];
      for (let step = 0; step < 5; step++) {
        losses.push(optimizer.minimize(() => distillationLoss(student.apply(x!) as tf.Tensor, teacherLogits!, { temperature: 2 }), true)!);
      }
      const weights = student.getWeights().map((w) => tf.clone(w));
      student.dispose();
      optimizer.dispose();
      return [tf.stack(losses), ...weights];
    });
  });

  it('leaks no data ids and passes tfjs per-kernel leak check', () => {
    tf.env().set('IS_TEST', true); // every kernel call now checks its own data ids
    const backend = tf.engine().backend;
    const run = () => {
      for (const [m, k, n] of EDGE_SHAPES) {
        for (const [tA, tB] of TRANSPOSES) {
          for (const [batchA, batchB] of BATCHES) {
            tf.tidy(() => {
              const [a, b] = operands(m, k, n, tA, tB, batchA, batchB, 'leaks').map((v) => tf.tensor(v.values, v.shape));
              const product = { a: a!, b: b!, transposeA: tA, transposeB: tB };
              tf.matMul(a!, b!, tA, tB);
              tf.fused.matMul({ ...product, bias: tf.ones([n]), activation: 'relu' }); // fused by the stock kernel
              tf.fused.matMul({ ...product, bias: tf.ones([m, n]), activation: 'prelu', preluActivationWeights: tf.ones([m, 1]) });
            });
          }
        }
      }
    };
    run(); // warm-up: nothing should stay, but measure from a settled state anyway
    const dataIds = backend.numDataIds();
    const tensors = tf.memory().numTensors;
    run();
    expect(backend.numDataIds()).toBe(dataIds);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
