import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { KdConfigError, KdDataError } from '../../src/errors.js';
import { Vocabulary } from '../../src/text/Vocabulary.js';

const corpus = ['a fine film', 'a dull film', 'a film', 'fine fine'];
// counts: a 3, film 3, fine 3, dull 1: ties in code-unit order.

describe('Vocabulary', () => {
  it('reserves PAD 0, UNK 1, MASK 2 and orders tokens by count, ties a-z', () => {
    const vocab = Vocabulary.fromCorpus(corpus, { tokenizer: 'whitespace' });
    expect([Vocabulary.PAD, Vocabulary.UNK, Vocabulary.MASK]).toEqual([0, 1, 2]);
    expect([0, 1, 2, 3, 4, 5, 6].map((id) => vocab.tokenOf(id))).toEqual(['<pad>', '<unk>', '<mask>', 'a', 'film', 'fine', 'dull']);
    expect(vocab.size).toBe(7);
    expect(vocab.idOf('<mask>')).toBe(Vocabulary.MASK);
    expect(vocab.idOf('zebra')).toBe(Vocabulary.UNK);
    expect(vocab.has('zebra')).toBe(false);
    expect(() => vocab.tokenOf(7)).toThrow(KdDataError);
    expect(() => vocab.tokenOf(7)).toThrow(expect.objectContaining({ code: 'TOKEN_ID_OUT_OF_RANGE' }));
    expect(() => vocab.decode([3, -1])).toThrow(expect.objectContaining({ code: 'TOKEN_ID_OUT_OF_RANGE' }));
  });

  it('is the same whatever the corpus order', () => {
    const a = Vocabulary.fromCorpus(corpus, { tokenizer: 'whitespace' });
    const b = Vocabulary.fromCorpus([...corpus].reverse(), { tokenizer: 'whitespace' });
    expect(b.toJSON()).toEqual(a.toJSON());
  });

  it('applies minCount and maxSize (specials included in maxSize)', () => {
    expect(Vocabulary.fromCorpus(corpus, { minCount: 2 }).size).toBe(6);
    const cut = Vocabulary.fromCorpus(corpus, { maxSize: 5 });
    expect(cut.size).toBe(5);
    expect(cut.idOf('fine')).toBe(Vocabulary.UNK);
    expect(() => Vocabulary.fromCorpus(corpus, { maxSize: 2 })).toThrow(KdConfigError);
    expect(() => Vocabulary.fromCorpus(corpus, { minCount: 0 })).toThrow(/minCount must be an integer/);
  });

  it('does not count special tokens from the corpus, and accepts pre-split rows', () => {
    const vocab = Vocabulary.fromCorpus([['the', '<mask>', 'film'], ['<mask>', '<pad>']]);
    expect(vocab.size).toBe(5);
    expect(vocab.encode(['the', '<mask>', 'cat'])).toEqual([4, 2, 1]); // film 3, the 4
  });

  it('encodes with truncation and padding, the tokenizer it was built with', () => {
    const vocab = Vocabulary.fromCorpus(corpus, { tokenizer: 'whitespace', maxLength: 3 });
    expect(vocab.encode('a fine film fine')).toEqual([3, 5, 4]); // default maxLength 3
    expect(vocab.encode('a fine film fine', { maxLength: 10 })).toEqual([3, 5, 4, 5]);
    expect(vocab.encode('a zebra', { padTo: 4 })).toEqual([3, 1, 0, 0]);
    expect(vocab.encode('', { padTo: 2 })).toEqual([0, 0]);
    const raw = Vocabulary.fromCorpus(["It's a film."]); // default tokenizer: PTB-like
    expect(raw.encode("it's").map((id) => raw.tokenOf(id))).toEqual(['it', "'s"]);
  });

  it('encodes batches as int32, post-padded with PAD, truncated to maxLength', () => {
    const vocab = Vocabulary.fromCorpus(corpus, { tokenizer: 'whitespace' });
    const x = vocab.encodeBatch(['a fine film fine', 'dull', 'zebra film']);
    expect(x.dtype).toBe('int32');
    expect(x.arraySync()).toEqual([[3, 5, 4, 5], [6, 0, 0, 0], [1, 4, 0, 0]]);
    const cut = vocab.encodeBatch(['a fine film fine', 'dull'], { maxLength: 2 });
    expect(cut.arraySync()).toEqual([[3, 5], [6, 0]]);
    const fixed = vocab.encodeBatch(['a fine film fine', 'dull'], { padTo: 3 });
    expect(fixed.arraySync()).toEqual([[3, 5, 4], [6, 0, 0]]);
    const empty = vocab.encodeBatch(['', ' ']);
    expect(empty.shape).toEqual([2, 1]);
    tf.dispose([x, cut, fixed, empty]);
    const { ids, shape } = vocab.encodeBatchIds(['dull', 'a film'], { padTo: 'longest' });
    expect(shape).toEqual([2, 2]);
    expect([...ids]).toEqual([6, 0, 3, 4]);
    expect(() => vocab.encodeBatch(['a'], { padTo: 0 })).toThrow(KdConfigError);
  });

  it('round-trips through JSON with the same ids, tokenizer and maxLength', () => {
    const vocab = Vocabulary.fromCorpus(corpus, { tokenizer: 'whitespace', maxLength: 7 });
    const copy = Vocabulary.fromJSON(JSON.stringify(vocab));
    expect(copy.toJSON()).toEqual(vocab.toJSON());
    expect(copy.maxLength).toBe(7);
    expect(copy.encode("a fine it's")).toEqual(vocab.encode("a fine it's"));
    expect(copy.decode(copy.encode('a <mask> dull', { padTo: 5 }))).toBe('a <mask> dull');
  });

  it('needs a custom tokenizer passed again', () => {
    const split = (text: string) => text.split('|');
    const vocab = Vocabulary.fromCorpus(['a|b|b'], { tokenizer: split });
    const text = JSON.stringify(vocab);
    expect(() => Vocabulary.fromJSON(text)).toThrow(/pass it again/);
    expect(Vocabulary.fromJSON(text, { tokenizer: split }).encode('b|a')).toEqual([3, 4]);
  });

  it('accepts only its own tokenizer names, not Object.prototype keys', () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      expect(() => new Vocabulary(['a'], { tokenizer: name as 'whitespace' })).toThrow(/tokenizer must be 'tokenize', 'whitespace' or a function/);
      const saved = { format: 'kd-ts/vocabulary', version: 1, tokenizer: name, tokens: ['<pad>', '<unk>', '<mask>'] };
      expect(() => Vocabulary.fromJSON(saved)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE' }));
    }
  });

  it.each([
    ['not json {', /invalid JSON/],
    ['[1, 2]', /expected a JSON object/],
    ['{"format": "other", "version": 1}', /"format" is "other"/],
    ['{"format": "kd-ts/vocabulary", "version": 9, "tokens": []}', /this kd-ts reads version 1/],
    ['{"format": "kd-ts/vocabulary", "version": 1, "tokenizer": "whitespace", "tokens": ["a", "b"]}', /must start with <pad>/],
    ['{"format": "kd-ts/vocabulary", "version": 1, "tokenizer": "whitespace", "tokens": ["<pad>", "<unk>", "<mask>", 3]}', /array of strings/],
    ['{"format": "kd-ts/vocabulary", "version": 1, "tokenizer": "bpe", "tokens": ["<pad>", "<unk>", "<mask>"]}', /"tokenizer" is "bpe"/],
    ['{"format": "kd-ts/vocabulary", "version": 1, "tokenizer": "whitespace", "tokens": ["<pad>", "<unk>", "<mask>", "a", "a"]}', /repeated/],
    ['{"format": "kd-ts/vocabulary", "version": 1, "tokenizer": "whitespace", "maxLength": 0, "tokens": ["<pad>", "<unk>", "<mask>"]}', /"maxLength" is 0/],
  ])('rejects corrupt JSON %s with CORRUPT_FILE', (text, message) => {
    let caught: unknown;
    try {
      Vocabulary.fromJSON(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(KdDataError);
    expect((caught as KdDataError).code).toBe('CORRUPT_FILE');
    expect((caught as Error).message).toMatch(message);
  });
});
