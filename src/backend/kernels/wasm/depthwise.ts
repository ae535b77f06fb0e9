/**
 * What the two depthwise back-propagation kernels share: the convolution's
 * geometry (dilations exact) and the walk over its (output pixel, tap) pairs.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Shape4 } from './heap.js';

export interface DepthwiseAttrs {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: tf.DepthwiseConv2dNativeBackpropFilterAttrs['pad'];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function depthwiseInfo(inputShape: Shape4, filterShape: Shape4, attrs: DepthwiseAttrs): tf.backend_util.Conv2DInfo {
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

/**
 * Walks every (output pixel, filter tap) pair of a depthwise convolution whose
 * input pixel lies inside the image, handing `visit` the flat offsets of the
 * dy pixel, the input pixel and the tap's row of the filter (dilations exact).
 * Both depthwise backprop kernels are this walk with a different inner loop.
 */
export function forEachDepthwiseTap(
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
