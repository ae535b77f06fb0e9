/**
 * The saved (JSON) form of a `Vocabulary`: its type, the built-in tokenizers
 * by name, and the reader's checks. Browser-safe.
 */
import { KdDataError } from '../errors.js';
import { tokenize, whitespaceTokenize, type Tokenizer } from './tokenize.js';

/** The built-in tokenizers, by the name a saved vocabulary records. */
export type TokenizerName = 'tokenize' | 'whitespace';

/** The JSON form of a `Vocabulary` (`Vocabulary.toJSON`). */
export interface VocabularyJson {
  /** Always `'kd-ts/vocabulary'`. */
  format: 'kd-ts/vocabulary';
  /** Format version (1). */
  version: number;
  /** Token of each id, specials first: `tokens[id]`. */
  tokens: string[];
  /** The tokenizer that strings go through: a built-in's name, or `'custom'`. */
  tokenizer: TokenizerName | 'custom';
  /** The default truncation length, if any. */
  maxLength?: number;
}

export const FORMAT: VocabularyJson['format'] = 'kd-ts/vocabulary';
export const VERSION = 1;

export const BUILT_IN_TOKENIZERS: Record<TokenizerName, Tokenizer> = { tokenize, whitespace: whitespaceTokenize };

/** Own keys only: `'constructor' in {}` is true, and would pass for a tokenizer name. */
export function isBuiltInTokenizer(name: unknown): name is TokenizerName {
  return typeof name === 'string' && Object.hasOwn(BUILT_IN_TOKENIZERS, name);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new KdDataError(
      'CORRUPT_FILE',
      `not a valid kd-ts vocabulary: invalid JSON (${(error as Error).message}); save it with JSON.stringify(vocab)`,
      { cause: error },
    );
  }
}

export function validateJson(data: unknown, specialTokens: readonly string[]): VocabularyJson {
  const fail = (problem: string): never => {
    throw new KdDataError('CORRUPT_FILE', `not a valid kd-ts vocabulary: ${problem}; save it with JSON.stringify(vocab)`);
  };
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return fail('expected a JSON object');
  const saved = data as Partial<VocabularyJson>;
  if (saved.format !== FORMAT) return fail(`"format" is ${JSON.stringify(saved.format)}, expected "${FORMAT}"`);
  if (saved.version !== VERSION) {
    return fail(`"version" is ${JSON.stringify(saved.version)}; this kd-ts reads version ${VERSION} (a newer kd-ts may read it)`);
  }
  if (!Array.isArray(saved.tokens) || !saved.tokens.every((t) => typeof t === 'string')) {
    return fail('"tokens" must be an array of strings');
  }
  if (specialTokens.some((special, id) => saved.tokens![id] !== special)) {
    return fail(`"tokens" must start with ${specialTokens.join(', ')} (ids 0, 1, 2)`);
  }
  if (saved.tokenizer !== 'custom' && !isBuiltInTokenizer(saved.tokenizer)) {
    return fail(`"tokenizer" is ${JSON.stringify(saved.tokenizer)}, expected "tokenize", "whitespace" or "custom"`);
  }
  if (saved.maxLength !== undefined && !(Number.isInteger(saved.maxLength) && saved.maxLength >= 1)) {
    return fail(`"maxLength" is ${JSON.stringify(saved.maxLength)}, expected a positive integer`);
  }
  return saved as VocabularyJson;
}
