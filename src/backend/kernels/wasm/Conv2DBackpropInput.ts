/**
 * `Conv2DBackpropInput` for wasm (the input gradient of Conv2D, and the
 * forward pass of Conv2DTranspose), in place of the stock kernel: that one is
 * a scalar loop, about 7× slower than the forward convolution. kd-ts's runs on
 * XNNPACK: with stride 1 as a forward convolution of dy with the filter
 * reversed; otherwise as one untransposed product `dy·Wᵀ` whose columns are
 * added back into the image in JS (col2im). Inputs it does not take (not
 * float32, not rank 4, shapes that do not fit the convolution) go to the
 * stock kernel.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { requireAttrs, requireFilterChannels, requireFloat32, requireInputs, requireRank4, requireShape } from './checks.js';
import {
  asWasmBackend,
  copyOf,
  keep,
  MAX_IM2COL_ELEMENTS,
  rowsOf,
  runWasm,
  WASM,
  zeros,
  type Shape4,
  type WasmBackend,
} from './heap.js';
import { KdBackendError } from '../../../errors.js';

/** Replaces the stock wasm `Conv2DBackpropInput`, which takes the inputs kd-ts's does not. */
export const conv2DBackpropInputConfig: KdKernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: fastConv2DBackpropInput,
};

/**
 * dx of Conv2D (and the forward pass of Conv2DTranspose) for the inputs that
 * {@link conv2DBackpropInputInfo} accepts; the stock kernel takes the rest.
 */
function fastConv2DBackpropInput(
  args: KernelArgs<tf.Conv2DBackpropInputAttrs>,
  stock: tf.KernelFunc | undefined,
): tf.TensorInfo {
  const backend = asWasmBackend(args.backend, tf.Conv2DBackpropInput);
  let info: tf.backend_util.Conv2DInfo;
  try {
    info = conv2DBackpropInputInfo(args);
  } catch (error) {
    // The stock kernel gives its own answer (or error) to what ours rejects.
    if (stock === undefined) throw error;
    return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  return conv2DBackpropInput(backend, args.inputs.dy!, args.inputs.filter!, info);
}

/** The convolution whose input gradient is asked for; throws for what kd-ts's kernel does not take. */
function conv2DBackpropInputInfo(args: KernelArgs<tf.Conv2DBackpropInputAttrs>): tf.backend_util.Conv2DInfo {
  const name = tf.Conv2DBackpropInput;
  const { dy, filter } = requireInputs(args.inputs, ['dy', 'filter'], name);
  const attrs = requireAttrs(args.attrs, name);
  requireFloat32(name, { dy, filter });
  requireRank4(name, { dy, filter });
  if (attrs.inputShape?.length !== 4) {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: inputShape must have 4 dimensions, got [${attrs.inputShape}]`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as Shape4,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? 'NHWC'),
  );
  requireShape(name, 'dy', dy.shape, info.outShape);
  requireFilterChannels(name, filter.shape, info.inChannels);
  return info;
}

/**
 * dx in NHWC, then in the data format asked for. Two routes, both on XNNPACK:
 * with stride 1, dx is a forward convolution of dy with the filter flipped
 * (see {@link dxByConvolution}); otherwise, or when the padding is wider than
 * the filter, a matrix product and col2im ({@link dxByProduct}).
 */
function conv2DBackpropInput(
  backend: WasmBackend,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const outPixels = batchSize * outHeight * outWidth;
  if (outPixels * info.filterHeight * info.filterWidth * inChannels === 0 || outChannels === 0) {
    return zeros(backend, info.inShape);
  }
  const channelsFirst = info.dataFormat === 'channelsFirst';
  const temps: tf.TensorInfo[] = [];
  try {
    const dyNhwc = channelsFirst ? keep(temps, runWasm(backend, tf.Transpose, { x: dy }, { perm: [0, 2, 3, 1] })) : dy;
    const pads = convolutionPads(info);
    const dx = pads === undefined ? dxByProduct(backend, dyNhwc, filter, info) : dxByConvolution(backend, dyNhwc, filter, info, pads);
    if (!channelsFirst) return dx;
    keep(temps, dx);
    return runWasm(backend, tf.Transpose, { x: dx }, { perm: [0, 3, 1, 2] });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * The padding of the stride-1 convolution that gives dx, or undefined when
 * there is none (a stride above 1, or padding wider than the filter). With
 * stride 1, input row ih receives dy[oh]·W[kh] for ih = oh − top + kh, that is
 * a correlation of dy with the filter reversed, W'[k] = W[fh − 1 − k], padded
 * by fh − 1 − top above and by what makes inHeight rows below. Same for columns.
 */
function convolutionPads(info: tf.backend_util.Conv2DInfo): [number, number, number, number] | undefined {
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return undefined;
  const top = info.filterHeight - 1 - info.padInfo.top;
  const left = info.filterWidth - 1 - info.padInfo.left;
  const bottom = info.inHeight - info.outHeight + info.filterHeight - 1 - top;
  const right = info.inWidth - info.outWidth + info.filterWidth - 1 - left;
  return Math.min(top, left, bottom, right) < 0 ? undefined : [top, bottom, left, right];
}

/**
 * dx by the stock wasm Conv2D (XNNPACK's convolution, as fast as the forward
 * pass): dy, with cout channels, convolved with the filter reversed in both
 * spatial axes and with its channel axes swapped, `[fh, fw, cout, cin]`.
 */
function dxByConvolution(
  backend: WasmBackend,
  dyNhwc: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  [top, bottom, left, right]: [number, number, number, number],
): tf.TensorInfo {
  // A buffer of our own: XNNPACK's convolution operator is cached by the
  // filter's data id and freed with it, when this call disposes it.
  const flipped = reversedFilter(backend, filter, info);
  try {
    const pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    return runWasm(backend, tf.Conv2D, { x: dyNhwc, filter: flipped }, { strides: 1, pad, dataFormat: 'NHWC', dilations: 1 });
  } finally {
    backend.disposeData(flipped.dataId);
  }
}

/** W'[kh, kw, co, ci] = W[fh − 1 − kh, fw − 1 − kw, ci, co], in a new buffer. */
function reversedFilter(backend: WasmBackend, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { filterHeight, filterWidth, inChannels, outChannels } = info;
  const out = backend.makeOutput([filterHeight, filterWidth, outChannels, inChannels], 'float32');
  const to = backend.typedArrayFromHeap(out) as Float32Array;
  const from = backend.typedArrayFromHeap(filter) as Float32Array;
  const tapSize = inChannels * outChannels;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      const source = ((filterHeight - 1 - kh) * filterWidth + (filterWidth - 1 - kw)) * tapSize;
      const target = (kh * filterWidth + kw) * tapSize;
      for (let co = 0; co < outChannels; co++) {
        for (let ci = 0; ci < inChannels; ci++) to[target + co * inChannels + ci] = from[source + ci * outChannels + co]!;
      }
    }
  }
  return out;
}

/**
 * dx = col2im(dy · Wᵀ), for any strides and padding. Seen as
 * `[n·oh·ow, cout]`, dy times the filter transposed to `[cout, fh·fw·cin]`
 * gives, in row `(n, oh, ow)`, the contribution of dy's pixel to each of the
 * fh·fw input pixels its window read; col2im adds those rows into an NHWC
 * image. The product is one untransposed XNNPACK call (about 13× faster than
 * a transposed one), in row blocks of at most 16 MiB for large problems.
 */
function dxByProduct(
  backend: WasmBackend,
  dyNhwc: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const taps = info.filterHeight * info.filterWidth * inChannels;
  const rows = batchSize * outHeight * outWidth;
  const dx = zeros(backend, [batchSize, inHeight, inWidth, inChannels]);
  const temps: tf.TensorInfo[] = [];
  try {
    const filterT = keep(temps, transposedFilter(backend, filter, taps, outChannels));
    const rowsPerBlock = Math.max(1, Math.min(rows, Math.floor(MAX_IM2COL_ELEMENTS / taps)));
    for (let row0 = 0; row0 < rows; row0 += rowsPerBlock) {
      const row1 = Math.min(rows, row0 + rowsPerBlock);
      // The left operand is not cached by XNNPACK: dy itself serves when there is one block.
      const dyRows =
        row1 - row0 === rows
          ? { dataId: dyNhwc.dataId, shape: [rows, outChannels], dtype: dyNhwc.dtype }
          : keep(temps, rowsOf(backend, dyNhwc, row0 * outChannels, row1 * outChannels, [row1 - row0, outChannels]));
      const cols = keep(
        temps,
        runWasm(backend, tf.BatchMatMul, { a: dyRows, b: filterT }, { transposeA: false, transposeB: false }),
      );
      addCol2im(backend.typedArrayFromHeap(dx) as Float32Array, backend.typedArrayFromHeap(cols) as Float32Array, info, row0, row1);
      // Each block's buffers go at once: memory stays bounded by one block.
      for (const t of temps.splice(1)) backend.disposeData(t.dataId);
    }
    return dx;
  } catch (error) {
    backend.disposeData(dx.dataId);
    throw error;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * The filter `[fh, fw, cin, cout]` as `[cout, fh·fw·cin]`, in a buffer of its
 * own. XNNPACK's right operand must be: the stock matMul caches its packed
 * operator by data id alone, so packing the filter's own buffer would tie a
 * `[cout, taps]` operator to it, wrong for any later product that reads it
 * with another shape. The stock Transpose always writes a new buffer (its
 * no-op case goes through wasm's Identity, which copies); with an axis of
 * size 1 the transpose is a plain copy.
 */
function transposedFilter(backend: WasmBackend, filter: tf.TensorInfo, taps: number, outChannels: number): tf.TensorInfo {
  if (taps === 1 || outChannels === 1) return copyOf(backend, filter, [outChannels, taps]);
  const filter2d = { dataId: filter.dataId, shape: [taps, outChannels], dtype: filter.dtype };
  return runWasm(backend, tf.Transpose, { x: filter2d }, { perm: [1, 0] });
}

/**
 * Adds rows `[row0, row1)` of the `[n·oh·ow, fh·fw·cin]` matrix `cols` (held
 * from its row row0 on) into the NHWC image dx: column `(fh·fw_count + fw)·cin + ci`
 * of row `(n·oh_count + oh)·ow_count + ow` goes to
 * `dx[n, oh·sh − top + fh, ow·sw − left + fw, ci]`, unless that is padding.
 */
function addCol2im(dx: Float32Array, cols: Float32Array, info: tf.backend_util.Conv2DInfo, row0: number, row1: number): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const taps = filterHeight * filterWidth * inChannels;
  let ow = row0 % outWidth;
  let oh = Math.floor(row0 / outWidth) % outHeight;
  let n = Math.floor(row0 / (outWidth * outHeight));
  for (let row = row0; row < row1; row++) {
    const ih0 = oh * strideHeight - top;
    const iw0 = ow * strideWidth - left;
    const colsRow = (row - row0) * taps;
    for (let fh = 0; fh < filterHeight; fh++) {
      const ih = ih0 + fh;
      if (ih < 0 || ih >= inHeight) continue;
      const dxRow = (n * inHeight + ih) * inWidth;
      for (let fw = 0; fw < filterWidth; fw++) {
        const iw = iw0 + fw;
        if (iw < 0 || iw >= inWidth) continue;
        const dxOffset = (dxRow + iw) * inChannels;
        const colsOffset = colsRow + (fh * filterWidth + fw) * inChannels;
        for (let ci = 0; ci < inChannels; ci++) dx[dxOffset + ci] = dx[dxOffset + ci]! + cols[colsOffset + ci]!;
      }
    }
    if (++ow === outWidth) {
      ow = 0;
      if (++oh === outHeight) {
        oh = 0;
        n++;
      }
    }
  }
}
