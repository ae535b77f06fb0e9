/**
 * `DepthwiseConv2dNativeBackpropInput` for wasm, which tfjs-backend-wasm 4.22
 * lacks (the input gradient of DepthwiseConv2D and SeparableConv2D).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { requireAttrs, requireFilterChannels, requireFloat32, requireInputs, requireRank4, requireShape } from './checks.js';
import { depthwiseInfo, forEachDepthwiseTap } from './depthwise.js';
import { asWasmBackend, WASM, type Shape4 } from './heap.js';

/** Registered where wasm has no `DepthwiseConv2dNativeBackpropInput`. */
export const depthwiseConv2dNativeBackpropInputConfig: KdKernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: WASM,
  mode: 'add',
  kernelFunc: depthwiseConv2dNativeBackpropInput,
};

/**
 * dx[n, ih, iw, c] = Σ over the taps that read (ih, iw) and over m of
 * dy[n, oh, ow, c·mult + m] · filter[fh, fw, c, m], scattered from each dy pixel.
 */
function depthwiseConv2dNativeBackpropInput(
  args: KernelArgs<tf.DepthwiseConv2dNativeBackpropInputAttrs>,
): tf.TensorInfo {
  const name = tf.DepthwiseConv2dNativeBackpropInput;
  const backend = asWasmBackend(args.backend, name);
  const { dy, filter } = requireInputs(args.inputs, ['dy', 'filter'], name);
  const attrs = requireAttrs(args.attrs, name);
  requireFloat32(name, { dy, filter });
  requireRank4(name, { dy, filter });
  const info = depthwiseInfo(attrs.inputShape, filter.shape as Shape4, attrs);
  requireShape(name, 'dy', dy.shape, info.outShape);
  requireFilterChannels(name, filter.shape, info.inChannels);
  const { inChannels, outChannels } = info;
  const multiplier = outChannels / inChannels;
  const out = backend.makeOutput(attrs.inputShape, 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const dyValues = backend.typedArrayFromHeap(dy) as Float32Array;
  const filterValues = backend.typedArrayFromHeap(filter) as Float32Array;
  dx.fill(0);
  forEachDepthwiseTap(info, (dyOffset, dxOffset, tapOffset) => {
    for (let c = 0; c < inChannels; c++) {
      const base = c * multiplier;
      let sum = 0;
      for (let m = 0; m < multiplier; m++) sum += dyValues[dyOffset + base + m]! * filterValues[tapOffset + base + m]!;
      dx[dxOffset + c] = dx[dxOffset + c]! + sum;
    }
  });
  return out;
}
