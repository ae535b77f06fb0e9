import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Computes, from a model's inputs, the padding mask a layer's output carries
 * (`[batch, time]`, 1 where a position counts), or null.
 *
 * tfjs computes masks while it runs a model and throws them away; a feature
 * term needs the mask of one layer without a second forward pass. The mask of
 * a sequence model comes from an `Embedding` with `maskZero` (or a `Masking`
 * layer) reading a model input, and is carried unchanged (or dropped) by the
 * layers after it: so the mask is rebuilt by calling `computeMask` of that
 * source on the model input, then of each layer on the path to the feature
 * layer. These `computeMask`s read the mask only (RNNs keep it with
 * `returnSequences`, `Dense` and `Dropout` pass it on, a layer that does not
 * support masking drops it); the path must be single-input layers from the
 * source to the feature layer. Anything else (no source, a branch) gives no
 * mask.
 * @internal
 */
export type LayerMaskFn = (inputs: readonly tf.Tensor[]) => tf.Tensor | null;

/** Builds the {@link LayerMaskFn} of `layer` in `model`; undefined when it can never carry a mask. */
export function layerMaskFn(model: tfl.LayersModel, layer: tfl.layers.Layer): LayerMaskFn | undefined {
  const path: tfl.layers.Layer[] = [];
  for (let current = layer; ; ) {
    path.unshift(current);
    const node = current.inboundNodes[0];
    const inbound = node?.inboundLayers ?? [];
    if (inbound.length !== 1) return undefined;
    const previous = inbound[0]!;
    if (previous.getClassName() === 'InputLayer') {
      if (!makesMask(current)) return undefined;
      const inputIndex = model.inputLayers.indexOf(previous as never);
      if (inputIndex < 0) return undefined;
      return (inputs) => {
        const source = inputs[inputIndex]!;
        let mask = path[0]!.computeMask(source) as tf.Tensor | null;
        const made = mask === null ? [] : [mask];
        for (const next of path.slice(1)) {
          if (mask === null) break;
          mask = next.supportsMasking ? (next.computeMask(source, mask) as tf.Tensor | null) : null;
          if (mask !== null) made.push(mask);
        }
        const result = mask === null ? null : tf.cast(mask, 'float32');
        tf.dispose([...new Set(made)]);
        return result;
      };
    }
    current = previous;
  }
}

function makesMask(layer: tfl.layers.Layer): boolean {
  const name = layer.getClassName();
  if (name === 'Masking') return true;
  return name === 'Embedding' && (layer.getConfig() as { maskZero?: boolean }).maskZero === true;
}
