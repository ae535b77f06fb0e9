import { describe, expect, it } from 'vitest';
import { tokenize, tokenizeSst2, whitespaceTokenize } from '../../src/text/tokenize.js';

describe('tokenize (raw text, PTB-like)', () => {
  it.each([
    ["It's great.", ['it', "'s", 'great', '.']],
    ["Don't, can't, won't!", ['do', "n't", ',', 'ca', "n't", ',', 'wo', "n't", '!']],
    ["We're here; they've gone, I'll stay, he'd go, I'm in", ['we', "'re", 'here', ';', 'they', "'ve", 'gone', ',', 'i', "'ll", 'stay', ',', 'he', "'d", 'go', ',', 'i', "'m", 'in']],
    ['A well-made, 90-minute film', ['a', 'well-made', ',', '90-minute', 'film']],
    ['Rated 3.5 of 10,000 -- 24/7 r&d', ['rated', '3.5', 'of', '10,000', '--', '24/7', 'r&d']],
    ['Fun,witty and smart,10 of 10', ['fun', ',', 'witty', 'and', 'smart', ',', '10', 'of', '10']],
    ['Mr. Smith met Samuel L. Jackson in the U.S. today.', ['mr.', 'smith', 'met', 'samuel', 'l.', 'jackson', 'in', 'the', 'u.s.', 'today', '.']],
    ['Wait... what?!', ['wait', '...', 'what', '?', '!']],
    ['She said "wow" (twice)', ['she', 'said', '``', 'wow', "''", '(', 'twice', ')']],
    ['It\u2019s \u201cfine\u201d\u2026', ['it', "'s", '``', 'fine', "''", '...']],
    ['the <mask> is <unk> <pad>', ['the', '<mask>', 'is', '<unk>', '<pad>']],
    ['Caf\u00e9 na\u00efve', ['caf\u00e9', 'na\u00efve']],
    ['  \n ', []],
  ])('%j', (text, expected) => {
    expect(tokenize(text)).toEqual(expected);
  });

  it("leaves SST-2's own tokens alone", () => {
    const line = "it 's a charming and often affecting journey , is n't it ? `` yes '' -- ... ( ok ) ";
    expect(tokenize(line)).toEqual(whitespaceTokenize(line));
  });
});

describe('whitespaceTokenize / tokenizeSst2', () => {
  it('splits on runs of whitespace after trimming, without changing tokens', () => {
    expect(whitespaceTokenize('hide new secretions from the parental units ')).toEqual([
      'hide', 'new', 'secretions', 'from', 'the', 'parental', 'units',
    ]);
    expect(whitespaceTokenize(' A  b\tC\n')).toEqual(['A', 'b', 'C']);
    expect(whitespaceTokenize('   ')).toEqual([]);
    expect(tokenizeSst2("is n't it ")).toEqual(['is', "n't", 'it']);
  });
});
