/**
 * Reads GLUE's SST-2 files (`train.tsv`, `dev.tsv`): a header line
 * `sentence<TAB>label`, then one `sentence<TAB>0|1` row per line. GLUE ends
 * every sentence with a space before the tab; it is trimmed here.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** One split: sentences (trimmed) and their labels (0 negative, 1 positive), row by row. */
export interface Sst2Split {
  sentences: string[];
  labels: Int32Array;
}

/** Both splits the example uses. (GLUE's test split has no labels.) */
export interface Sst2Data {
  /** 67,349 phrase-level rows in GLUE's file. */
  train: Sst2Split;
  /** 872 whole sentences. */
  dev: Sst2Split;
}

/** What the folder must hold, for error messages. */
const HOW_TO_GET =
  'pass --data <folder> holding GLUE SST-2 train.tsv and dev.tsv (download SST-2 from https://gluebenchmark.com/tasks and unzip it)';

/**
 * Reads `train.tsv` and `dev.tsv` from a GLUE SST-2 folder.
 *
 * @param directory - The folder.
 * @param options - `trainRows`: keep only the first N training rows (quick runs and tests).
 * @returns Both splits.
 * @throws Error naming the missing file or the malformed line, and how to fix it.
 */
export function readSst2(directory: string, options: { trainRows?: number } = {}): Sst2Data {
  if (!existsSync(directory) || !statSync(directory).isDirectory()) {
    throw new Error(`SST-2 folder ${directory} not found: ${HOW_TO_GET}`);
  }
  const train = readSplit(path.join(directory, 'train.tsv'));
  if (options.trainRows !== undefined && options.trainRows < train.sentences.length) {
    train.sentences = train.sentences.slice(0, options.trainRows);
    train.labels = train.labels.slice(0, options.trainRows);
  }
  return { train, dev: readSplit(path.join(directory, 'dev.tsv')) };
}

/**
 * Reads one SST-2 TSV file.
 *
 * @param file - `train.tsv` or `dev.tsv`.
 * @returns Its rows.
 * @throws Error when the file is missing, its header is not `sentence<TAB>label`, or a row is malformed.
 */
export function readSplit(file: string): Sst2Split {
  if (!existsSync(file)) throw new Error(`${file} not found: ${HOW_TO_GET}`);
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== 'sentence\tlabel') {
    throw new Error(`${file}: the first line must be the header 'sentence<TAB>label' (GLUE's SST-2 format), got ${JSON.stringify(lines[0])}`);
  }
  const sentences: string[] = [];
  const labels = new Int32Array(lines.length - 1);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const tab = line.lastIndexOf('\t');
    const label = line.slice(tab + 1);
    if (tab < 0 || (label !== '0' && label !== '1')) {
      throw new Error(`${file} line ${i + 1}: expected 'sentence<TAB>0' or 'sentence<TAB>1', got ${JSON.stringify(line.slice(0, 80))}`);
    }
    sentences.push(line.slice(0, tab).trim());
    labels[i - 1] = Number(label);
  }
  return { sentences, labels };
}
