/**
 * kd-ts/layers: the tfjs-layers layers kd-ts's students are built from (a
 * fused, trainable LSTM, masked max pooling, sentence-pair features), and
 * {@link registerKdLayers}, which makes saved models using them loadable.
 *
 * @module kd-ts/layers
 */
export {
  FastLSTM,
  fastLstm,
  bidirectionalFastLstm,
  type FastLstmArgs,
  type RecurrentActivationName,
} from './fastLstm.js';
export type { Initializer, InitializerSpec } from './initializers.js';
export { MaskedGlobalMaxPooling1D } from './maskedGlobalMaxPooling1D.js';
export { PairFeatures } from './pairFeatures.js';
export { registerKdLayers } from './register.js';
