/**
 * Tang et al. 2019's data augmentation for distillation (§3.1): masking,
 * POS-guided word replacement and n-gram sampling, to grow the transfer set
 * the teacher labels. Browser-safe; the default POS tagger is loaded lazily.
 *
 * @packageDocumentation
 */
import seedrandom from 'seedrandom';
import { KdConfigError } from '../errors.js';
import { loadPosTagger, type PosTagger } from './posTagger.js';
import { tokenize, type Tokenizer } from './tokenize.js';
import { Vocabulary } from './Vocabulary.js';

/** Options of {@link augment} and {@link augmentPairs}. */
export interface AugmentOptions {
  /** Probability that a word is replaced by the mask token (default 0.1). */
  pMask?: number;
  /** Probability that a word is replaced by a word of the same POS tag (default 0.1); `pMask + pPos ≤ 1`. */
  pPos?: number;
  /** Probability that a sample is cut to one random n-gram, n uniform in `1..maxNgram` (default 0.25). */
  pNgram?: number;
  /** The largest n of the n-gram step (default 5). */
  maxNgram?: number;
  /** Samples drawn per sentence (default 20); duplicates and originals are dropped, so fewer may come out. */
  nIter?: number;
  /** Seed of the random stream (default 0): the same seed and input give the same output. */
  seed?: number | string;
  /** How strings are split (default {@link tokenize}); pass {@link whitespaceTokenize} for SST-2. Token arrays are used as given. */
  tokenizer?: Tokenizer;
  /**
   * POS tags of one pre-tokenized sentence, one tag per token (default: the
   * Penn Treebank tagger of `wink-pos-tagger`, see {@link loadPosTagger}).
   * Not needed, nor loaded, when `pPos` is 0.
   */
  tagger?: PosTagger;
  /** The token that masked words become (default {@link Vocabulary.MASK_TOKEN}, which {@link Vocabulary.encode} maps to MASK). */
  maskToken?: string;
}

/**
 * Tang et al. 2019's augmentation (arXiv:1903.12136, §3.1). For each sentence,
 * `nIter` times: every word, with one uniform draw X, becomes the mask token
 * if X < pMask, else a word of the same POS tag if X < pMask + pPos (drawn by
 * its unigram frequency within that tag, counted over the given sentences with
 * each word's tag in context; the same word may come back); then, with
 * probability pNgram, the sample is cut to one of its n-grams, n uniform in
 * 1..maxNgram and every start equally likely (the last n-gram included; a
 * sample of n words or fewer stays whole). Samples equal to an input sentence
 * or to an earlier sample are dropped.
 *
 * The transfer set of the paper is the original sentences plus these. Each
 * distinct sentence is tagged once.
 *
 * @param sentences - Strings (split with `tokenizer`) or token arrays.
 * @param options - See {@link AugmentOptions}.
 * @returns The new sentences only, tokens joined by single spaces, in input order
 *   (all samples of sentence 0 first); masked words are `<mask>`.
 * @throws {@link KdConfigError} `INVALID_OPTION` for probabilities outside [0, 1], `pMask + pPos > 1`,
 *   a non-integer `nIter`/`maxNgram`, or a tagger that returns the wrong number of tags;
 *   `MISSING_DEPENDENCY` when the default tagger cannot be loaded.
 *
 * @example
 * ```ts
 * import { augment } from 'kd-ts';
 * import { whitespaceTokenize } from 'kd-ts/text';
 * const sentences = ['a gorgeous , witty , seductive movie . ', 'contains no wit , only labored gags '];
 * const extra = await augment(sentences, { nIter: 20, seed: 1, tokenizer: whitespaceTokenize });
 * const transferSet = [...sentences.map((s) => s.trim()), ...extra];
 * ```
 */
export async function augment(
  sentences: readonly (string | readonly string[])[],
  options: AugmentOptions = {},
): Promise<string[]> {
  const config = resolveOptions(options);
  const tokenized = sentences.map((s) => (typeof s === 'string' ? config.tokenizer(s) : [...s]));
  const augmenter = await Augmenter.create(tokenized, config);
  const seen = new Set(tokenized.map((tokens) => tokens.join(' ')));
  const out: string[] = [];
  for (let s = 0; s < tokenized.length; s++) {
    for (let iteration = 0; iteration < config.nIter; iteration++) {
      const text = augmenter.sample(s).join(' ');
      if (text === '' || seen.has(text)) continue;
      seen.add(text);
      out.push(text);
    }
  }
  return out;
}

/**
 * {@link augment} for sentence pairs (entailment, paraphrase): sample i of a
 * pair changes the first sentence (i mod 3 = 0), the second (1) or both (2),
 * as Tang et al. augment pair tasks. Pairs equal to an input pair or to an
 * earlier sample are dropped. Sentences of both sides share one word/tag
 * frequency table.
 *
 * @param pairs - `[first, second]` strings or token arrays.
 * @param options - See {@link AugmentOptions}.
 * @returns The new pairs only, each side's tokens joined by single spaces.
 * @throws As {@link augment}.
 *
 * @example
 * ```ts
 * import { augmentPairs } from 'kd-ts/text';
 * const extra = await augmentPairs([['a man is playing a guitar .', 'a person plays music .']], { nIter: 6, seed: 3 });
 * ```
 */
export async function augmentPairs(
  pairs: readonly (readonly [string | readonly string[], string | readonly string[]])[],
  options: AugmentOptions = {},
): Promise<[string, string][]> {
  const config = resolveOptions(options);
  const split = (s: string | readonly string[]) => (typeof s === 'string' ? config.tokenizer(s) : [...s]);
  const sides = pairs.flatMap(([a, b]) => [split(a), split(b)]); // pair p: sides 2p and 2p + 1
  const augmenter = await Augmenter.create(sides, config);
  const key = (a: string, b: string) => `${a}\u0000${b}`;
  const seen = new Set(pairs.map((_, p) => key(sides[2 * p]!.join(' '), sides[2 * p + 1]!.join(' '))));
  const out: [string, string][] = [];
  for (let p = 0; p < pairs.length; p++) {
    for (let iteration = 0; iteration < config.nIter; iteration++) {
      const which = iteration % 3;
      const a = which === 1 ? sides[2 * p]! : augmenter.sample(2 * p);
      const b = which === 0 ? sides[2 * p + 1]! : augmenter.sample(2 * p + 1);
      const pair: [string, string] = [a.join(' '), b.join(' ')];
      if (pair[0] === '' || pair[1] === '' || seen.has(key(...pair))) continue;
      seen.add(key(...pair));
      out.push(pair);
    }
  }
  return out;
}

interface ResolvedOptions {
  pMask: number;
  pPos: number;
  pNgram: number;
  maxNgram: number;
  nIter: number;
  seed: string;
  tokenizer: Tokenizer;
  tagger: PosTagger | undefined;
  maskToken: string;
}

function resolveOptions(options: AugmentOptions): ResolvedOptions {
  const probability = (value: number, name: string) => {
    if (!(typeof value === 'number' && value >= 0 && value <= 1)) {
      throw new KdConfigError('INVALID_OPTION', `${name} must be a probability in [0, 1], got ${value}`);
    }
    return value;
  };
  const count = (value: number, name: string) => {
    if (!Number.isInteger(value) || value < 1) {
      throw new KdConfigError('INVALID_OPTION', `${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  const pMask = probability(options.pMask ?? 0.1, 'pMask');
  const pPos = probability(options.pPos ?? 0.1, 'pPos');
  if (pMask + pPos > 1) {
    throw new KdConfigError('INVALID_OPTION', `pMask + pPos must be at most 1 (one draw picks mask, swap or keep), got ${pMask + pPos}`);
  }
  return {
    pMask,
    pPos,
    pNgram: probability(options.pNgram ?? 0.25, 'pNgram'),
    maxNgram: count(options.maxNgram ?? 5, 'maxNgram'),
    nIter: count(options.nIter ?? 20, 'nIter'),
    seed: String(options.seed ?? 0),
    tokenizer: options.tokenizer ?? tokenize,
    tagger: options.tagger,
    maskToken: options.maskToken ?? Vocabulary.MASK_TOKEN,
  };
}

/**
 * The sampling state: each sentence's tag ids, and per tag the words seen
 * with it and their cumulative counts, so a swap is one binary search.
 */
class Augmenter {
  private readonly random: () => number;

  private constructor(
    private readonly sentences: string[][],
    /** Per sentence, the tag id of each token (-1 without tags). */
    private readonly tagIds: Int32Array[],
    /** Per tag id: the words seen with it, and their running count totals. */
    private readonly words: string[][],
    private readonly cumulative: Float64Array[],
    private readonly config: ResolvedOptions,
  ) {
    const prng = seedrandom.alea(config.seed);
    this.random = () => prng();
  }

  static async create(sentences: string[][], config: ResolvedOptions): Promise<Augmenter> {
    if (config.pPos === 0) return new Augmenter(sentences, sentences.map(() => new Int32Array(0)), [], [], config);
    const tagger = config.tagger ?? (await loadPosTagger());
    const tagIdOf = new Map<string, number>();
    const countsByTag: Map<string, number>[] = [];
    const cache = new Map<string, Int32Array>(); // one tagging per distinct sentence
    const tagIds = sentences.map((tokens) => {
      const key = tokens.join(' ');
      const cached = cache.get(key);
      if (cached !== undefined) return cached;
      const tags = tagger(tokens);
      if (!Array.isArray(tags) || tags.length !== tokens.length) {
        throw new KdConfigError(
          'INVALID_OPTION',
          `the POS tagger returned ${Array.isArray(tags) ? tags.length : typeof tags} tags for ${tokens.length} tokens ` +
            `("${key.slice(0, 80)}"): a tagger must tag the tokens it is given, one tag each, without re-tokenizing`,
        );
      }
      const ids = Int32Array.from(tags, (tag) => {
        let id = tagIdOf.get(tag);
        if (id === undefined) tagIdOf.set(tag, (id = tagIdOf.size));
        return id;
      });
      cache.set(key, ids);
      return ids;
    });
    // Unigram counts within each tag, over every sentence given (duplicates count as often as they occur).
    sentences.forEach((tokens, s) => {
      tokens.forEach((token, i) => {
        if (Vocabulary.SPECIAL_TOKENS.includes(token)) return;
        const counts = (countsByTag[tagIds[s]![i]!] ??= new Map());
        counts.set(token, (counts.get(token) ?? 0) + 1);
      });
    });
    const words: string[][] = [];
    const cumulative: Float64Array[] = [];
    countsByTag.forEach((counts, id) => {
      // Sorted so the draw does not depend on the order sentences came in.
      const entries = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      words[id] = entries.map(([word]) => word);
      let total = 0;
      cumulative[id] = Float64Array.from(entries, ([, n]) => (total += n));
    });
    return new Augmenter(sentences, tagIds, words, cumulative, config);
  }

  /** One augmented sample of sentence `s`, as tokens. */
  sample(s: number): string[] {
    const { pMask, pPos, pNgram, maxNgram, maskToken } = this.config;
    const tokens = this.sentences[s]!;
    const tags = this.tagIds[s]!;
    const out = new Array<string>(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const x = this.random();
      if (x < pMask) out[i] = maskToken;
      else if (x < pMask + pPos && tags.length > 0) out[i] = this.sameTagWord(tags[i]!) ?? tokens[i]!;
      else out[i] = tokens[i]!;
    }
    if (pNgram > 0 && this.random() < pNgram) {
      const n = 1 + Math.floor(this.random() * maxNgram);
      if (n < out.length) {
        const start = Math.floor(this.random() * (out.length - n + 1)); // 0 .. length − n: the last n-gram too
        return out.slice(start, start + n);
      }
    }
    return out;
  }

  /** A word drawn by its count among the words seen with this tag. */
  private sameTagWord(tagId: number): string | undefined {
    const cumulative = this.cumulative[tagId];
    if (cumulative === undefined || cumulative.length === 0) return undefined; // only special tokens had this tag
    const target = this.random() * cumulative[cumulative.length - 1]!;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return this.words[tagId]![lo];
  }
}
