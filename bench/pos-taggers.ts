/**
 * POS tagger benchmark: accuracy on hand-tagged SST-2-like text and speed on
 * real SST-2 sentences, for the npm taggers kd-ts could use in `augment`.
 *
 * Gold: `test/text/fixtures/pos-gold.txt` (Penn tags, hand-tagged; see its
 * header). Accuracy is reported twice:
 * - Penn: exact Penn Treebank tag, for the taggers that emit Penn tags;
 * - open-class: for gold nouns, verbs, adjectives and adverbs (the words a POS
 *   swap replaces most), the share tagged with the same coarse class. This
 *   compares taggers with different tag sets (wink-nlp's UPOS, compromise's own).
 * Taggers that tokenize by themselves (wink-nlp, compromise) get the tokens
 * joined by spaces and their output is aligned back by characters; a token
 * their tokenizer merges or loses counts as wrong (that is their real cost on
 * pre-tokenized text).
 *
 * Speed: tokens per second over the first `--sentences` SST-2 training rows
 * (default 5,000), median of `--runs` runs (default 3), one core.
 *
 * The candidates are dev dependencies only while this comparison is made; the
 * bench needs them installed: `npm i --no-save wink-pos-tagger wink-nlp
 * wink-eng-lite-web-model compromise en-pos pos` if they are not.
 *
 * Run: `npx tsx bench/pos-taggers.ts [--sst2 ../shared/data/sst2] [--sentences 5000] [--runs 3]`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable, loadAverage, machine, median } from './util.js';

/** A tagger under test: pre-tokenized sentence in, one tag per token out. */
interface Candidate {
  name: string;
  tagSet: 'penn' | 'upos' | 'compromise';
  tag: (tokens: string[]) => string[];
}

const OPEN_CLASSES = new Set(['NOUN', 'VERB', 'ADJ', 'ADV']);

const { values: args } = parseArgs({
  options: {
    sst2: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/data/sst2') },
    sentences: { type: 'string', default: '5000' },
    runs: { type: 'string', default: '3' },
  },
});

const require = createRequire(import.meta.url);
const candidates = await loadCandidates();
const gold = readGold(path.resolve(import.meta.dirname, '../test/text/fixtures/pos-gold.txt'));
const sst2 = readFileSync(path.join(args.sst2, 'train.tsv'), 'utf8')
  .split('\n')
  .slice(1, 1 + Number(args.sentences))
  .filter((line) => line.trim() !== '')
  .map((line) => line.split('\t')[0]!.trim().split(/\s+/));
const sst2Tokens = sst2.reduce((n, s) => n + s.length, 0);

console.log(`POS taggers on ${machine()}, load ${loadAverage()}, Node ${process.version}`);
console.log(`gold: ${gold.length} sentences, ${gold.reduce((n, s) => n + s.tokens.length, 0)} tokens (hand-tagged, Penn)`);
console.log(`speed: ${sst2.length} SST-2 training sentences, ${sst2Tokens} tokens, median of ${args.runs} runs\n`);

const rows: string[][] = [];
for (const candidate of candidates) {
  let pennRight = 0;
  let openRight = 0;
  let openTotal = 0;
  let total = 0;
  const errors = new Map<string, number>();
  for (const sentence of gold) {
    const tags = candidate.tag(sentence.tokens);
    sentence.tags.forEach((goldTag, i) => {
      const predicted = tags[i] ?? '?';
      total++;
      if (predicted === goldTag) pennRight++;
      const goldClass = coarse(goldTag, 'penn');
      if (OPEN_CLASSES.has(goldClass)) {
        openTotal++;
        if (coarse(predicted, candidate.tagSet) === goldClass) openRight++;
        else errors.set(`${sentence.tokens[i]}/${goldTag}→${predicted}`, 1);
      }
    });
  }
  const times: number[] = [];
  for (let run = 0; run < Number(args.runs); run++) {
    const start = performance.now();
    for (const sentence of sst2) candidate.tag(sentence);
    times.push((performance.now() - start) / 1000);
  }
  rows.push([
    candidate.name,
    candidate.tagSet === 'penn' ? pct(pennRight / total) : 'n/a',
    pct(openRight / openTotal),
    Math.round(sst2Tokens / median(times)).toLocaleString('en-US'),
  ]);
  console.log(`${candidate.name}: open-class errors: ${[...errors.keys()].slice(0, 12).join(', ')}`);
}
console.log();
console.log(formatTable(['tagger', 'Penn accuracy', 'open-class accuracy', 'tokens/s'], rows));

async function loadCandidates(): Promise<Candidate[]> {
  const loaded: Candidate[] = [];
  const tryLoad = async (name: string, make: () => Promise<Omit<Candidate, 'name'>>) => {
    try {
      loaded.push({ name, ...(await make()) });
    } catch {
      console.log(`${name}: not installed, skipped (npm i --no-save ${name.split(' ')[0]})`);
    }
  };
  const version = (pkg: string) => {
    const manifest = path.resolve(import.meta.dirname, '../node_modules', pkg, 'package.json');
    return `${pkg} ${JSON.parse(readFileSync(manifest, 'utf8')).version}`;
  };
  await tryLoad('wink-pos-tagger', async () => {
    const tagger = require('wink-pos-tagger')();
    return { tagSet: 'penn', tag: (tokens) => tagger.tagRawTokens(tokens).map((t: { pos: string }) => t.pos) };
  });
  await tryLoad('en-pos', async () => {
    const { Tag } = require('en-pos');
    return { tagSet: 'penn', tag: (tokens) => new Tag(tokens).initial().smooth().tags };
  });
  await tryLoad('pos', async () => {
    const pos = require('pos');
    const fasttag = new pos.Tagger();
    return { tagSet: 'penn', tag: (tokens) => fasttag.tag(tokens).map((pair: string[]) => pair[1]) };
  });
  await tryLoad('wink-nlp', async () => {
    const nlp = require('wink-nlp')(require('wink-eng-lite-web-model'), ['pos']);
    return {
      tagSet: 'upos',
      tag: (tokens) => {
        const doc = nlp.readDoc(tokens.join(' '));
        return align(tokens, doc.tokens().out(nlp.its.value), doc.tokens().out(nlp.its.pos));
      },
    };
  });
  await tryLoad('compromise', async () => {
    const moduleName = 'compromise'; // ESM-only; a variable keeps tsc from needing it installed
    const compromise = (await import(moduleName)).default;
    type Term = { pre: string; text: string; post: string; tags: string[] };
    return {
      tagSet: 'compromise',
      tag: (tokens) => {
        const terms: Term[] = compromise(tokens.join(' ')).json().flatMap((s: { terms: Term[] }) => s.terms);
        return align(
          tokens,
          terms.map((t) => `${t.pre}${t.text}${t.post}`.replace(/\s+/g, '')),
          terms.map((t) => t.tags.join(',')),
        );
      },
    };
  });
  for (const candidate of loaded) {
    candidate.name =
      candidate.name === 'wink-nlp'
        ? `${version('wink-nlp')} + ${version('wink-eng-lite-web-model')}`
        : version(candidate.name);
  }
  return loaded;
}

/**
 * Maps a tagger's own tokens back onto ours by characters: each of our tokens
 * takes the tag of the tagger token it starts in. Merged tokens share a tag;
 * characters the tagger dropped leave `?`.
 */
function align(tokens: string[], pieces: string[], tags: string[]): string[] {
  const owner: string[] = []; // tag per character of the joined pieces
  pieces.forEach((piece, i) => {
    for (let c = 0; c < piece.length; c++) owner.push(tags[i]!);
  });
  const joined = pieces.join('');
  const out: string[] = [];
  let at = 0;
  for (const token of tokens) {
    const found = joined.indexOf(token, at);
    if (found === -1 || found > at + 2) {
      out.push('?');
      continue;
    }
    out.push(owner[found]!);
    at = found + token.length;
  }
  return out;
}

/** A coarse class comparable across tag sets. */
function coarse(tag: string, tagSet: Candidate['tagSet']): string {
  if (tagSet === 'upos') {
    return { PROPN: 'NOUN', AUX: 'VERB' }[tag] ?? tag;
  }
  if (tagSet === 'compromise') {
    const tags = tag.split(',');
    if (tags.includes('Pronoun')) return 'PRON';
    if (tags.includes('Noun')) return 'NOUN';
    if (tags.some((t) => ['Verb', 'Auxiliary', 'Modal', 'Copula'].includes(t))) return 'VERB';
    if (tags.includes('Adjective')) return 'ADJ';
    if (tags.includes('Adverb') || tags.includes('Negative')) return 'ADV';
    return 'OTHER';
  }
  if (/^NN/.test(tag)) return 'NOUN';
  if (/^VB|^MD$/.test(tag)) return 'VERB';
  if (/^JJ/.test(tag)) return 'ADJ';
  if (/^RB|^WRB$/.test(tag)) return 'ADV';
  return 'OTHER';
}

function readGold(file: string): { tokens: string[]; tags: string[] }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const pairs = line.trim().split(' ').map((pair) => {
        const slash = pair.lastIndexOf('/');
        return [pair.slice(0, slash), pair.slice(slash + 1)] as const;
      });
      return { tokens: pairs.map(([token]) => token), tags: pairs.map(([, tag]) => tag) };
    });
}

function pct(share: number): string {
  return `${(100 * share).toFixed(1)}%`;
}
