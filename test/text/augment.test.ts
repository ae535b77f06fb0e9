import { describe, expect, it } from 'vitest';
import { KdConfigError } from '../../src/errors.js';
import { augment, augmentPairs } from '../../src/text/augment.js';
import { loadPosTagger, type PosTagger } from '../../src/text/posTagger.js';
import { tokenize, whitespaceTokenize } from '../../src/text/tokenize.js';
import { Vocabulary } from '../../src/text/Vocabulary.js';

const words = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
/** A tagger for made-up words: the tag is the word's letters ("noun3" → "noun"). */
const letterTagger: PosTagger = (tokens) => tokens.map((t) => t.replace(/\d+$/, ''));

describe('augment', () => {
  it('masks close to pMask of the words', async () => {
    const sentences = Array.from({ length: 50 }, (_, s) => words(`w${s}x`, 40));
    const out = await augment(sentences, { pMask: 0.1, pPos: 0, pNgram: 0, nIter: 10, seed: 1 });
    const tokens = out.flatMap((s) => s.split(' '));
    expect(tokens.length).toBeGreaterThan(19_000);
    const share = tokens.filter((t) => t === '<mask>').length / tokens.length;
    // Samples without any mask (0.9^40 = 1.5%) are dropped as originals, raising the share to ~0.1015.
    expect(share).toBeGreaterThan(0.095);
    expect(share).toBeLessThan(0.108);
  });

  it('swaps words only for words of the same tag, by their frequency within the tag', async () => {
    const corpus = [
      ...Array.from({ length: 9 }, () => ['noun0', 'verb0', 'adj0']),
      ['noun1', 'verb1', 'adj1'],
      ['noun2', 'verb1', 'adj1'],
    ];
    const sentence = ['noun2', 'verb1', 'adj1'];
    const out = await augment([...corpus, sentence], { pMask: 0, pPos: 1, pNgram: 0, nIter: 1, seed: 2, tagger: letterTagger });
    expect(out.length).toBeGreaterThan(0);
    for (const sample of out) {
      const tokens = sample.split(' ');
      expect(letterTagger(tokens)).toEqual(['noun', 'verb', 'adj']);
    }
  });

  it('draws same-tag words by unigram frequency', async () => {
    // Count swaps directly: every output of a 30-word sentence of 'noun' slots.
    const corpus = [Array.from({ length: 30 }, (_, i) => (i < 27 ? 'noun0' : 'noun1'))];
    const out = await augment(corpus, { pMask: 0, pPos: 1, pNgram: 0, nIter: 200, seed: 4, tagger: letterTagger });
    const tokens = out.flatMap((s) => s.split(' '));
    const share = tokens.filter((t) => t === 'noun1').length / tokens.length;
    expect(share).toBeGreaterThan(0.08);
    expect(share).toBeLessThan(0.12); // 3 of 30
  });

  it('keeps the Penn tag of each word when swapping with the default tagger', async () => {
    const tag = await loadPosTagger();
    const corpus = [
      'the film is a charming , funny story about a small town .',
      'the actors seemed tired and the plot felt thin .',
      'a witty , seductive movie with great performances .',
      'i laughed often during its running time .',
    ].map(whitespaceTokenize);
    const tagsOf = new Map<string, Set<string>>();
    for (const tokens of corpus) tag(tokens).forEach((t, i) => tagsOf.set(tokens[i]!, (tagsOf.get(tokens[i]!) ?? new Set()).add(t)));
    const out = await augment(corpus, { pMask: 0, pPos: 1, pNgram: 0, nIter: 10, seed: 5 });
    expect(out.length).toBeGreaterThan(10);
    let swapped = 0;
    for (const sample of out) {
      const tokens = sample.split(' ');
      const original = corpus.find((c) => c.length === tokens.length)!; // lengths 13, 10, 9, 8: no n-grams
      const originalTags = tag(original);
      tokens.forEach((word, i) => {
        if (word !== original[i]) swapped++;
        expect(tagsOf.get(word)).toContain(originalTags[i]);
      });
    }
    expect(swapped).toBeGreaterThan(0);
  });

  it('cuts to n-grams of 1..5 words, every start reachable, the last n-gram included', async () => {
    const sentence = words('t', 8);
    const out = await augment([sentence], { pMask: 0, pPos: 0, pNgram: 1, nIter: 600, seed: 6 });
    const expected = new Set<string>();
    for (let n = 1; n <= 5; n++) for (let start = 0; start + n <= 8; start++) expected.add(sentence.slice(start, start + n).join(' '));
    expect(new Set(out)).toEqual(expected); // 8 + 7 + 6 + 5 + 4 = 30 n-grams, among them 't7' and 't3 t4 t5 t6 t7'
    expect(out).toHaveLength(30);
  });

  it('leaves sentences shorter than n whole (dropped as originals)', async () => {
    const out = await augment([['a', 'b']], { pMask: 0, pPos: 0, pNgram: 1, nIter: 50, seed: 7 });
    expect(new Set(out)).toEqual(new Set(['a', 'b']));
  });

  it('is deterministic for a seed, and different seeds differ', async () => {
    const sentences = ['a charming and often affecting journey .', 'contains no wit , only labored gags', 'hide new secretions'];
    const options = { nIter: 20, tagger: letterTagger } as const;
    const a = await augment(sentences, { ...options, seed: 11 });
    const b = await augment(sentences, { ...options, seed: 11 });
    const c = await augment(sentences, { ...options, seed: 12 });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('drops duplicates and every input sentence, including ones another sample equals', async () => {
    const sentences = [['a', 'b', 'c'], ['a', 'b'], ['c']];
    const out = await augment(sentences, { pMask: 0.2, pPos: 0, pNgram: 0.5, nIter: 100, seed: 8 });
    expect(new Set(out).size).toBe(out.length);
    for (const original of ['a b c', 'a b', 'c']) expect(out).not.toContain(original);
    expect(out.length).toBeGreaterThan(5);
  });

  it('writes the mask token that Vocabulary maps to MASK, with either tokenizer', async () => {
    const [sample] = await augment(['a fine film'], { pMask: 1, pPos: 0, pNgram: 0, nIter: 1 });
    expect(sample).toBe('<mask> <mask> <mask>');
    const vocab = Vocabulary.fromCorpus(['a fine film']);
    expect(vocab.encode(sample!)).toEqual([2, 2, 2]);
    expect(vocab.encode(whitespaceTokenize(sample!))).toEqual([2, 2, 2]);
    expect(tokenize(sample!)).toEqual(['<mask>', '<mask>', '<mask>']);
  });

  it('tags each distinct sentence once, and needs no tagger when pPos is 0', async () => {
    const calls: string[] = [];
    const counting: PosTagger = (tokens) => {
      calls.push(tokens.join(' '));
      return tokens.map(() => 'X');
    };
    await augment(['a b', 'a b', 'c d', 'a b'], { nIter: 2, tagger: counting });
    expect(calls.sort()).toEqual(['a b', 'c d']);
    calls.length = 0;
    await augment(['a b'], { pPos: 0, nIter: 2, tagger: counting });
    expect(calls).toEqual([]);
  });

  it('rejects bad options and misaligned taggers', async () => {
    const bad = async (options: object) => {
      const error = await augment(['a b'], options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KdConfigError);
      return (error as KdConfigError).message;
    };
    expect(await bad({ pMask: 1.5 })).toMatch(/pMask must be a probability/);
    expect(await bad({ pMask: 0.6, pPos: 0.6 })).toMatch(/pMask \+ pPos must be at most 1/);
    expect(await bad({ nIter: 0 })).toMatch(/nIter must be a positive integer/);
    expect(await bad({ maxNgram: 2.5 })).toMatch(/maxNgram/);
    expect(await bad({ tagger: () => ['X'] })).toMatch(/returned 1 tags for 2 tokens .*without re-tokenizing/);
  });
});

describe('augmentPairs', () => {
  it('alternates the first side, the second, then both', async () => {
    const out = await augmentPairs([[['a', 'b'], ['c']]], { pMask: 1, pPos: 0, pNgram: 0, nIter: 6 });
    // iterations 3..5 repeat 0..2 and are dropped as duplicates
    expect(out).toEqual([
      ['<mask> <mask>', 'c'],
      ['a b', '<mask>'],
      ['<mask> <mask>', '<mask>'],
    ]);
  });

  it('is deterministic, drops original pairs and duplicates', async () => {
    const pairs: [string, string][] = [
      ['a man plays a guitar .', 'a person plays music .'],
      ['the cat sleeps .', 'a cat is sleeping .'],
    ];
    const a = await augmentPairs(pairs, { nIter: 30, seed: 1, tagger: letterTagger });
    expect(await augmentPairs(pairs, { nIter: 30, seed: 1, tagger: letterTagger })).toEqual(a);
    const keys = a.map(([x, y]) => `${x}|${y}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const [x, y] of pairs) expect(keys).not.toContain(`${x}|${y}`);
    expect(a.length).toBeGreaterThan(20);
  });
});
