/**
 * Training kernels that tfjs's wasm backend lacks (tfjs 4.22): the weight
 * gradients of Conv2D and DepthwiseConv2D, the input gradient of
 * DepthwiseConv2D, and `UnsortedSegmentSum` (the gradient of Gather, hence of
 * Embedding). Without them a Conv or Embedding student cannot train on wasm
 * (tensorflow/tfjs#8082, #8474). Also replacements for two stock kernels: a
 * checked `MaxPoolGrad` and a faster `Conv2DBackpropInput`.
 *
 * The kernels work on the wasm heap directly and reuse the backend's own
 * kernels (XNNPACK matrix product, Transpose, Reshape) for the heavy parts.
 * This file never imports `@tensorflow/tfjs-backend-wasm`: the backend is
 * typed structurally and its kernels are fetched from tfjs's registry.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';

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
 * import { registerWasmTrainingKernels } from 'kd-ts';
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
  const ours: string[] = [];
  for (const [kernelName, kernelFunc] of MISSING_KERNELS) {
    const existing = tf.getKernel(kernelName, WASM);
    if (existing === undefined) {
      tf.registerKernel({ kernelName, backendName: WASM, kernelFunc: markAsOurs(kernelFunc, kernelName) });
      ours.push(kernelName);
    } else if (isOurs(existing.kernelFunc, kernelName)) {
      ours.push(kernelName);
    }
  }
  replaceStockKernel(tf.MaxPoolGrad, checkedMaxPoolGrad as TrainingKernel, (stock) => {
    stockMaxPoolGrad = stock;
    stockMaxPoolGradIsRight = undefined;
  });
  ours.push(tf.MaxPoolGrad);
  replaceStockKernel(tf.Conv2DBackpropInput, fastConv2DBackpropInput as TrainingKernel, (stock) => {
    stockConv2DBackpropInput = stock;
  });
  ours.push(tf.Conv2DBackpropInput);
  return ours;
}

const WASM = 'wasm';

/**
 * Marks kd-ts's kernelFuncs with the kernel name, under a global symbol, so
 * that a second copy of kd-ts in the same process (ESM next to CJS) recognizes
 * them as registered rather than as tfjs's own.
 */
const KD_KERNEL = Symbol.for('kd-ts.wasmTrainingKernels.kernel');

function markAsOurs(kernelFunc: TrainingKernel, kernelName: string): tf.KernelFunc {
  const marked = kernelFunc as unknown as tf.KernelFunc & { [KD_KERNEL]?: string };
  if (marked[KD_KERNEL] === undefined) Object.defineProperty(marked, KD_KERNEL, { value: kernelName });
  return marked;
}

function isOurs(kernelFunc: tf.KernelFunc, kernelName: string): boolean {
  return (kernelFunc as tf.KernelFunc & { [KD_KERNEL]?: string })[KD_KERNEL] === kernelName;
}

/**
 * Puts kd-ts's `kernelFunc` in the registry in place of the stock wasm kernel,
 * unless it is there already, and hands the stock kernelFunc (undefined when
 * there is none) to `keepStock`. The stock setupFunc stays in the config: it
 * binds the C++ entry point that the stock kernelFunc, which ours delegates
 * to, needs, and it runs when the backend initializes, possibly after this.
 */
export function replaceStockKernel(
  kernelName: string,
  kernelFunc: TrainingKernel,
  keepStock: (stock: tf.KernelFunc | undefined) => void,
): void {
  const existing = tf.getKernel(kernelName, WASM);
  if (existing !== undefined && isOurs(existing.kernelFunc, kernelName)) return;
  keepStock(existing?.kernelFunc);
  // unregister first: registering over a kernel logs a warning.
  if (existing !== undefined) tf.unregisterKernel(kernelName, WASM);
  tf.registerKernel({ ...existing, kernelName, backendName: WASM, kernelFunc: markAsOurs(kernelFunc, kernelName) });
}

/**
 * Above this many float32 elements (16 MiB) the im2col matrix of
 * Conv2DBackpropFilter, and the product whose columns Conv2DBackpropInput adds
 * back into the image, are made in row blocks, so memory stays bounded for
 * large batches.
 */
const MAX_IM2COL_ELEMENTS = 1 << 22;

/** What the kernels use of tfjs-backend-wasm's `BackendWasm` (typed structurally: it is only a devDependency). */
export interface WasmBackend {
  /** Allocates an uninitialized tensor on the wasm heap. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's heap memory; detached when the heap grows, so take it after the last allocation. */
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
  /** Decrements the reference count of a tensor's data and frees it at zero. */
  disposeData(dataId: tf.DataId): boolean;
}

export interface KernelArgs<Attrs> {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: Attrs;
}

export type TrainingKernel = (args: KernelArgs<never>) => tf.TensorInfo;

/** Kernels tfjs-backend-wasm 4.22 does not have. */
const MISSING_KERNELS: ReadonlyArray<readonly [string, TrainingKernel]> = [
  [tf.Conv2DBackpropFilter, conv2DBackpropFilter as TrainingKernel],
  [tf.DepthwiseConv2dNativeBackpropFilter, depthwiseConv2dNativeBackpropFilter as TrainingKernel],
  [tf.DepthwiseConv2dNativeBackpropInput, depthwiseConv2dNativeBackpropInput as TrainingKernel],
  [tf.UnsortedSegmentSum, unsortedSegmentSum as TrainingKernel],
];

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

/** The stock wasm Conv2DBackpropInput, which {@link fastConv2DBackpropInput} replaced, for the inputs it does not take. */
let stockConv2DBackpropInput: tf.KernelFunc | undefined;

/**
 * dx of Conv2D (and the forward pass of Conv2DTranspose) for the inputs that
 * {@link conv2DBackpropInputInfo} accepts; the stock kernel takes the rest.
 */
function fastConv2DBackpropInput(args: KernelArgs<tf.Conv2DBackpropInputAttrs>): tf.TensorInfo {
  const backend = asWasmBackend(args.backend, tf.Conv2DBackpropInput);
  const stock = stockConv2DBackpropInput;
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

/**
 * Walks every (output pixel, filter tap) pair of a depthwise convolution whose
 * input pixel lies inside the image, handing `visit` the flat offsets of the
 * dy pixel, the input pixel and the tap's row of the filter (dilations exact).
 * Both depthwise backprop kernels are this walk with a different inner loop.
 */
function forEachDepthwiseTap(
  info: ReturnType<typeof depthwiseInfo>,
  visit: (dyOffset: number, inputOffset: number, tapOffset: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const dyOffset = ((n * outHeight + oh) * outWidth + ow) * outChannels;
        for (let fh = 0; fh < filterHeight; fh++) {
          const ih = oh * strideHeight - top + fh * dilationHeight;
          if (ih < 0 || ih >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const iw = ow * strideWidth - left + fw * dilationWidth;
            if (iw < 0 || iw >= inWidth) continue;
            visit(dyOffset, ((n * inHeight + ih) * inWidth + iw) * inChannels, (fh * filterWidth + fw) * outChannels);
          }
        }
      }
    }
  }
}

/**
 * out[s, ...] = Σ over i with segmentIds[i] = s of x[i, ...]; ids outside
 * [0, numSegments) are dropped, as on the cpu backend. One scatter-add pass in
 * JS (a one-hot product would cost numSegments times more).
 */
function unsortedSegmentSum(args: KernelArgs<tf.UnsortedSegmentSumAttrs>): tf.TensorInfo {
  const name = tf.UnsortedSegmentSum;
  const backend = asWasmBackend(args.backend, name);
  const { x, segmentIds } = requireInputs(args.inputs, ['x', 'segmentIds'], name);
  const { numSegments } = requireAttrs(args.attrs, name);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${name} on wasm (kd-ts) supports float32 and int32 x, got ${x.dtype}: cast x first`,
    );
  }
  if (segmentIds.dtype !== 'int32') {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${name}: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  const idsRank = segmentIds.shape.length;
  if (!segmentIds.shape.every((size, axis) => size === x.shape[axis])) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${name}: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
    );
  }
  const innerShape = x.shape.slice(idsRank);
  const inner = tf.util.sizeFromShape(innerShape);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const sums = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const values = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  sums.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= numSegments) continue;
    const from = i * inner;
    const to = id * inner;
    for (let j = 0; j < inner; j++) sums[to + j] = sums[to + j]! + values[from + j]!;
  }
  return out;
}

/** The stock wasm MaxPoolGrad, which {@link checkedMaxPoolGrad} replaced; and whether it passed the check. */
let stockMaxPoolGrad: tf.KernelFunc | undefined;
let stockMaxPoolGradIsRight: boolean | undefined;

function checkedMaxPoolGrad(args: KernelArgs<tf.MaxPoolGradAttrs>): tf.TensorInfo {
  const backend = asWasmBackend(args.backend, tf.MaxPoolGrad);
  if (stockMaxPoolGrad !== undefined) {
    stockMaxPoolGradIsRight ??= stockMaxPoolGradPasses(backend, stockMaxPoolGrad);
    if (stockMaxPoolGradIsRight) return stockMaxPoolGrad(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
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

type Shape4 = [number, number, number, number];

interface DepthwiseAttrs {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: tf.DepthwiseConv2dNativeBackpropFilterAttrs['pad'];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function depthwiseInfo(inputShape: Shape4, filterShape: Shape4, attrs: DepthwiseAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/** Runs one of the wasm backend's own kernels; the caller disposes the result. */
function runWasm(
  backend: WasmBackend,
  kernelName: string,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, WASM);
  if (kernel === undefined) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `kernel ${kernelName} is not registered for wasm: import @tensorflow/tfjs-backend-wasm before training on wasm`,
    );
  }
  return kernel.kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo;
}

function keep(temps: tf.TensorInfo[], info: tf.TensorInfo): tf.TensorInfo {
  temps.push(info);
  return info;
}

function copyOf(backend: WasmBackend, info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  const copy = backend.makeOutput(shape, info.dtype);
  backend.typedArrayFromHeap(copy).set(backend.typedArrayFromHeap(info));
  return copy;
}

/** A copy of elements `[from, to)` of a tensor, as a tensor of `shape`. */
function rowsOf(backend: WasmBackend, info: tf.TensorInfo, from: number, to: number, shape: number[]): tf.TensorInfo {
  const copy = backend.makeOutput(shape, info.dtype);
  backend.typedArrayFromHeap(copy).set(backend.typedArrayFromHeap(info).subarray(from, to));
  return copy;
}

function zeros(backend: WasmBackend, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  backend.typedArrayFromHeap(out).fill(0);
  return out;
}

function asWasmBackend(backend: unknown, kernelName: string): WasmBackend {
  const candidate = backend as Partial<WasmBackend> | null;
  if (
    typeof candidate?.makeOutput !== 'function' ||
    typeof candidate.typedArrayFromHeap !== 'function' ||
    typeof candidate.disposeData !== 'function'
  ) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `kd-ts's ${kernelName} kernel runs on tfjs's wasm backend only, but got another backend: call tf.setBackend('wasm')`,
    );
  }
  return candidate as WasmBackend;
}

function requireInputs<K extends string>(
  inputs: tf.NamedTensorInfoMap,
  names: readonly K[],
  kernelName: string,
): Record<K, tf.TensorInfo> {
  const found = {} as Record<K, tf.TensorInfo>;
  for (const name of names) {
    const input = inputs[name];
    if (input === undefined) throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${kernelName}: input ${name} is missing`);
    found[name] = input;
  }
  return found;
}

function requireAttrs<Attrs>(attrs: Attrs | undefined, kernelName: string): Attrs {
  if (attrs === undefined) throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${kernelName}: attributes are missing`);
  return attrs;
}

function requireFloat32(kernelName: string, inputs: Record<string, tf.TensorInfo>): void {
  for (const [name, input] of Object.entries(inputs)) {
    if (input.dtype !== 'float32') {
      throw new KdBackendError(
        'UNSUPPORTED_KERNEL_INPUT',
        `${kernelName} on wasm (kd-ts) supports float32 only, but ${name} is ${input.dtype}: cast it with tf.cast(${name}, 'float32')`,
      );
    }
  }
}

function requireRank4(kernelName: string, inputs: Record<string, tf.TensorInfo>): void {
  for (const [name, input] of Object.entries(inputs)) {
    if (input.shape.length !== 4) {
      throw new KdBackendError(
        'UNSUPPORTED_KERNEL_INPUT',
        `${kernelName}: ${name} must be rank 4, got shape [${input.shape}]`,
      );
    }
  }
}

function requireFilterChannels(kernelName: string, filterShape: number[], inChannels: number): void {
  if (filterShape[2] !== inChannels) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${kernelName}: the filter [${filterShape}] takes ${filterShape[2]} input channels but the input has ${inChannels}`,
    );
  }
}

function requireShape(kernelName: string, name: string, actual: number[], expected: number[]): void {
  if (actual.length !== expected.length || actual.some((size, axis) => size !== expected[axis])) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${kernelName}: ${name} has shape [${actual}] but the convolution gives [${expected}]: check strides, pad and filterShape`,
    );
  }
}
