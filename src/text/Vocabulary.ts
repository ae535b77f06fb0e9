/**
 * Vocabulary: tokens ↔ integer ids for embedding students, with padding,
 * truncation and a JSON form. Browser-safe.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError } from '../errors.js';
import type { Tokenizer } from './tokenize.js';
import { BUILT_IN_TOKENIZERS, FORMAT, VERSION, isBuiltInTokenizer, parseJson, validateJson, type VocabularyJson } from './vocabularyJson.js';

export type { VocabularyJson } from './vocabularyJson.js';

export type { TokenizerName } from './vocabularyJson.js';
import type { TokenizerName } from './vocabularyJson.js';

/** Options of {@link Vocabulary.fromCorpus}. */
export interface FromCorpusOptions {
  /** Keep tokens seen at least this often (default 1). */
  minCount?: number;
  /**
   * The most ids, the three special tokens included (so `vocab.size <= maxSize`
   * and `maxSize` can be the embedding's input dimension). Default: no limit.
   */
  maxSize?: number;
  /**
   * How strings are split: `'tokenize'` (default, {@link tokenize}, for raw
   * text), `'whitespace'` ({@link whitespaceTokenize}, for SST-2 and other
   * pre-tokenized text) or your own function (then pass it again to
   * {@link Vocabulary.fromJSON}). Pre-split `string[]` rows are used as they are.
   */
  tokenizer?: TokenizerName | Tokenizer;
  /** The default `maxLength` of {@link Vocabulary.encode} and {@link Vocabulary.encodeBatch} (default: none). */
  maxLength?: number;
}

/** Options of {@link Vocabulary.encode}. */
export interface EncodeOptions {
  /** Keep the first `maxLength` tokens (default: the vocabulary's `maxLength`, else all). */
  maxLength?: number;
  /** Pad with {@link Vocabulary.PAD} at the end up to this length (after truncation). */
  padTo?: number;
}

/** Options of {@link Vocabulary.encodeBatch}. */
export interface EncodeBatchOptions {
  /** Keep the first `maxLength` tokens of each row (default: the vocabulary's `maxLength`, else all). */
  maxLength?: number;
  /**
   * The width of the batch: `'longest'` (default) pads to the longest row
   * (after truncation), a number pads or truncates every row to exactly that
   * width. The width is at least 1, so a batch of empty texts is one PAD wide.
   */
  padTo?: 'longest' | number;
}


/**
 * Maps tokens to ids and back. Ids 0, 1 and 2 are reserved: {@link Vocabulary.PAD}
 * (padding, masked by the students), {@link Vocabulary.UNK} (tokens not in the
 * vocabulary) and {@link Vocabulary.MASK} (the mask token of Tang et al.'s
 * augmentation, see {@link augment}); corpus tokens follow, most frequent first.
 *
 * @example
 * ```ts
 * import { Vocabulary } from 'kd-ts';
 * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace', maxLength: 50 });
 * // ids: <pad> 0, <unk> 1, <mask> 2, a 3, film 4, dull 5, fine 6 (most frequent first, ties a-z)
 * vocab.encode('a fine <mask>');                        // [3, 6, 2]
 * const x = vocab.encodeBatch(['a fine film', 'dull']); // int32 [[3, 6, 4], [5, 0, 0]]
 * const copy = Vocabulary.fromJSON(JSON.stringify(vocab));
 * ```
 */
export class Vocabulary {
  /** Id of the padding token (0). */
  static readonly PAD = 0;
  /** Id of unknown tokens (1). */
  static readonly UNK = 1;
  /** Id of the mask token (2). */
  static readonly MASK = 2;
  /** The padding token. */
  static readonly PAD_TOKEN = '<pad>';
  /** The unknown token. */
  static readonly UNK_TOKEN = '<unk>';
  /** The mask token, as {@link augment} writes it. */
  static readonly MASK_TOKEN = '<mask>';
  /** The special tokens, by id. */
  static readonly SPECIAL_TOKENS: readonly string[] = [Vocabulary.PAD_TOKEN, Vocabulary.UNK_TOKEN, Vocabulary.MASK_TOKEN];

  /** The default truncation length of {@link Vocabulary.encode} and {@link Vocabulary.encodeBatch}. */
  readonly maxLength: number | undefined;
  /** The function strings are split with. */
  readonly tokenizer: Tokenizer;
  private readonly tokens: readonly string[];
  private readonly ids: Map<string, number>;
  private readonly tokenizerName: TokenizerName | 'custom';

  /**
   * A vocabulary of the given tokens, ids in order after the three specials.
   *
   * @param tokens - Distinct corpus tokens (no special tokens), id 3 first.
   * @param options - `tokenizer` and `maxLength`, as in {@link FromCorpusOptions}.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a repeated or special token, an empty token, a bad `maxLength`.
   */
  constructor(tokens: Iterable<string>, options: Pick<FromCorpusOptions, 'tokenizer' | 'maxLength'> = {}) {
    this.tokens = [...Vocabulary.SPECIAL_TOKENS, ...tokens];
    this.ids = new Map();
    this.tokens.forEach((token, id) => {
      if (typeof token !== 'string' || token === '') {
        throw new KdConfigError('INVALID_OPTION', `token ${id} is ${JSON.stringify(token)}: tokens must be non-empty strings`);
      }
      if (this.ids.has(token)) {
        const what = id < 3 || this.ids.get(token)! < 3 ? 'a special token' : 'repeated';
        throw new KdConfigError('INVALID_OPTION', `token ${JSON.stringify(token)} (id ${id}) is ${what}: list each corpus token once, without <pad>, <unk>, <mask>`);
      }
      this.ids.set(token, id);
    });
    const tokenizer = options.tokenizer ?? 'tokenize';
    if (typeof tokenizer === 'function') {
      this.tokenizer = tokenizer;
      this.tokenizerName = 'custom';
    } else if (isBuiltInTokenizer(tokenizer)) {
      this.tokenizer = BUILT_IN_TOKENIZERS[tokenizer];
      this.tokenizerName = tokenizer;
    } else {
      throw new KdConfigError('INVALID_OPTION', `tokenizer must be 'tokenize', 'whitespace' or a function, got ${JSON.stringify(tokenizer)}`);
    }
    this.maxLength = options.maxLength === undefined ? undefined : checkLength(options.maxLength, 'maxLength');
  }

  /**
   * Builds a vocabulary from a corpus: tokens counted over all texts, those seen
   * at least `minCount` times kept, most frequent first, ties in code-unit order
   * of the token (so the same corpus always gives the same ids), cut at `maxSize`.
   *
   * @param texts - Strings (split with the tokenizer) or token arrays.
   * @param options - See {@link FromCorpusOptions}.
   * @returns The vocabulary.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a `minCount` below 1, a `maxSize` below 3, an unknown tokenizer.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const sentences = ['a fine film', 'a dull film', 'a fine cast'];
   * const vocab = Vocabulary.fromCorpus(sentences, { tokenizer: 'whitespace', minCount: 2, maxSize: 20_000 });
   * console.log(vocab.size);
   * ```
   */
  static fromCorpus(texts: Iterable<string | readonly string[]>, options: FromCorpusOptions = {}): Vocabulary {
    const minCount = checkLength(options.minCount ?? 1, 'minCount');
    const maxSize = options.maxSize === undefined ? Infinity : checkLength(options.maxSize, 'maxSize');
    if (maxSize < Vocabulary.SPECIAL_TOKENS.length) {
      throw new KdConfigError('INVALID_OPTION', `maxSize must be at least 3 (the ids of <pad>, <unk>, <mask>), got ${maxSize}`);
    }
    const vocab = new Vocabulary([], options); // validates the tokenizer and maxLength once
    const counts = new Map<string, number>();
    for (const text of texts) {
      for (const token of typeof text === 'string' ? vocab.tokenizer(text) : text) {
        counts.set(token, (counts.get(token) ?? 0) + 1);
      }
    }
    for (const special of Vocabulary.SPECIAL_TOKENS) counts.delete(special);
    const kept = [...counts].filter(([, count]) => count >= minCount);
    kept.sort(([a, countA], [b, countB]) => countB - countA || (a < b ? -1 : a > b ? 1 : 0));
    const size = Math.min(kept.length, maxSize - Vocabulary.SPECIAL_TOKENS.length);
    return new Vocabulary(kept.slice(0, size).map(([token]) => token), options);
  }

  /**
   * Reads a vocabulary saved with {@link Vocabulary.toJSON} (`JSON.stringify(vocab)`).
   *
   * @param json - The JSON text, or the parsed object.
   * @param options - `tokenizer`: required when the vocabulary was built with a custom tokenizer function.
   * @returns The vocabulary, with the same ids.
   * @throws {@link KdDataError} `CORRUPT_FILE` for anything that is not a valid saved vocabulary (the message says what);
   *   {@link KdConfigError} `INVALID_OPTION` for a custom tokenizer not passed.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * const text = JSON.stringify(vocab);           // save it anywhere
   * const same = Vocabulary.fromJSON(text);
   * ```
   */
  static fromJSON(json: string | unknown, options: { tokenizer?: Tokenizer } = {}): Vocabulary {
    const data = typeof json === 'string' ? parseJson(json) : json;
    const saved = validateJson(data, Vocabulary.SPECIAL_TOKENS);
    if (saved.tokenizer === 'custom' && options.tokenizer === undefined) {
      throw new KdConfigError(
        'INVALID_OPTION',
        'this vocabulary was built with a custom tokenizer function: pass it again, Vocabulary.fromJSON(json, { tokenizer })',
      );
    }
    const tokenizer = options.tokenizer ?? (saved.tokenizer as TokenizerName);
    try {
      return new Vocabulary(saved.tokens.slice(Vocabulary.SPECIAL_TOKENS.length), {
        tokenizer,
        ...(saved.maxLength === undefined ? {} : { maxLength: saved.maxLength }),
      });
    } catch (error) {
      throw new KdDataError('CORRUPT_FILE', `not a valid kd-ts vocabulary: ${(error as Error).message}`, { cause: error });
    }
  }

  /** The number of ids, special tokens included: the embedding's input dimension. */
  get size(): number {
    return this.tokens.length;
  }

  /**
   * The id of a token.
   *
   * @param token - A token.
   * @returns Its id, or {@link Vocabulary.UNK} when it is not in the vocabulary.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * vocab.idOf('film'); // e.g. 4
   * vocab.idOf('<mask>'); // 2
   * ```
   */
  idOf(token: string): number {
    return this.ids.get(token) ?? Vocabulary.UNK;
  }

  /**
   * Whether a token has its own id.
   *
   * @param token - A token.
   * @returns `true` for the special tokens and the corpus tokens kept.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * vocab.has('film'); // true
   * ```
   */
  has(token: string): boolean {
    return this.ids.has(token);
  }

  /**
   * The token of an id.
   *
   * @param id - An integer in `[0, size)`.
   * @returns Its token.
   * @throws {@link KdDataError} `TOKEN_ID_OUT_OF_RANGE` for an id outside the vocabulary.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * vocab.tokenOf(0); // '<pad>'
   * ```
   */
  tokenOf(id: number): string {
    const token = Number.isInteger(id) ? this.tokens[id] : undefined;
    if (token === undefined) {
      throw new KdDataError('TOKEN_ID_OUT_OF_RANGE', `token id ${id} is outside [0, ${this.size}): encode with this vocabulary, or check its size`);
    }
    return token;
  }

  /**
   * Token ids of one text: split with the vocabulary's tokenizer (a string) or
   * taken as given (tokens), unknown tokens as {@link Vocabulary.UNK},
   * truncated to `maxLength`, padded at the end with {@link Vocabulary.PAD} up to `padTo`.
   *
   * @param text - A string, or its tokens.
   * @param options - See {@link EncodeOptions}.
   * @returns The ids.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a `maxLength` or `padTo` that is not a non-negative integer.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * vocab.encode('a fine film', { maxLength: 2 });   // [3, 6]
   * vocab.encode('a fine film', { padTo: 5 });       // [3, 6, 4, 0, 0]
   * ```
   */
  encode(text: string | readonly string[], options: EncodeOptions = {}): number[] {
    const maxLength = options.maxLength === undefined ? this.maxLength : checkLength(options.maxLength, 'maxLength', 0);
    const tokens = typeof text === 'string' ? this.tokenizer(text) : text;
    const length = maxLength === undefined ? tokens.length : Math.min(tokens.length, maxLength);
    const ids = new Array<number>(length);
    for (let i = 0; i < length; i++) ids[i] = this.idOf(tokens[i]!);
    if (options.padTo !== undefined) {
      for (let i = length; i < checkLength(options.padTo, 'padTo', 0); i++) ids.push(Vocabulary.PAD);
    }
    return ids;
  }

  /**
   * Token ids of many texts as one `int32` tensor `[texts.length, width]`,
   * each row truncated to `maxLength` and padded at the end with
   * {@link Vocabulary.PAD} (the students mask PAD, so padding changes nothing).
   *
   * @param texts - Strings or token arrays.
   * @param options - See {@link EncodeBatchOptions}.
   * @returns An int32 `Tensor2D`; dispose it when done.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a bad `maxLength` or `padTo`.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * const x = vocab.encodeBatch(['a fine film', 'dull'], { maxLength: 50 }); // [2, 3]
   * const y = vocab.encodeBatch(['a fine film'], { padTo: 8 });                // [1, 8]
   * ```
   */
  encodeBatch(texts: readonly (string | readonly string[])[], options: EncodeBatchOptions = {}): tf.Tensor2D {
    const { ids, shape } = this.encodeBatchIds(texts, options);
    return tf.tensor2d(ids, shape, 'int32');
  }

  /**
   * {@link Vocabulary.encodeBatch} without tensors: the ids row after row, for
   * `tf.data` generators, workers, or saving.
   *
   * @param texts - Strings or token arrays.
   * @param options - See {@link EncodeBatchOptions}.
   * @returns `{ ids, shape }`: `shape[0] × shape[1]` ids, PAD-filled.
   * @throws {@link KdConfigError} `INVALID_OPTION` for a bad `maxLength` or `padTo`.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * const { ids, shape } = vocab.encodeBatchIds(['a fine film', 'dull']); // Int32Array(6), [2, 3]
   * ```
   */
  encodeBatchIds(
    texts: readonly (string | readonly string[])[],
    options: EncodeBatchOptions = {},
  ): { ids: Int32Array; shape: [number, number] } {
    const padTo = options.padTo ?? 'longest';
    const fixed = padTo === 'longest' ? undefined : checkLength(padTo, 'padTo');
    const maxLength = options.maxLength === undefined ? this.maxLength : checkLength(options.maxLength, 'maxLength', 0);
    const cut = Math.min(maxLength ?? Infinity, fixed ?? Infinity);
    const rows = texts.map((text) => this.encode(text, cut === Infinity ? {} : { maxLength: cut }));
    const width = Math.max(1, fixed ?? rows.reduce((longest, row) => Math.max(longest, row.length), 0));
    const ids = new Int32Array(rows.length * width); // zeros: PAD
    rows.forEach((row, r) => ids.set(row, r * width));
    return { ids, shape: [rows.length, width] };
  }

  /**
   * Tokens of ids, joined with single spaces; PAD ids are skipped.
   *
   * @param ids - Token ids.
   * @returns The text.
   * @throws {@link KdDataError} `TOKEN_ID_OUT_OF_RANGE` for an id outside the vocabulary.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * vocab.decode([3, 6, 2, 0]); // 'a fine <mask>'
   * ```
   */
  decode(ids: Iterable<number>): string {
    const tokens: string[] = [];
    for (const id of ids) if (id !== Vocabulary.PAD) tokens.push(this.tokenOf(id));
    return tokens.join(' ');
  }

  /**
   * The JSON form, versioned; `JSON.stringify(vocab)` calls it.
   *
   * @returns A plain object for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { Vocabulary } from 'kd-ts';
   * const vocab = Vocabulary.fromCorpus(['a fine film', 'a dull film'], { tokenizer: 'whitespace' });
   * const text = JSON.stringify(vocab); // {"format":"kd-ts/vocabulary","version":1,"tokens":[...],...}
   * ```
   */
  toJSON(): VocabularyJson {
    return {
      format: FORMAT,
      version: VERSION,
      tokenizer: this.tokenizerName,
      ...(this.maxLength === undefined ? {} : { maxLength: this.maxLength }),
      tokens: [...this.tokens],
    };
  }
}

function checkLength(value: number, name: string, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new KdConfigError('INVALID_OPTION', `${name} must be an integer ≥ ${min}, got ${value}`);
  }
  return value;
}
