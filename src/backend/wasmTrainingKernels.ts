/**
 * Training kernels that tfjs's wasm backend lacks (tfjs 4.22): the weight
 * gradients of Conv2D and DepthwiseConv2D, the input gradient of
 * DepthwiseConv2D, and `UnsortedSegmentSum` (the gradient of Gather, hence of
 * Embedding). Without them a Conv or Embedding student cannot train on wasm
 * (tensorflow/tfjs#8082, #8474). Also replacements for two stock kernels: a
 * checked `MaxPoolGrad` and a faster `Conv2DBackpropInput`.
 *
 * One file per kernel under `kernels/wasm/`; they work on the wasm heap
 * directly and reuse the backend's own kernels (XNNPACK matrix product,
 * Transpose, Reshape) for the heavy parts. Nothing here imports
 * `@tensorflow/tfjs-backend-wasm`: the backend is typed structurally and its
 * kernels are fetched from tfjs's registry.
 *
 * @packageDocumentation
 */
import { registerKdKernels, type KdKernelConfig } from './kernels/registry.js';
import { conv2DBackpropFilterConfig } from './kernels/wasm/Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig } from './kernels/wasm/Conv2DBackpropInput.js';
import { depthwiseConv2dNativeBackpropFilterConfig } from './kernels/wasm/DepthwiseConv2dNativeBackpropFilter.js';
import { depthwiseConv2dNativeBackpropInputConfig } from './kernels/wasm/DepthwiseConv2dNativeBackpropInput.js';
import { maxPoolGradConfig } from './kernels/wasm/MaxPoolGrad.js';
import { unsortedSegmentSumConfig } from './kernels/wasm/UnsortedSegmentSum.js';

/**
 * What {@link registerWasmTrainingKernels} registers, in the order it returns
 * their names: the kernels stock wasm lacks (`'add'`), then the two it replaces.
 */
export const WASM_TRAINING_KERNELS: readonly KdKernelConfig[] = [
  conv2DBackpropFilterConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  unsortedSegmentSumConfig,
  maxPoolGradConfig,
  conv2DBackpropInputConfig,
];

/**
 * Registers, for tfjs's `'wasm'` backend, the training kernels it lacks:
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput` and `UnsortedSegmentSum`. With them,
 * Conv1D/Conv2D/SeparableConv2D/Conv2DTranspose/DepthwiseConv2D and Embedding
 * students train on wasm.
 *
 * It also guards `MaxPoolGrad`: tfjs-backend-wasm 4.22's kernel routes the
 * gradient of a window whose values are all ≤ 0 to the wrong pixel (its running
 * maximum starts at the smallest positive float, not at −∞), which corrupts the
 * gradients of ReLU → MaxPooling students. The registered wrapper tests the
 * stock kernel once, on its first call, and keeps using it if it is right;
 * otherwise it computes the gradient itself (first maximum wins, as on cpu).
 *
 * And it replaces `Conv2DBackpropInput` (the input gradient of Conv2D, and the
 * forward pass of Conv2DTranspose): the stock kernel is a scalar loop, about 7×
 * slower than the forward convolution. kd-ts's runs on XNNPACK: with stride 1
 * as a forward convolution of dy with the filter reversed; otherwise as one
 * untransposed product `dy·Wᵀ` whose columns are added back into the image in
 * JS (col2im). Inputs it does not take (not float32, not rank 4, shapes that
 * do not fit the convolution) go to the stock kernel, kept with its setup.
 *
 * Idempotent. A missing kernel that the wasm backend already has (a later tfjs
 * may add them) is left alone and not returned. Call it after importing
 * `@tensorflow/tfjs-backend-wasm` (whose registrations would otherwise replace
 * ours, with a warning), before training; the backend need not be initialized.
 *
 * Supported: NHWC and (for Conv2D) NCHW data, any strides, `'same'`,
 * `'valid'`, numeric and explicit padding, `dimRoundingMode`, and dilations for
 * the depthwise kernels (computed exactly; tfjs's cpu kernels ignore dilations
 * there, and tfjs's gradients reject dilations above 1 anyway). Conv2D's
 * back-propagation kernels have no dilations attribute in tfjs: their
 * dilation is 1, on every backend.
 *
 * @returns The names of the kernels that are kd-ts's on wasm after the call
 *   (registered now or by an earlier call), in a fixed order.
 * @throws {@link KdBackendError} (code `UNSUPPORTED_KERNEL_INPUT`), from a kernel at
 *   run time, for inputs that are not float32 (float32 or int32 for
 *   `UnsortedSegmentSum`'s `x`), or shapes that do not fit together; not from
 *   `Conv2DBackpropInput`, which hands such inputs to the stock kernel.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { registerWasmTrainingKernels } from 'kd-ts/backend';
 *
 * registerWasmTrainingKernels();
 * // ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter',
 * //  'DepthwiseConv2dNativeBackpropInput', 'UnsortedSegmentSum', 'MaxPoolGrad',
 * //  'Conv2DBackpropInput']
 * await tf.setBackend('wasm');
 * // Embedding and Conv students now train on wasm.
 * ```
 */
export function registerWasmTrainingKernels(): string[] {
  return registerKdKernels(WASM_TRAINING_KERNELS);
}
