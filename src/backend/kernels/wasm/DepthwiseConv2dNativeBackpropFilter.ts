/**
 * `DepthwiseConv2dNativeBackpropFilter` for wasm, which tfjs-backend-wasm
 * 4.22 lacks (the weight gradient of DepthwiseConv2D and SeparableConv2D).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { requireAttrs, requireFilterChannels, requireFloat32, requireInputs, requireRank4, requireShape } from './checks.js';
import { depthwiseInfo, forEachDepthwiseTap } from './depthwise.js';
import { asWasmBackend, WASM, type Shape4 } from './heap.js';

/** Registered where wasm has no `DepthwiseConv2dNativeBackpropFilter`. */
export const depthwiseConv2dNativeBackpropFilterConfig: KdKernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: WASM,
  mode: 'add',
  kernelFunc: depthwiseConv2dNativeBackpropFilter,
};

/**
 * dW[fh, fw, c, m] = Σ over n, oh, ow of x[n, ih, iw, c] · dy[n, oh, ow, c·mult + m]:
 * a per-channel reduction (no product to hand to XNNPACK), accumulated in float64 in JS.
 */
function depthwiseConv2dNativeBackpropFilter(
  args: KernelArgs<tf.DepthwiseConv2dNativeBackpropFilterAttrs>,
): tf.TensorInfo {
  const name = tf.DepthwiseConv2dNativeBackpropFilter;
  const backend = asWasmBackend(args.backend, name);
  const { x, dy } = requireInputs(args.inputs, ['x', 'dy'], name);
  const attrs = requireAttrs(args.attrs, name);
  requireFloat32(name, { x, dy });
  requireRank4(name, { x, dy });
  const info = depthwiseInfo(x.shape as Shape4, attrs.filterShape, attrs);
  requireShape(name, 'dy', dy.shape, info.outShape);
  requireFilterChannels(name, attrs.filterShape, info.inChannels);
  const { inChannels, outChannels, filterHeight, filterWidth } = info;
  const multiplier = outChannels / inChannels;
  const sums = new Float64Array(filterHeight * filterWidth * outChannels);
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  const xValues = backend.typedArrayFromHeap(x) as Float32Array;
  const dyValues = backend.typedArrayFromHeap(dy) as Float32Array;
  forEachDepthwiseTap(info, (dyOffset, xOffset, tapOffset) => {
    for (let c = 0; c < inChannels; c++) {
      const xValue = xValues[xOffset + c]!;
      const base = c * multiplier;
      for (let m = 0; m < multiplier; m++) {
        const k = tapOffset + base + m;
        sums[k] = sums[k]! + xValue * dyValues[dyOffset + base + m]!;
      }
    }
  });
  // The filter layout [fh, fw, c, m] is the accumulator's [fh, fw, c·mult + m].
  (backend.typedArrayFromHeap(out) as Float32Array).set(sums);
  return out;
}
