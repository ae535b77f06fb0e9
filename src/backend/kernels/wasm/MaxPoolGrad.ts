/**
 * A checked `MaxPoolGrad` for wasm. tfjs-backend-wasm 4.22's kernel routes
 * the gradient of a window whose values are all ≤ 0 to the wrong pixel (its
 * running maximum starts at the smallest positive float, not at −∞), which
 * corrupts the gradients of ReLU → MaxPooling students. This kernel tests the
 * stock one once, on its first call, and keeps using it if it is right;
 * otherwise it computes the gradient itself (first maximum wins, as on cpu).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { requireAttrs, requireFloat32, requireInputs, requireRank4, requireShape } from './checks.js';
import { asWasmBackend, WASM, type Shape4, type WasmBackend } from './heap.js';

/** Replaces the stock wasm `MaxPoolGrad`, which it delegates to once it passed the check. */
export const maxPoolGradConfig: KdKernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: checkedMaxPoolGrad,
};

/** Whether each stock MaxPoolGrad this kernel replaced passed the check, once tested. */
const stockIsRight = new WeakMap<tf.KernelFunc, boolean>();

function checkedMaxPoolGrad(args: KernelArgs<tf.MaxPoolGradAttrs>, stock: tf.KernelFunc | undefined): tf.TensorInfo {
  const backend = asWasmBackend(args.backend, tf.MaxPoolGrad);
  if (stock !== undefined) {
    let isRight = stockIsRight.get(stock);
    if (isRight === undefined) {
      isRight = stockMaxPoolGradPasses(backend, stock);
      stockIsRight.set(stock, isRight);
    }
    if (isRight) return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  return maxPoolGrad(args, backend);
}

/** Runs the stock kernel on one 2×2 window of negative values, whose maximum is the second pixel. */
function stockMaxPoolGradPasses(backend: WasmBackend, stock: tf.KernelFunc): boolean {
  const input = backend.makeOutput([1, 2, 2, 1], 'float32');
  const dy = backend.makeOutput([1, 1, 1, 1], 'float32');
  const output = backend.makeOutput([1, 1, 1, 1], 'float32');
  let dx: tf.TensorInfo | undefined;
  try {
    backend.typedArrayFromHeap(input).set([-4, -1, -3, -2]);
    backend.typedArrayFromHeap(dy).set([1]);
    backend.typedArrayFromHeap(output).set([-1]);
    dx = stock({
      inputs: { dy, input, output },
      backend,
      attrs: { filterSize: 2, strides: 2, pad: 'valid' },
    }) as tf.TensorInfo;
    const values = Array.from(backend.typedArrayFromHeap(dx));
    return values.join() === '0,1,0,0';
  } finally {
    for (const t of [input, dy, output, dx]) if (t !== undefined) backend.disposeData(t.dataId);
  }
}

/**
 * dx of max pooling: each dy value goes to the first maximum of its window
 * (row-major order, as on the cpu backend); a window of NaNs passes nothing.
 */
function maxPoolGrad(args: KernelArgs<tf.MaxPoolGradAttrs>, backend: WasmBackend): tf.TensorInfo {
  const name = tf.MaxPoolGrad;
  const { dy, input } = requireInputs(args.inputs, ['dy', 'input'], name);
  const attrs = requireAttrs(args.attrs, name);
  requireFloat32(name, { dy, input });
  requireRank4(name, { dy, input });
  const info = tf.backend_util.computePool2DInfo(
    input.shape as Shape4,
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  requireShape(name, 'dy', dy.shape, info.outShape);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = backend.makeOutput(input.shape, 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const xValues = backend.typedArrayFromHeap(input) as Float32Array;
  const dyValues = backend.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  const best = new Float32Array(inChannels);
  const bestAt = new Int32Array(inChannels);
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let fh = 0; fh < filterHeight; fh++) {
          const ih = oh * strideHeight - top + fh;
          if (ih < 0 || ih >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const iw = ow * strideWidth - left + fw;
            if (iw < 0 || iw >= inWidth) continue;
            const xOffset = ((n * inHeight + ih) * inWidth + iw) * inChannels;
            for (let c = 0; c < inChannels; c++) {
              const value = xValues[xOffset + c]!;
              if (value > best[c]!) {
                best[c] = value;
                bestAt[c] = xOffset + c;
              }
            }
          }
        }
        const dyOffset = ((n * outHeight + oh) * outWidth + ow) * inChannels;
        for (let c = 0; c < inChannels; c++) {
          const at = bestAt[c]!;
          if (at >= 0) dx[at] = dx[at]! + dyValues[dyOffset + c]!;
        }
      }
    }
  }
  return out;
}
