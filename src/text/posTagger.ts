/**
 * Part-of-speech tagging for {@link augment}'s POS-guided replacement: the
 * tagger type, and the default tagger (wink-pos-tagger, loaded on first use so
 * apps that never augment never load its 2 MB lexicon).
 *
 * @packageDocumentation
 */
import { KdConfigError } from '../errors.js';

/**
 * Tags one pre-tokenized sentence: one tag per token, in order. It must not
 * re-tokenize (SST-2's `do n't` stays two tokens). Any tag set works; words
 * are swapped only for words that carried the same tag string.
 */
export type PosTagger = (tokens: readonly string[]) => string[];

let defaultTagger: Promise<PosTagger> | undefined;

/**
 * Loads the default POS tagger: `wink-pos-tagger`'s Penn Treebank tagger on
 * pre-tokenized input (`tagRawTokens`), so tags line up with the tokens given.
 * Chosen by `bench/pos-taggers.ts`: the most accurate candidate on hand-tagged
 * SST-2-like text (with en-pos), several times faster than en-pos, bundles for
 * browsers without Node built-ins, and Penn tags keep tense and number when
 * words are swapped (`VBD` for `VBD`). Loaded once, on first call.
 *
 * @returns A {@link PosTagger}.
 * @throws {@link KdConfigError} `MISSING_DEPENDENCY` when wink-pos-tagger cannot be loaded.
 *
 * @example
 * ```ts
 * import { loadPosTagger } from 'kd-ts/text';
 * const tag = await loadPosTagger();
 * tag(['it', "'s", 'a', 'charming', 'film', '.']); // ['PRP', 'VBZ', 'DT', 'JJ', 'NN', '.']
 * ```
 */
export function loadPosTagger(): Promise<PosTagger> {
  defaultTagger ??= load().catch((error: unknown) => {
    defaultTagger = undefined; // let a later call retry
    throw error;
  });
  return defaultTagger;
}

async function load(): Promise<PosTagger> {
  let create: () => { tagRawTokens(tokens: string[]): { pos: string }[] };
  try {
    const module = await import('wink-pos-tagger');
    // CommonJS: the factory is the default export (or the module itself, depending on the bundler).
    create = (module.default ?? module) as typeof create;
  } catch (error) {
    throw new KdConfigError(
      'MISSING_DEPENDENCY',
      'the default POS tagger needs the wink-pos-tagger package: npm install wink-pos-tagger, ' +
        'or pass your own { tagger } (or pPos: 0) to augment',
      { cause: error },
    );
  }
  const tagger = create();
  return (tokens) => tagger.tagRawTokens([...tokens]).map((token) => token.pos);
}
