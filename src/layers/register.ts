import * as tf from '@tensorflow/tfjs-core';
import { FastLSTM } from './fastLstm.js';
import { LogitsOutput } from './logitsOutput.js';
import { MaskedGlobalMaxPooling1D } from './maskedGlobalMaxPooling1D.js';
import { PairFeatures } from './pairFeatures.js';

/** Custom layer classes kd-ts defines, in the order they were added. */
const KD_LAYER_CLASSES: Array<tf.serialization.SerializableConstructor<tf.serialization.Serializable>> = [
  FastLSTM,
  MaskedGlobalMaxPooling1D,
  PairFeatures,
  LogitsOutput,
];
let registered = false;

/**
 * Registers kd-ts's custom layer classes with tfjs's serialization registry,
 * so `tf.loadLayersModel` can rebuild students that use them. Idempotent;
 * kd-ts's builders and `loadStudent` call it, so users rarely need to.
 *
 * @returns The class names registered (namespaced `kd>...`).
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { registerKdLayers } from 'kd-ts';
 *
 * registerKdLayers();
 * const model = await tfl.loadLayersModel('indexeddb://my-student');
 * ```
 */
export function registerKdLayers(): string[] {
  if (!registered) {
    for (const cls of KD_LAYER_CLASSES) tf.serialization.registerClass(cls);
    registered = true;
  }
  return KD_LAYER_CLASSES.map((cls) => cls.className);
}
