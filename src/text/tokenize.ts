/**
 * Tokenizers: a PTB-like default for raw English text, and a whitespace
 * splitter for text that is already tokenized (GLUE SST-2). Browser-safe.
 *
 * @packageDocumentation
 */

/** A function from text to tokens, as {@link Vocabulary} and {@link augment} take it. */
export type Tokenizer = (text: string) => string[];

/**
 * Tokenizes raw English text the way the Penn Treebank (and so SST-2) does,
 * lower-cased: words, numbers and hyphenated words stay whole (`well-made`,
 * `3.5`, `mr.`); punctuation splits off (`...`, `--` and other runs of one
 * mark stay one token); contractions split PTB-style (`it's` → `it` `'s`,
 * `don't` → `do` `n't`, `can't` → `ca` `n't`); double quotes become the PTB
 * quotes `` `` `` (opening) and `''` (closing); curly quotes are straightened.
 * The special tokens `<pad>`, `<unk>` and `<mask>` stay whole, so augmented
 * text (see {@link augment}) tokenizes back to the mask token.
 *
 * On SST-2's own (already tokenized) sentences it returns the same tokens as
 * {@link whitespaceTokenize} for almost every sentence, so either is safe there;
 * {@link tokenizeSst2} is exact and faster.
 *
 * @param text - Any text.
 * @returns The tokens, lower-cased; `[]` for blank text.
 *
 * @example
 * ```ts
 * import { tokenize } from 'kd-ts';
 * tokenize("It's a well-made film, isn't it?");
 * // ['it', "'s", 'a', 'well-made', 'film', ',', 'is', "n't", 'it', '?']
 * ```
 */
export function tokenize(text: string): string[] {
  const normalized = text
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/\u2026/g, '...');
  const tokens: string[] = [];
  for (const match of normalized.matchAll(TOKEN)) {
    const token = match[0];
    if (token === '"') {
      // PTB: an opening quote follows the start, a space or an opening bracket.
      const before = match.index === 0 ? ' ' : normalized[match.index - 1]!;
      tokens.push(/[\s([{]/.test(before) ? '``' : "''");
    } else if (WORDLIKE.test(token)) {
      pushWord(token, tokens);
    } else {
      tokens.push(token);
    }
  }
  return tokens;
}

/**
 * Splits already tokenized text on whitespace (runs of spaces, tabs,
 * newlines), after trimming: GLUE's SST-2 lines end with a space before the
 * tab. Nothing is lower-cased or split further.
 *
 * @param text - Space-separated tokens.
 * @returns The tokens; `[]` for blank text.
 *
 * @example
 * ```ts
 * import { whitespaceTokenize } from 'kd-ts/text';
 * whitespaceTokenize('contains no wit , only labored gags ');
 * // ['contains', 'no', 'wit', ',', 'only', 'labored', 'gags']
 * ```
 */
export function whitespaceTokenize(text: string): string[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

/**
 * The tokenizer for GLUE SST-2 sentences: they are lower-cased and
 * PTB-tokenized already, so this is {@link whitespaceTokenize} under the name
 * a reader looks for.
 *
 * @param text - An SST-2 sentence.
 * @returns Its tokens.
 *
 * @example
 * ```ts
 * import { tokenizeSst2 } from 'kd-ts/text';
 * tokenizeSst2("it 's a charming and often affecting journey . "); // 8 tokens
 * ```
 */
export const tokenizeSst2: Tokenizer = whitespaceTokenize;

/** Abbreviations that keep their period (PTB does, and SST-2 has `mr.`, `ms.`, `vs.`). */
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'st', 'jr', 'sr', 'vs', 'prof', 'mt', 'inc', 'co', 'al', 'ltd', 'etc', 'jan', 'feb',
  'aug', 'sept', 'oct', 'nov', 'dec',
]);

// One alternative per token kind, tried in order: special tokens; PTB quote
// pairs; words (letters/digits joined by inner hyphens, apostrophes, periods,
// slashes, ampersands, and commas between digits only: `well-made`, `o'clock`,
// `3.5`, `10,000`, `24/7`, `r&d`, `u.s`; `fun,witty` splits) with a period
// that may be an abbreviation's (not an ellipsis); leading-apostrophe pieces
// (`'s`, `'60s`) and a lone `n't` as SST-2 writes them; runs of one
// punctuation mark (`...`, `--`, `!!!`); any other single character.
const TOKEN =
  /<(?:pad|unk|mask)>|``|''|[\p{L}\p{N}]+(?:(?:['\-./&\u00b7]|(?<=\p{N}),(?=\p{N}))[\p{L}\p{N}]+)*(?:\.(?!\.))?|'[\p{L}\p{N}]+|([^\s\p{L}\p{N}])\1+|[^\s]/gu;
const WORDLIKE = /^[\p{L}\p{N}]/u;
const CONTRACTION = /^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$/;

/** Pushes a word, splitting a trailing period (unless an abbreviation) and a contraction. */
function pushWord(word: string, tokens: string[]): void {
  let period = false;
  if (word.endsWith('.')) {
    const stem = word.slice(0, -1);
    // `u.s.`, `mr.` and initials (`samuel l.`) keep the period; `end.` gives `end` `.`.
    if (!ABBREVIATIONS.has(stem) && !/^(?:\p{L}\.)*\p{L}$/u.test(stem)) {
      word = stem;
      period = true;
    }
  }
  const contraction = CONTRACTION.exec(word);
  if (contraction === null) tokens.push(word);
  else tokens.push(contraction[1]!, contraction[2]!);
  if (period) tokens.push('.');
}
