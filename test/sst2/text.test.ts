/**
 * Opt-in suite on the real GLUE SST-2 files (not in the default `vitest run`):
 * data loading, the vocabulary, the tokenizers and augmentation on real rows.
 * Data: `$KD_SST2_DIR`, default `../shared/data/sst2` from the repository root.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { augment } from '../../src/text/augment.js';
import { loadPosTagger } from '../../src/text/posTagger.js';
import { tokenize, whitespaceTokenize } from '../../src/text/tokenize.js';
import { Vocabulary } from '../../src/text/Vocabulary.js';

const root = path.resolve(import.meta.dirname, '../..');
const dir = path.resolve(root, process.env.KD_SST2_DIR ?? '../shared/data/sst2');

interface Row {
  sentence: string;
  label: number;
}

function readSplit(name: string): Row[] {
  const [header, ...lines] = readFileSync(path.join(dir, `${name}.tsv`), 'utf8').split('\n');
  expect(header).toBe('sentence\tlabel');
  return lines
    .filter((line) => line !== '')
    .map((line) => {
      const [sentence, label] = line.split('\t');
      return { sentence: sentence!, label: Number(label) };
    });
}

describe.skipIf(!existsSync(path.join(dir, 'train.tsv')))(`SST-2 text pipeline (${dir})`, () => {
  const train = readSplit('train');
  const dev = readSplit('dev');

  it('loads 67,349 training and 872 dev rows, labels 0/1, lower-cased, ending in a space', () => {
    expect(train).toHaveLength(67_349);
    expect(dev).toHaveLength(872);
    const all = [...train, ...dev];
    expect(all.filter((r) => r.label !== 0 && r.label !== 1)).toEqual([]);
    expect(all.filter((r) => !r.sentence.endsWith(' '))).toEqual([]);
    expect(train.filter((r) => r.sentence !== r.sentence.toLowerCase()).length).toBe(0);
  });

  it('builds the ~14.8k-word vocabulary of the PyTorch anchor, and round-trips it through JSON', () => {
    const vocab = Vocabulary.fromCorpus(
      train.map((r) => r.sentence),
      { tokenizer: 'whitespace', maxLength: 50 },
    );
    const distinct = new Set(train.flatMap((r) => whitespaceTokenize(r.sentence)));
    expect(vocab.size).toBe(distinct.size + 3);
    expect(vocab.size).toBeGreaterThan(14_700);
    expect(vocab.size).toBeLessThan(14_900);
    expect(vocab.tokenOf(3)).toBe('the'); // the most frequent token
    const copy = Vocabulary.fromJSON(JSON.stringify(vocab));
    const devIds = dev.map((r) => copy.encode(r.sentence));
    expect(devIds).toEqual(dev.map((r) => vocab.encode(r.sentence)));
    const tokens = devIds.flat();
    const unknown = tokens.filter((id) => id === Vocabulary.UNK).length / tokens.length;
    expect(unknown).toBeGreaterThan(0); // dev has words train lacks
    expect(unknown).toBeLessThan(0.08); // 5.7% measured: dev reviews are of other films
    expect(Math.max(...devIds.map((ids) => ids.length))).toBeLessThanOrEqual(50);
    expect(Vocabulary.fromCorpus(train.map((r) => r.sentence), { tokenizer: 'whitespace', minCount: 2 }).size).toBeLessThan(vocab.size);
  });

  it('tokenize agrees with the whitespace split on more than 99.5% of the sentences', () => {
    const same = train.filter((r) => tokenize(r.sentence).join(' ') === whitespaceTokenize(r.sentence).join(' ')).length;
    expect(same / train.length).toBeGreaterThan(0.995);
  });

  it('augments 3,000 real rows: new, distinct, deterministic, swaps keep the tag, n-grams of 1..5', async () => {
    const rows = train.slice(0, 3000).map((r) => whitespaceTokenize(r.sentence));
    const options = { nIter: 20, seed: 7, tokenizer: whitespaceTokenize } as const;
    const out = await augment(rows, options);
    expect(out.length).toBeGreaterThan(30_000);
    expect(new Set(out).size).toBe(out.length);
    const originals = new Set(rows.map((r) => r.join(' ')));
    expect(out.filter((s) => originals.has(s)).length).toBe(0);
    expect(await augment(rows.slice(0, 500), options)).toEqual(await augment(rows.slice(0, 500), options));

    // Every word of every sample comes from the corpus (or is the mask), and
    // the samples shorter than any source row are n-grams of at most 5 words.
    const tag = await loadPosTagger();
    const tagsOf = new Map<string, Set<string>>();
    for (const tokens of rows) tag(tokens).forEach((t, i) => tagsOf.set(tokens[i]!, (tagsOf.get(tokens[i]!) ?? new Set()).add(t)));
    const tokens = out.flatMap((s) => s.split(' '));
    expect(tokens.every((t) => t === '<mask>' || tagsOf.has(t))).toBe(true);
    const masked = tokens.filter((t) => t === '<mask>').length / tokens.length;
    expect(masked).toBeGreaterThan(0.08);
    expect(masked).toBeLessThan(0.14);
    const minSource = Math.min(...rows.map((r) => r.length));
    const short = out.filter((s) => s.split(' ').length < minSource);
    expect(short.every((s) => s.split(' ').length <= 5)).toBe(true);

    // Each row augmented alone (so every sample is its own, uncut): a swapped-in
    // word carried the replaced word's tag somewhere in that row.
    let checked = 0;
    for (const source of rows.slice(0, 300)) {
      const sourceTags = tag(source);
      const samples = await augment([source], { ...options, nIter: 5, pNgram: 0, pMask: 0, pPos: 0.5 });
      for (const sample of samples) {
        sample.split(' ').forEach((w, i) => {
          if (w === source[i]) return;
          expect(source.filter((_, j) => sourceTags[j] === sourceTags[i])).toContain(w);
          checked++;
        });
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});
