/**
 * Augmentation benchmark: Tang et al.'s augmentation (`augment`, default
 * options: pMask 0.1, pPos 0.1 with the default wink-pos-tagger, pNgram 0.25)
 * over the SST-2 training rows, `--passes` samples per row (default 20, the
 * paper's n_iter). The target: all 67,349 rows × 20 passes in under 10 minutes
 * on one core (Node runs it on one thread).
 *
 * Reports the tagging time (each distinct sentence tagged once, the
 * tagger loaded beforehand) and the whole call, median of `--runs` runs.
 *
 * Run: `npx tsx bench/augment.ts [--sst2 ../shared/data/sst2] [--rows 67349] [--passes 20] [--runs 3]`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { augment } from '../src/index.js';
import { loadPosTagger, whitespaceTokenize, type PosTagger } from '../src/text/index.js';
import { formatTable, loadAverage, machine, median } from './util.js';

const { values: args } = parseArgs({
  options: {
    sst2: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/data/sst2') },
    rows: { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
    passes: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
  },
});

const sentences = readFileSync(path.join(args.sst2, 'train.tsv'), 'utf8')
  .split('\n')
  .slice(1)
  .filter((line) => line.trim() !== '')
  .map((line) => line.split('\t')[0]!)
  .slice(0, Number(args.rows));
const passes = Number(args.passes);

console.log(`augment on ${machine()}, load ${loadAverage()}, Node ${process.version}, one thread`);
const loadStart = performance.now();
const tagger = await loadPosTagger();
console.log(`wink-pos-tagger loaded in ${((performance.now() - loadStart) / 1000).toFixed(2)} s\n`);

const tagSeconds: number[] = [];
const totalSeconds: number[] = [];
let outputs = 0;
for (let run = 0; run < Number(args.runs); run++) {
  let tagging = 0;
  const timedTagger: PosTagger = (tokens) => {
    const start = performance.now();
    const tags = tagger(tokens);
    tagging += performance.now() - start;
    return tags;
  };
  const start = performance.now();
  const out = await augment(sentences, { nIter: passes, seed: run, tokenizer: whitespaceTokenize, tagger: timedTagger });
  totalSeconds.push((performance.now() - start) / 1000);
  tagSeconds.push(tagging / 1000);
  outputs = out.length;
}
const seconds = median(totalSeconds);
console.log(
  formatTable(
    ['rows', 'passes', 'outputs (last run)', 'tagging s', 'total s', 'rows/s', 'samples/s'],
    [
      [
        sentences.length.toLocaleString('en-US'),
        String(passes),
        outputs.toLocaleString('en-US'),
        median(tagSeconds).toFixed(1),
        seconds.toFixed(1),
        Math.round(sentences.length / seconds).toLocaleString('en-US'),
        Math.round((sentences.length * passes) / seconds).toLocaleString('en-US'),
      ],
    ],
  ),
);
console.log(`\nmedian of ${args.runs} runs (seeds 0..${Number(args.runs) - 1}); runs: ${totalSeconds.map((s) => s.toFixed(1)).join(', ')} s`);
