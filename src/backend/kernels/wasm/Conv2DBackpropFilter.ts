/**
 * `Conv2DBackpropFilter` for wasm, which tfjs-backend-wasm 4.22 lacks (the
 * weight gradient of Conv1D, Conv2D, SeparableConv2D and Conv2DTranspose).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KdKernelConfig, KernelArgs } from '../registry.js';
import { requireAttrs, requireFilterChannels, requireFloat32, requireInputs, requireRank4, requireShape } from './checks.js';
import { asWasmBackend, copyOf, keep, MAX_IM2COL_ELEMENTS, runWasm, WASM, zeros, type Shape4 } from './heap.js';

/** Registered where wasm has no `Conv2DBackpropFilter`. */
export const conv2DBackpropFilterConfig: KdKernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: WASM,
  mode: 'add',
  kernelFunc: conv2DBackpropFilter,
};

/**
 * dW = im2colᵀ · dy, as one untransposed product on XNNPACK. The im2col matrix
 * is built in JS directly in transposed layout `[fh·fw·cin, n·oh·ow]`, because
 * wasm's matMul with a transpose flag falls back to a scalar loop (about 13×
 * slower); dy, seen as `[n·oh·ow, cout]`, is the right-hand side.
 */
function conv2DBackpropFilter(args: KernelArgs<tf.Conv2DBackpropFilterAttrs>): tf.TensorInfo {
  const backend = asWasmBackend(args.backend, tf.Conv2DBackpropFilter);
  const { x, dy } = requireInputs(args.inputs, ['x', 'dy'], tf.Conv2DBackpropFilter);
  const attrs = requireAttrs(args.attrs, tf.Conv2DBackpropFilter);
  requireFloat32(tf.Conv2DBackpropFilter, { x, dy });
  requireRank4(tf.Conv2DBackpropFilter, { x, dy });
  const filterShape = attrs.filterShape;
  const dataFormat = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? 'NHWC');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    dataFormat,
  );
  requireShape(tf.Conv2DBackpropFilter, 'dy', dy.shape, info.outShape);
  requireFilterChannels(tf.Conv2DBackpropFilter, filterShape, info.inChannels);
  const channelsFirst = dataFormat === 'channelsFirst';
  const temps: tf.TensorInfo[] = [];
  try {
    const xNhwc = channelsFirst ? keep(temps, runWasm(backend, tf.Transpose, { x }, { perm: [0, 2, 3, 1] })) : x;
    const dyNhwc = channelsFirst ? keep(temps, runWasm(backend, tf.Transpose, { x: dy }, { perm: [0, 2, 3, 1] })) : dy;
    const rows = info.filterHeight * info.filterWidth * info.inChannels;
    const cols = info.batchSize * info.outHeight * info.outWidth;
    if (rows * cols === 0 || info.outChannels === 0) return zeros(backend, filterShape);
    // XNNPACK's right operand must be a buffer of our own: the stock matMul caches
    // its packed operator by data id alone, so packing dy itself would tie a
    // [cols, cout] operator to dy's buffer, wrong for any later product that
    // reads dy with another shape. The copy is one memcpy; the packing is paid anyway.
    const dy2d = keep(
      temps,
      channelsFirst
        ? runWasm(backend, tf.Reshape, { x: dyNhwc }, { shape: [cols, info.outChannels] })
        : copyOf(backend, dy, [cols, info.outChannels]),
    );
    // Row blocks share dy2d as right-hand side, so XNNPACK packs it once.
    const rowsPerBlock = Math.max(1, Math.min(rows, Math.floor(MAX_IM2COL_ELEMENTS / cols)));
    const blocks: tf.TensorInfo[] = [];
    for (let row0 = 0; row0 < rows; row0 += rowsPerBlock) {
      const row1 = Math.min(rows, row0 + rowsPerBlock);
      const colsT = keep(temps, backend.makeOutput([row1 - row0, cols], 'float32'));
      fillIm2colTransposed(
        backend.typedArrayFromHeap(colsT) as Float32Array,
        backend.typedArrayFromHeap(xNhwc) as Float32Array,
        info,
        row0,
        row1,
      );
      blocks.push(
        keep(temps, runWasm(backend, tf.BatchMatMul, { a: colsT, b: dy2d }, { transposeA: false, transposeB: false })),
      );
    }
    if (blocks.length === 1) return runWasm(backend, tf.Reshape, { x: blocks[0]! }, { shape: filterShape });
    const out = backend.makeOutput(filterShape, 'float32');
    let offset = 0;
    for (const block of blocks) {
      const values = backend.typedArrayFromHeap(block);
      (backend.typedArrayFromHeap(out) as Float32Array).set(values, offset);
      offset += values.length;
    }
    return out;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * Writes rows `[row0, row1)` of the transposed im2col matrix of an NHWC input:
 * row `(fh·fw_count + fw)·cin + ci`, column `(n·oh_count + oh)·ow_count + ow`
 * holds `x[n, oh·sh − top + fh·dh, ow·sw − left + fw·dw, ci]`, or 0 in the padding.
 */
function fillIm2colTransposed(
  out: Float32Array,
  x: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  row0: number,
  row1: number,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const cols = batchSize * outHeight * outWidth;
  out.fill(0);
  const tap0 = Math.floor(row0 / inChannels);
  const tap1 = Math.floor((row1 - 1) / inChannels);
  for (let tap = tap0; tap <= tap1; tap++) {
    const fh = Math.floor(tap / filterWidth);
    const fw = tap - fh * filterWidth;
    const ci0 = Math.max(0, row0 - tap * inChannels);
    const ci1 = Math.min(inChannels, row1 - tap * inChannels);
    // Row tap·cin + ci of the matrix is row tap·cin + ci − row0 of this block.
    const rowBase = (tap * inChannels - row0) * cols;
    for (let n = 0; n < batchSize; n++) {
      for (let oh = 0; oh < outHeight; oh++) {
        const ih = oh * strideHeight - top + fh * dilationHeight;
        if (ih < 0 || ih >= inHeight) continue;
        const col0 = (n * outHeight + oh) * outWidth;
        const xRow = (n * inHeight + ih) * inWidth;
        for (let ow = 0; ow < outWidth; ow++) {
          const iw = ow * strideWidth - left + fw * dilationWidth;
          if (iw < 0 || iw >= inWidth) continue;
          const xOffset = (xRow + iw) * inChannels;
          const outOffset = rowBase + col0 + ow;
          for (let ci = ci0; ci < ci1; ci++) out[outOffset + ci * cols] = x[xOffset + ci]!;
        }
      }
    }
  }
}
