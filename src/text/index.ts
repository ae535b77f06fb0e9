/**
 * kd-ts/text: the text pipeline of the Tang et al. recipe. Tokenizers, a
 * vocabulary that encodes sentences to padded id tensors, and the data
 * augmentation that grows a transfer set (masking, POS-guided word
 * replacement, n-gram sampling). Browser-safe.
 *
 * @module kd-ts/text
 */
export { tokenize, whitespaceTokenize, tokenizeSst2, type Tokenizer } from './tokenize.js';
export {
  Vocabulary,
  type EncodeBatchOptions,
  type EncodeOptions,
  type FromCorpusOptions,
  type TokenizerName,
  type VocabularyJson,
} from './Vocabulary.js';
export { augment, augmentPairs, type AugmentOptions } from './augment.js';
export { loadPosTagger, type PosTagger } from './posTagger.js';
