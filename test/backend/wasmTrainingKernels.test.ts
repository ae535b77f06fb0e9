import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmFastMatMul, unregisterWasmFastMatMul } from '../../src/backend/wasmFastMatMul.js';
import { registerWasmTrainingKernels } from '../../src/backend/wasmTrainingKernels.js';
import { Distiller, KdBackendError, withSeed } from '../../src/index.js';
import { sameValues, weightValues } from '../distill/helpers.js';

// Each kernel is run through tf.engine().runKernel on the cpu backend (tfjs's
// stock kernel, the reference) and on wasm (ours), with the same inputs.
// Tolerance: |wasm − cpu| ≤ 1e-4 · max(1, |cpu|); cpu accumulates in float64, XNNPACK in float32.
const TOLERANCE = 1e-4;

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** Deterministic values in [-1, 1) (mulberry32), so both backends see the same inputs. */
function randomValues(size: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return values;
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomValues(tf.util.sizeFromShape(shape), seed), shape);
}

/** Runs `compute` on `backend` and returns the values and shapes of its outputs; disposes everything it made. */
async function runOn(backend: string, compute: () => tf.Tensor | tf.Tensor[]) {
  await tf.setBackend(backend);
  const results = tf.tidy(compute);
  const outputs = (Array.isArray(results) ? results : [results]).map((t) => ({
    shape: t.shape,
    values: Float64Array.from(t.dataSync()),
  }));
  tf.dispose(results);
  return outputs;
}

function expectClose(actual: { shape: number[]; values: Float64Array }[], expected: typeof actual) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    expect(a.shape).toEqual(e.shape);
    let worst = 0;
    a.values.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - e.values[j]!) / Math.max(1, Math.abs(e.values[j]!)));
    });
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });
}

/** Same computation on cpu and on wasm, compared; also checks that wasm freed every intermediate. */
async function expectWasmMatchesCpu(compute: () => tf.Tensor | tf.Tensor[]) {
  const expected = await runOn('cpu', compute);
  await tf.setBackend('wasm');
  const dataIds = tf.engine().backend.numDataIds();
  const tensors = tf.memory().numTensors;
  const actual = await runOn('wasm', compute);
  expect(tf.engine().backend.numDataIds()).toBe(dataIds);
  expect(tf.memory().numTensors).toBe(tensors);
  expectClose(actual, expected);
  return actual;
}

function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
}

/** The filter of a dilated convolution written out with zeros between taps: [(fh−1)·d+1, (fw−1)·d+1, ...]. */
function dilateFilter(filter: tf.Tensor4D, dilation: number): tf.Tensor4D {
  const [fh, fw, c, m] = filter.shape;
  const values = filter.dataSync();
  const eh = (fh - 1) * dilation + 1;
  const ew = (fw - 1) * dilation + 1;
  const out = new Float32Array(eh * ew * c * m);
  for (let h = 0; h < fh; h++) {
    for (let w = 0; w < fw; w++) {
      for (let k = 0; k < c * m; k++) out[((h * dilation * ew + w * dilation) * c * m) + k] = values[(h * fw + w) * c * m + k]!;
    }
  }
  return tf.tensor4d(out, [eh, ew, c, m]);
}

describe('registerWasmTrainingKernels', () => {
  let kernelNames: string[];
  /** tfjs-backend-wasm's own Conv2DBackpropInput, which kd-ts replaces. */
  let stockConv2DBackpropInput: tf.KernelConfig;
  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    stockConv2DBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm')!;
    kernelNames = registerWasmTrainingKernels();
    expect(await tf.setBackend('wasm')).toBe(true);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('registers the missing kernels, the MaxPoolGrad guard and the fast Conv2DBackpropInput, idempotently', () => {
    expect(kernelNames).toEqual([
      'Conv2DBackpropFilter',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'UnsortedSegmentSum',
      'MaxPoolGrad',
      'Conv2DBackpropInput',
    ]);
    const before = kernelNames.map((name) => tf.getKernel(name, 'wasm')!.kernelFunc);
    expect(registerWasmTrainingKernels()).toEqual(kernelNames);
    expect(registerWasmTrainingKernels()).toEqual(kernelNames);
    expect(kernelNames.map((name) => tf.getKernel(name, 'wasm')!.kernelFunc)).toEqual(before);
    // A replaced kernel keeps the stock setup, which binds the C++ function its fallback calls.
    const replaced = tf.getKernel('Conv2DBackpropInput', 'wasm')!;
    expect(replaced.kernelFunc).not.toBe(stockConv2DBackpropInput.kernelFunc);
    expect(replaced.setupFunc).toBe(stockConv2DBackpropInput.setupFunc);
    // The stock kernels it composes are untouched.
    for (const name of ['BatchMatMul', 'Transpose', 'Reshape']) expect(tf.getKernel(name, 'wasm')).toBeDefined();
  });

  it('leaves alone a kernel that the wasm backend already has (a later tfjs)', () => {
    const ours = tf.getKernel('UnsortedSegmentSum', 'wasm')!;
    const stock: tf.KernelFunc = () => {
      throw new Error('not called');
    };
    tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: stock });
    try {
      expect(registerWasmTrainingKernels()).not.toContain('UnsortedSegmentSum');
      expect(tf.getKernel('UnsortedSegmentSum', 'wasm')!.kernelFunc).toBe(stock);
    } finally {
      tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
      tf.registerKernel(ours);
    }
    expect(registerWasmTrainingKernels()).toEqual(kernelNames);
  });

  describe('Conv2DBackpropFilter equals cpu', () => {
    interface Case {
      name: string;
      x: Shape4;
      filter: Shape4;
      strides: number | [number, number];
      pad: Pad;
      rounding?: 'floor' | 'ceil' | 'round';
      format?: 'NHWC' | 'NCHW';
    }
    const cases: Case[] = [
      { name: '3×3, stride 1, same', x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
      { name: '3×3, stride 2, same (odd size: uneven padding)', x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
      { name: '3×3, stride 2, valid', x: [3, 8, 9, 2], filter: [3, 3, 2, 5], strides: 2, pad: 'valid' },
      { name: '1×1 filter', x: [2, 5, 5, 6], filter: [1, 1, 6, 3], strides: 1, pad: 'valid' },
      { name: 'batch 1, channels 1', x: [1, 6, 5, 1], filter: [2, 2, 1, 1], strides: 1, pad: 'valid' },
      { name: 'rectangular filter and strides', x: [2, 9, 8, 2], filter: [2, 3, 2, 3], strides: [1, 2], pad: 'same' },
      { name: 'numeric padding with floor rounding', x: [2, 8, 8, 2], filter: [3, 3, 2, 2], strides: 2, pad: 1, rounding: 'floor' },
      { name: 'explicit padding', x: [2, 6, 6, 2], filter: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
      { name: 'NCHW', x: [2, 3, 6, 5], filter: [3, 3, 3, 2], strides: 2, pad: 'same', format: 'NCHW' },
      { name: 'filter larger than a 1×1 output', x: [2, 3, 3, 2], filter: [3, 3, 2, 2], strides: 1, pad: 'valid' },
    ];
    it.each(cases)('$name', async ({ x, filter, strides, pad, rounding, format = 'NHWC' }) => {
      await expectWasmMatchesCpu(() => {
        const xt = randomTensor(x, 1);
        const layout = format === 'NHWC' ? 'channelsLast' : 'channelsFirst';
        const info = tf.backend_util.computeConv2DInfo(x, filter, strides, 1, pad, rounding, false, layout);
        const dy = randomTensor(info.outShape, 2);
        const attrs = { strides, pad, dataFormat: format, dimRoundingMode: rounding, filterShape: filter };
        return runKernel('Conv2DBackpropFilter', { x: xt, dy }, attrs);
      });
    });

    it('splits a large im2col matrix into row blocks (16 MiB each) with the same result', async () => {
      // rows 5·5·4 = 100, columns 16·64·64 = 65,536: 6.5M elements, two blocks. The cpu
      // kernel takes seconds here, so the reference is a direct float64 loop; small
      // integers keep the 65,536-term sums exact in float32 too.
      const [n, size, channels, taps] = [16, 64, 4, 5];
      const xValues = randomValues(n * size * size * channels, 3).map((v) => Math.round(2 * v));
      const dyValues = randomValues(n * size * size, 4).map((v) => Math.round(2 * v));
      const expected = new Float64Array(taps * taps * channels);
      for (let b = 0; b < n; b++) {
        for (let oh = 0; oh < size; oh++) {
          for (let ow = 0; ow < size; ow++) {
            const g = dyValues[(b * size + oh) * size + ow]!;
            for (let fh = 0; fh < taps; fh++) {
              const ih = oh + fh - 2;
              if (ih < 0 || ih >= size) continue;
              for (let fw = 0; fw < taps; fw++) {
                const iw = ow + fw - 2;
                if (iw < 0 || iw >= size) continue;
                for (let c = 0; c < channels; c++) {
                  const k = (fh * taps + fw) * channels + c;
                  expected[k] = expected[k]! + xValues[((b * size + ih) * size + iw) * channels + c]! * g;
                }
              }
            }
          }
        }
      }
      await tf.setBackend('wasm');
      const dataIds = tf.engine().backend.numDataIds();
      const actual = await runOn('wasm', () =>
        runKernel(
          'Conv2DBackpropFilter',
          { x: tf.tensor4d(xValues, [n, size, size, channels]), dy: tf.tensor4d(dyValues, [n, size, size, 1]) },
          { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [taps, taps, channels, 1] },
        ),
      );
      expect(tf.engine().backend.numDataIds()).toBe(dataIds);
      expectClose(actual, [{ shape: [taps, taps, channels, 1], values: expected }]);
    });
  });

  describe('Conv2DBackpropInput equals cpu', () => {
    interface Case {
      name: string;
      x: Shape4;
      filter: Shape4;
      strides: number | [number, number];
      pad: Pad;
      rounding?: 'floor' | 'ceil' | 'round';
      format?: 'NHWC' | 'NCHW';
    }
    const cases: Case[] = [
      { name: '3×3, stride 1, same', x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
      { name: '3×3, stride 2, same (odd size: uneven padding)', x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
      { name: '4×2 filter, stride 1, same (uneven padding)', x: [2, 6, 5, 3], filter: [4, 2, 3, 2], strides: 1, pad: 'same' },
      { name: '3×3, stride 2, same, even size', x: [2, 8, 6, 3], filter: [3, 3, 3, 2], strides: 2, pad: 'same' },
      { name: '3×3, stride 2, valid (odd size: last row unread)', x: [3, 8, 9, 2], filter: [3, 3, 2, 5], strides: 2, pad: 'valid' },
      { name: 'stride larger than the filter (pixels no window reads)', x: [2, 7, 8, 2], filter: [2, 2, 2, 3], strides: 3, pad: 'valid' },
      { name: '1×1 filter', x: [2, 5, 5, 6], filter: [1, 1, 6, 3], strides: 1, pad: 'valid' },
      { name: '1×1 filter, stride 2', x: [2, 5, 6, 3], filter: [1, 1, 3, 4], strides: 2, pad: 'same' },
      { name: 'batch 1', x: [1, 6, 5, 3], filter: [3, 3, 3, 2], strides: 1, pad: 'same' },
      { name: 'input channels 1', x: [2, 6, 5, 1], filter: [3, 2, 1, 4], strides: 1, pad: 'valid' },
      { name: 'output channels 1', x: [2, 6, 5, 3], filter: [2, 3, 3, 1], strides: 2, pad: 'same' },
      { name: 'batch 1, channels 1', x: [1, 6, 5, 1], filter: [2, 2, 1, 1], strides: 1, pad: 'valid' },
      { name: 'rectangular filter and strides', x: [2, 9, 8, 2], filter: [2, 3, 2, 3], strides: [1, 2], pad: 'same' },
      { name: 'numeric padding with floor rounding', x: [2, 8, 8, 2], filter: [3, 3, 2, 2], strides: 2, pad: 1, rounding: 'floor' },
      { name: 'numeric padding with ceil rounding', x: [2, 9, 7, 2], filter: [3, 3, 2, 3], strides: 2, pad: 2, rounding: 'ceil' },
      { name: 'explicit padding', x: [2, 6, 6, 2], filter: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
      { name: 'explicit padding wider than the filter, stride 1', x: [2, 5, 6, 2], filter: [2, 2, 2, 3], strides: 1, pad: [[0, 0], [2, 0], [0, 3], [0, 0]] },
      { name: 'explicit padding, stride 2', x: [2, 7, 6, 3], filter: [3, 2, 3, 2], strides: 2, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
      { name: 'filter larger than a 1×1 output', x: [2, 3, 3, 2], filter: [3, 3, 2, 2], strides: 1, pad: 'valid' },
      { name: 'NCHW', x: [2, 3, 6, 5], filter: [3, 3, 3, 2], strides: 2, pad: 'same', format: 'NCHW' },
      { name: 'NCHW, channels 1', x: [2, 1, 5, 6], filter: [3, 3, 1, 1], strides: 1, pad: 'valid', format: 'NCHW' },
      { name: 'NCHW, explicit padding', x: [1, 2, 6, 6], filter: [2, 2, 2, 3], strides: 1, pad: [[0, 0], [0, 0], [1, 0], [0, 2]], format: 'NCHW' },
    ];
    it.each(cases)('$name', async ({ x, filter, strides, pad, rounding, format = 'NHWC' }) => {
      await expectWasmMatchesCpu(() => {
        const layout = format === 'NHWC' ? 'channelsLast' : 'channelsFirst';
        const info = tf.backend_util.computeConv2DInfo(x, filter, strides, 1, pad, rounding, false, layout);
        const dy = randomTensor(info.outShape, 25);
        const attrs = { strides, pad, dataFormat: format, dimRoundingMode: rounding, inputShape: x };
        return runKernel('Conv2DBackpropInput', { dy, filter: randomTensor(filter, 26) }, attrs);
      });
    });

    it('splits a large product into row blocks (16 MiB each) with the same result', async () => {
      // Stride 2 takes the product route: rows 16·64·64 = 65,536, columns 5·5·4 = 100:
      // 6.5M elements, two blocks, split inside an image.
      await expectWasmMatchesCpu(() =>
        runKernel(
          'Conv2DBackpropInput',
          { dy: randomTensor([16, 64, 64, 3], 27), filter: randomTensor([5, 5, 4, 3], 28) },
          { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [16, 128, 128, 4] },
        ),
      );
    });

    it('with the fast matMul kernels registered too (as enableWasmTraining does)', async () => {
      registerWasmFastMatMul();
      try {
        for (const strides of [1, 2]) {
          await expectWasmMatchesCpu(() =>
            runKernel(
              'Conv2DBackpropInput',
              { dy: randomTensor([2, 4, 4, 3], 35), filter: randomTensor([3, 3, 5, 3], 36) },
              { strides, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 4 * strides, 4 * strides, 5] },
            ),
          );
        }
      } finally {
        unregisterWasmFastMatMul();
      }
    });

    it('an empty batch', async () => {
      await expectWasmMatchesCpu(() =>
        runKernel(
          'Conv2DBackpropInput',
          { dy: tf.zeros([0, 4, 4, 2]), filter: randomTensor([3, 3, 2, 2], 29) },
          { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [0, 4, 4, 2] },
        ),
      );
    });

    it('conv2dTranspose (whose forward pass it is), and its gradients', async () => {
      await expectWasmMatchesCpu(() => {
        const x = randomTensor([2, 4, 5, 3], 30) as tf.Tensor4D;
        const filter = randomTensor([3, 3, 2, 3], 31) as tf.Tensor4D; // [fh, fw, outDepth, inDepth]
        const weights = randomTensor([2, 8, 10, 2], 32);
        const up = (input: tf.Tensor, kernel: tf.Tensor) =>
          tf.conv2dTranspose(input as tf.Tensor4D, kernel as tf.Tensor4D, [2, 8, 10, 2], 2, 'same');
        const valid = tf.conv2dTranspose(x, filter, [2, 9, 11, 2], 2, 'valid');
        const grads = tf.grads((input: tf.Tensor, kernel: tf.Tensor) => tf.sum(tf.mul(up(input, kernel), weights)))([x, filter]);
        return [up(x, filter), valid, ...grads];
      });
    });

    it('a Conv2DTranspose layer', async () => {
      const layer = withSeed(33, () =>
        tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', inputShape: [5, 5, 3] }),
      );
      const model = tfl.sequential({ layers: [layer] });
      const predict = () => model.predict(randomTensor([2, 5, 5, 3], 34)) as tf.Tensor;
      const expected = await runOn('cpu', predict);
      expectClose(await runOn('wasm', predict), expected); // moves the weights to wasm
      const dataIds = tf.engine().backend.numDataIds();
      expectClose(await runOn('wasm', predict), expected);
      expect(tf.engine().backend.numDataIds()).toBe(dataIds);
      model.dispose();
    });

    describe('hands what it does not take to the stock kernel', () => {
      /** Registers `stand-in` as the stock kernel kd-ts's replaces, and registers kd-ts's again over it. */
      function registerOverStock(standIn: tf.KernelConfig | undefined) {
        tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
        if (standIn !== undefined) tf.registerKernel(standIn);
        expect(registerWasmTrainingKernels()).toEqual(kernelNames);
      }
      afterAll(() => registerOverStock(stockConv2DBackpropInput));

      it('inputs that are not float32, or shapes that do not fit, go to the stock kernel', async () => {
        await tf.setBackend('wasm');
        const calls: string[] = [];
        registerOverStock({
          ...stockConv2DBackpropInput,
          kernelFunc: ({ inputs, backend, attrs }) => {
            calls.push(`${inputs.dy!.dtype} [${inputs.dy!.shape}]`);
            const wasm = backend as unknown as { makeOutput(shape: number[], dtype: string): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
            const out = wasm.makeOutput((attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape, 'float32');
            wasm.typedArrayFromHeap(out).fill(7);
            return out;
          },
        });
        const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [1, 3, 3, 1] };
        const run = (inputs: () => { dy: tf.Tensor; filter: tf.Tensor }) =>
          tf.tidy(() => Array.from(runKernel('Conv2DBackpropInput', inputs(), attrs).dataSync()));
        const dataIds = tf.engine().backend.numDataIds();
        expect(run(() => ({ dy: tf.zeros([1, 3, 3, 1], 'int32'), filter: tf.zeros([3, 3, 1, 1], 'int32') }))).toEqual(Array(9).fill(7));
        expect(run(() => ({ dy: tf.zeros([1, 2, 2, 1]), filter: tf.zeros([3, 3, 1, 1]) }))).toEqual(Array(9).fill(7));
        expect(calls).toEqual(['int32 [1,3,3,1]', 'float32 [1,2,2,1]']);
        // What it takes, it computes itself: each pixel sums the taps of the windows that read it.
        expect(run(() => ({ dy: tf.ones([1, 3, 3, 1]), filter: tf.ones([3, 3, 1, 1]) }))).toEqual([4, 6, 4, 6, 9, 6, 4, 6, 4]);
        expect(calls).toHaveLength(2);
        expect(tf.engine().backend.numDataIds()).toBe(dataIds);
      });

      it('without a stock kernel, it rejects them with a KdBackendError', async () => {
        await tf.setBackend('wasm');
        registerOverStock(undefined);
        const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [1, 3, 3, 1] };
        const dy = tf.zeros([1, 2, 2, 1]);
        const filter = tf.zeros([3, 3, 1, 1]);
        expect(() => runKernel('Conv2DBackpropInput', { dy, filter }, attrs)).toThrow(
          /Conv2DBackpropInput: dy has shape \[1,2,2,1\] but the convolution gives \[1,3,3,1\]/,
        );
        tf.dispose([dy, filter]);
      });
    });
  });

  // XNNPACK caches its packed right operand by data id alone: a kernel that handed it an
  // input's own buffer under one shape would corrupt later products that read it under another.
  // The shapes are those where a transpose moves nothing, the tempting place to skip a copy.
  it('leaves later products of its inputs right (Conv2DBackpropInput, ...Filter in NCHW)', async () => {
    await expectWasmMatchesCpu(() => {
      const filter = randomTensor([1, 1, 3, 1], 37); // seen as [cout, taps] = [1, 3] by the product
      const dy = randomTensor([1, 1, 3, 3], 38); // NCHW, cout 1: its NHWC transpose moves nothing
      return [
        runKernel('Conv2DBackpropInput', { dy: randomTensor([1, 2, 2, 1], 39), filter }, { strides: 2, pad: 'valid', dataFormat: 'NHWC', inputShape: [1, 4, 4, 3] }),
        tf.matMul(randomTensor([2, 3], 40), tf.reshape(filter, [3, 1])),
        runKernel('Conv2DBackpropFilter', { x: randomTensor([1, 2, 3, 3], 41), dy }, { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [1, 1, 2, 1] }),
        tf.matMul(randomTensor([2, 3], 42), tf.reshape(dy, [3, 3])),
      ];
    });
  });

  describe('DepthwiseConv2dNativeBackpropFilter and ...BackpropInput equal cpu', () => {
    const cases: Array<{ name: string; x: Shape4; filter: Shape4; strides: number; pad: Pad }> = [
      { name: '3×3, multiplier 1, same', x: [2, 7, 7, 3], filter: [3, 3, 3, 1], strides: 1, pad: 'same' },
      { name: '3×3, multiplier 2, stride 2, same', x: [2, 7, 6, 3], filter: [3, 3, 3, 2], strides: 2, pad: 'same' },
      { name: '3×3, multiplier 3, stride 2, valid', x: [2, 8, 9, 2], filter: [3, 3, 2, 3], strides: 2, pad: 'valid' },
      { name: '1×1 filter', x: [2, 4, 5, 4], filter: [1, 1, 4, 2], strides: 1, pad: 'valid' },
      { name: 'batch 1, channels 1', x: [1, 5, 6, 1], filter: [2, 3, 1, 1], strides: 1, pad: 'same' },
      { name: 'explicit padding', x: [2, 6, 6, 2], filter: [3, 3, 2, 1], strides: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
    ];
    it.each(cases)('$name', async ({ x, filter, strides, pad }) => {
      await expectWasmMatchesCpu(() => {
        const info = tf.backend_util.computeConv2DInfo(x, filter, strides, 1, pad, undefined, true);
        const dy = randomTensor(info.outShape, 5);
        const attrs = { strides, pad, dilations: 1 };
        return [
          runKernel('DepthwiseConv2dNativeBackpropFilter', { x: randomTensor(x, 6), dy }, { ...attrs, filterShape: filter }),
          runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: randomTensor(filter, 7) }, { ...attrs, inputShape: x }),
        ];
      });
    });

    // tfjs's cpu kernels ignore dilations inside their loops, so the reference is
    // the undilated kernel with the filter written out with zeros between taps.
    it.each([
      { x: [2, 9, 9, 2] as Shape4, filter: [3, 3, 2, 2] as Shape4, pad: 'same' as Pad },
      { x: [1, 8, 7, 3] as Shape4, filter: [2, 3, 3, 1] as Shape4, pad: 'valid' as Pad },
    ])('dilation 2 ($pad) equals the zero-filled filter on cpu', async ({ x, filter, pad }) => {
      const dilation = 2;
      const dilatedShape: Shape4 = [(filter[0] - 1) * dilation + 1, (filter[1] - 1) * dilation + 1, filter[2], filter[3]];
      const info = tf.backend_util.computeConv2DInfo(x, filter, 1, dilation, pad, undefined, true);
      const inputs = () => ({ x: randomTensor(x, 8), dy: randomTensor(info.outShape, 9), filter: randomTensor(filter, 10) as tf.Tensor4D });
      const expected = await runOn('cpu', () => {
        const { x: xt, dy, filter: f } = inputs();
        const attrs = { strides: 1, pad, dilations: 1 };
        const dwDense = runKernel('DepthwiseConv2dNativeBackpropFilter', { x: xt, dy }, { ...attrs, filterShape: dilatedShape });
        // The taps of the dilated filter are every `dilation`-th row and column of the dense one.
        const dw = tf.stridedSlice(dwDense, [0, 0, 0, 0], dilatedShape, [dilation, dilation, 1, 1]);
        const dx = runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: dilateFilter(f, dilation) }, { ...attrs, inputShape: x });
        return [dw, dx];
      });
      const actual = await runOn('wasm', () => {
        const { x: xt, dy, filter: f } = inputs();
        const attrs = { strides: 1, pad, dilations: dilation };
        return [
          runKernel('DepthwiseConv2dNativeBackpropFilter', { x: xt, dy }, { ...attrs, filterShape: filter }),
          runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { ...attrs, inputShape: x }),
        ];
      });
      expectClose(actual, expected);
    });
  });

  describe('UnsortedSegmentSum equals cpu', () => {
    it('repeated ids, empty segments, numSegments larger than the largest id', async () => {
      await expectWasmMatchesCpu(() =>
        tf.unsortedSegmentSum(randomTensor([6, 3], 11), tf.tensor1d([0, 2, 2, 5, 0, 2], 'int32'), 9),
      );
    });
    it('rank 1, and ids outside [0, numSegments) are dropped', async () => {
      await expectWasmMatchesCpu(() =>
        tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4, 5]), tf.tensor1d([3, -1, 0, 7, 3], 'int32'), 4),
      );
    });
    it('ids of rank 2 over a rank-3 x (cpu: flattened, as its kernel fails on ids of rank > 1)', async () => {
      const x = () => randomTensor([2, 3, 4], 12);
      const ids = () => tf.tensor2d([[1, 0, 1], [4, 4, 0]], [2, 3], 'int32');
      const expected = await runOn('cpu', () => tf.unsortedSegmentSum(tf.reshape(x(), [6, 4]), tf.reshape(ids(), [6]), 6));
      expectClose(await runOn('wasm', () => tf.unsortedSegmentSum(x(), ids() as unknown as tf.Tensor1D, 6)), expected);
    });
    it('int32 x', async () => {
      const [result] = await expectWasmMatchesCpu(() =>
        tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 3),
      );
      expect(Array.from(result!.values)).toEqual([5, 6, 4, 6, 0, 0]);
    });
    it('a single row into a single segment, and no rows at all', async () => {
      await expectWasmMatchesCpu(() => [
        tf.unsortedSegmentSum(tf.tensor2d([[7, -1]]), tf.tensor1d([0], 'int32'), 1),
        tf.unsortedSegmentSum(tf.zeros([0, 2]), tf.zeros([0], 'int32'), 3),
      ]);
    });
  });

  describe('gradients on wasm equal cpu', () => {
    it.each([
      { x: [2, 7, 7, 3] as Shape4, filter: [3, 3, 3, 4] as Shape4, strides: 2, pad: 'same' as const },
      { x: [3, 6, 8, 2] as Shape4, filter: [2, 2, 2, 3] as Shape4, strides: 1, pad: 'valid' as const },
      { x: [1, 5, 5, 1] as Shape4, filter: [1, 1, 1, 2] as Shape4, strides: 1, pad: 'same' as const },
      { x: [2, 9, 8, 3] as Shape4, filter: [3, 2, 3, 4] as Shape4, strides: 3, pad: 'valid' as const },
      { x: [2, 10, 10, 4] as Shape4, filter: [5, 5, 4, 2] as Shape4, strides: 1, pad: 'same' as const },
    ])('conv2d $x * $filter, stride $strides, $pad', async ({ x, filter, strides, pad }) => {
      await expectWasmMatchesCpu(() => {
        const weights = randomTensor(tf.backend_util.computeConv2DInfo(x, filter, strides, 1, pad).outShape, 13);
        const loss = (input: tf.Tensor, kernel: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(input as tf.Tensor4D, kernel as tf.Tensor4D, strides, pad), weights));
        return tf.grads(loss)([randomTensor(x, 14), randomTensor(filter, 15)]);
      });
    });

    it.each([
      { x: [2, 7, 7, 3] as Shape4, filter: [3, 3, 3, 2] as Shape4, strides: 2, pad: 'same' as const },
      { x: [2, 6, 5, 2] as Shape4, filter: [3, 2, 2, 1] as Shape4, strides: 1, pad: 'valid' as const },
    ])('depthwiseConv2d $x * $filter, stride $strides, $pad', async ({ x, filter, strides, pad }) => {
      await expectWasmMatchesCpu(() => {
        const weights = randomTensor(tf.backend_util.computeConv2DInfo(x, filter, strides, 1, pad, undefined, true).outShape, 16);
        const loss = (input: tf.Tensor, kernel: tf.Tensor) =>
          tf.sum(tf.mul(tf.depthwiseConv2d(input as tf.Tensor4D, kernel as tf.Tensor4D, strides, pad), weights));
        return tf.grads(loss)([randomTensor(x, 17), randomTensor(filter, 18)]);
      });
    });

    it('separableConv2d (depthwise then pointwise)', async () => {
      await expectWasmMatchesCpu(() => {
        const loss = (input: tf.Tensor, depthwise: tf.Tensor, pointwise: tf.Tensor) =>
          tf.sum(
            tf.square(
              tf.separableConv2d(input as tf.Tensor4D, depthwise as tf.Tensor4D, pointwise as tf.Tensor4D, 1, 'same'),
            ),
          );
        return tf.grads(loss)([randomTensor([2, 6, 6, 3], 19), randomTensor([3, 3, 3, 2], 20), randomTensor([1, 1, 6, 4], 21)]);
      });
    });

    it('gather (Embedding lookups with repeated ids)', async () => {
      await expectWasmMatchesCpu(() => {
        const ids = tf.tensor2d([[1, 4, 4], [0, 1, 9]], [2, 3], 'int32');
        const weights = randomTensor([2, 3, 5], 22);
        return tf.grad((table: tf.Tensor) => tf.sum(tf.mul(tf.gather(table, ids), weights)))(randomTensor([12, 5], 23));
      });
    });

    it('maxPool, including windows whose values are all ≤ 0 (stock wasm 4.22 misroutes them)', async () => {
      const [result] = await expectWasmMatchesCpu(() => {
        const x = tf.tensor4d([-4, -1, 0.5, 2, -3, -2, 1, 0.25, 0, 0, -1, -5, 0, 0, -2, -3], [1, 4, 4, 1]);
        const weights = tf.tensor4d([1, 10, 100, 1000], [1, 2, 2, 1]);
        return tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(input as tf.Tensor4D, 2, 2, 'valid'), weights)))(x);
      });
      expect(Array.from(result!.values)).toEqual([0, 1, 0, 10, 0, 0, 0, 0, 100, 0, 1000, 0, 0, 0, 0, 0]);
      await expectWasmMatchesCpu(() =>
        tf.grad((input: tf.Tensor) => tf.sum(tf.square(tf.maxPool(input as tf.Tensor4D, 3, 2, 'same'))))(
          tf.relu(randomTensor([3, 7, 7, 4], 24)),
        ),
      );
    });
  });

  describe('rejects what it does not support', () => {
    it('non-float32 convolution inputs', async () => {
      await tf.setBackend('wasm');
      const x = tf.zeros([1, 3, 3, 1], 'int32');
      const dy = tf.zeros([1, 3, 3, 1], 'int32');
      expect(() =>
        runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 1, 1] }),
      ).toThrow(KdBackendError);
      tf.dispose([x, dy]);
    });
    it('a dy that does not fit the convolution', async () => {
      await tf.setBackend('wasm');
      const x = tf.zeros([1, 5, 5, 1]);
      const dy = tf.zeros([1, 4, 4, 1]);
      expect(() =>
        runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 1, 1] }),
      ).toThrow(/dy has shape \[1,4,4,1\] but the convolution gives \[1,5,5,1\]/);
      tf.dispose([x, dy]);
    });
    it('a filter whose input channels differ from the input', async () => {
      await tf.setBackend('wasm');
      const x = tf.zeros([1, 5, 5, 1]);
      const dy = tf.zeros([1, 5, 5, 2]);
      expect(() =>
        runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dilations: 1, filterShape: [3, 3, 2, 1] }),
      ).toThrow(KdBackendError);
      tf.dispose([x, dy]);
    });
  });

  describe('training on wasm through the Distiller', () => {
    // IS_TEST (set in test/setup.ts) turns on tfjs's per-kernel data-id check, which
    // wasm's fused matMul trips although it frees everything later; our numDataIds checks stand.
    beforeAll(async () => {
      tf.env().set('IS_TEST', false);
      await tf.setBackend('wasm');
    });

    async function expectTrains(student: tfl.LayersModel, teacher: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor) {
      expect(tf.getBackend()).toBe('wasm');
      const distiller = new Distiller({ teacher, student });
      distiller.compile({ optimizer: tf.train.adam(0.02), temperature: 2, alpha: 0.3 });
      const first = await distiller.fit(x, y, { epochs: 1, batchSize: 16, shuffle: false });
      const before = weightValues(student);
      const tensors = tf.memory().numTensors;
      const dataIds = tf.engine().backend.numDataIds();
      const history = await distiller.fit(x, y, { epochs: 6, batchSize: 16, shuffle: false });
      expect(tf.memory().numTensors).toBe(tensors);
      expect(tf.engine().backend.numDataIds()).toBe(dataIds);
      const loss = [...(first.history.loss as number[]), ...(history.history.loss as number[])];
      expect(loss.every(Number.isFinite)).toBe(true);
      expect(loss[loss.length - 1]).toBeLessThan(loss[0]!);
      expect(sameValues(weightValues(student), before)).toBe(false);
    }

    it('an Embedding student (embedding → globalAveragePooling1d → dense) and one with flatten', async () => {
      const ids = withSeed(1, () => tf.randomUniform([64, 6], 0, 30, 'int32'));
      const teacher = withSeed(2, () =>
        tfl.sequential({
          layers: [
            tfl.layers.embedding({ inputDim: 30, outputDim: 16, inputLength: 6 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
      const y = tf.tidy(() => tf.cast(tf.argMax(teacher.predict(ids) as tf.Tensor, -1), 'int32'));
      const pooled = withSeed(3, () =>
        tfl.sequential({
          layers: [
            tfl.layers.embedding({ inputDim: 30, outputDim: 8, inputLength: 6 }),
            tfl.layers.globalAveragePooling1d(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
      await expectTrains(pooled, teacher, ids, y);
      const flat = withSeed(4, () =>
        tfl.sequential({
          layers: [
            tfl.layers.embedding({ inputDim: 30, outputDim: 4, inputLength: 6 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
      await expectTrains(flat, teacher, ids, y);
      tf.dispose([ids, y]);
    });

    it('a Conv2D student (conv2d → maxPooling2d → depthwiseConv2d → flatten → dense)', async () => {
      const x = withSeed(5, () => tf.randomNormal([64, 8, 8, 1]));
      const teacher = withSeed(6, () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', inputShape: [8, 8, 1] }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
      const y = tf.tidy(() => tf.cast(tf.argMax(teacher.predict(x) as tf.Tensor, -1), 'int32'));
      const student = withSeed(7, () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 1, padding: 'same', activation: 'relu', inputShape: [8, 8, 1] }),
            tfl.layers.maxPooling2d({ poolSize: 2 }),
            tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'valid', activation: 'relu' }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
      await expectTrains(student, teacher, x, y);
      tf.dispose([x, y]);
    });

    it('a student with two Conv2D layers (the second needs the input gradient, Conv2DBackpropInput)', async () => {
      const x = withSeed(8, () => tf.randomNormal([64, 8, 8, 1]));
      const teacher = withSeed(9, () =>
        tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [8, 8, 1] }), tfl.layers.dense({ units: 3 })] }),
      );
      const y = tf.tidy(() => tf.cast(tf.argMax(teacher.predict(x) as tf.Tensor, -1), 'int32'));
      const student = withSeed(10, () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [8, 8, 1] }),
            tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
            tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'valid', activation: 'relu' }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 3 }),
          ],
        }),
      );
      await expectTrains(student, teacher, x, y);
      tf.dispose([x, y]);
    });
  });
});
