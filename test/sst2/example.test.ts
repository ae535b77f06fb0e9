/**
 * Opt-in checks of the SST-2 example (examples/sst2) on the real GLUE files:
 * `npm run test:sst2` (vitest.sst2.config.ts). The data folder is
 * `KD_SST2_DIR`, by default `<repo>/../shared/data/sst2`; without it the
 * suite is skipped. Runs on wasm with kd-ts's training kernels, as the example does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { augment, cachedTeacher, enableWasmTraining, Vocabulary, withSeed } from '../../src/index.js';
import { tokenizeSst2 } from '../../src/text/index.js';
import { readTeacherCache, writeTransferSet } from '../../src/node/index.js';
import { bucketedBatches, padRows } from '../../examples/sst2/batches.js';
import { readSst2, readSplit } from '../../examples/sst2/data.js';
import {
  buildTransferSet,
  checkTeacherCoverage,
  devAccuracy,
  distillStudent,
  headRows,
  trainStudentOnLabels,
  trainTfjsTeacher,
  type PipelineSettings,
} from '../../examples/sst2/pipeline.js';
import { TextCnn } from '../../examples/sst2/textCnn.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dataDir = process.env.KD_SST2_DIR ?? resolve(repo, '../shared/data/sst2');
const hasData = existsSync(join(dataDir, 'train.tsv')) && existsSync(join(dataDir, 'dev.tsv'));
const PYTHON = '/usr/bin/python3';
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

function countLabels(labels: Int32Array): [number, number] {
  let positive = 0;
  for (const label of labels) positive += label;
  return [labels.length - positive, positive];
}

describe.skipIf(!hasData)('SST-2 data (GLUE files)', () => {
  it('reads every row of train.tsv and dev.tsv with GLUE\'s label counts', () => {
    const { train, dev } = readSst2(dataDir);
    expect(train.sentences.length).toBe(67_349);
    expect(dev.sentences.length).toBe(872);
    expect(countLabels(train.labels)).toEqual([29_780, 37_569]);
    expect(countLabels(dev.labels)).toEqual([428, 444]);
    // GLUE's trailing space before the tab is gone; the text is otherwise untouched.
    expect(train.sentences[0]).toBe('hide new secretions from the parental units');
    expect(dev.sentences[0]).toBe("it 's a charming and often affecting journey .");
    expect(train.sentences.every((s) => s === s.trim() && s.length > 0)).toBe(true);
  });

  it('names the missing folder or file and the fix', () => {
    expect(() => readSst2(join(dataDir, 'no-such-folder'))).toThrow(/not found: pass --data/);
    expect(() => readSplit(join(dataDir, 'test.tsv'))).toThrow(/test\.tsv not found/);
  });

  it('builds a vocabulary of the training rows and a transfer set whose ids are row numbers', async () => {
    const { train } = readSst2(dataDir);
    const vocabulary = Vocabulary.fromCorpus(train.sentences, { tokenizer: 'whitespace', maxLength: 50 });
    // 14,816 distinct training tokens (the PyTorch anchor's 14.8k) plus PAD, UNK, MASK.
    expect(vocabulary.size).toBe(14_819);
    const rows = train.sentences.slice(0, 300);
    const extra = await augment(rows, { nIter: 1, seed: 0, tokenizer: tokenizeSst2 });
    const set = buildTransferSet(rows, extra, vocabulary);
    expect(set.ids.length).toBe(300 + extra.length);
    expect(Array.from(set.ids)).toEqual(Array.from(set.ids, (_, i) => i));
    expect(set.tokens.every((t) => t.length <= 50)).toBe(true);
    // augment drops originals and repeats: the augmented rows are new and distinct.
    expect(new Set(set.texts).size).toBe(new Set(rows).size + extra.length);
  });
});

describe.skipIf(!hasData)('SST-2 pipeline on wasm (a few hundred real rows)', () => {
  const settings: PipelineSettings = {
    seed: 0,
    batchSize: 50,
    learningRate: 1e-3,
    epochs: 1,
    dropout: 0,
    teacherMembers: 1,
    teacherEpochs: 1,
  };

  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    // IS_TEST turns on tfjs's per-kernel data-id check, which wasm's fused matMul trips
    // although it frees everything later (the numTensors checks below stand).
    tf.env().set('IS_TEST', false);
    enableWasmTraining();
    expect(await tf.setBackend('wasm')).toBe(true);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it('length buckets: every row once per epoch, batches padded to their longest row only', async () => {
    const { train } = readSst2(dataDir, { trainRows: 5000 });
    const vocabulary = Vocabulary.fromCorpus(train.sentences, { tokenizer: 'whitespace', maxLength: 50 });
    const tokens = train.sentences.map((s) => Int32Array.from(vocabulary.encode(s)));
    const ids = Int32Array.from(tokens, (_, i) => i);
    const before = tf.memory().numTensors;
    const iterator = await bucketedBatches({ tokens, ids, labels: train.labels }, { batchSize: 50, seed: 1 }).iterator();
    const seen: number[] = [];
    let cells = 0;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      const { xs, ys, id } = next.value;
      const batchIds = Array.from(await id!.data());
      seen.push(...batchIds);
      const width = (xs as tf.Tensor).shape[1]!;
      expect(width).toBe(Math.max(...batchIds.map((i) => tokens[i]!.length)));
      expect(Array.from(await ys!.data())).toEqual(batchIds.map((i) => train.labels[i]));
      cells += (xs as tf.Tensor).size;
      tf.dispose([xs as tf.Tensor, ys!, id!]);
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from(ids));
    const realTokens = tokens.reduce((n, t) => n + t.length, 0);
    expect(cells / realTokens).toBeLessThan(1.1); // padded to the whole set's longest row it would be ~5×
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the CNN teacher scores a sentence the same however far it is padded', () => {
    const cnn = withSeed(3, () => new TextCnn({ vocabSize: 50, embeddingDim: 8, filters: 4 }));
    const sentences = [Int32Array.from([5, 6, 7, 8, 9, 10, 11]), Int32Array.from([12, 13])];
    const logits = (minWidth: number) => {
      const x = padRows(sentences, minWidth);
      const out = cnn.apply(x);
      const values = out.arraySync();
      tf.dispose([x, out]);
      return values;
    };
    const tight = logits(5);
    for (const width of [9, 30]) {
      logits(width).forEach((row, r) => row.forEach((v, c) => expect(v).toBeCloseTo(tight[r]![c]!, 5)));
    }
    cnn.dispose();
  });

  it('runs route (b) end to end: tfjs teacher, labels, distilled with and without augmentation; no tensor left', async () => {
    const data = readSst2(dataDir, { trainRows: 250 });
    const vocabulary = Vocabulary.fromCorpus(data.train.sentences, { tokenizer: 'whitespace', maxLength: 50 });
    const extra = await augment(data.train.sentences, { nIter: 1, seed: 0, tokenizer: tokenizeSst2 });
    const transfer = buildTransferSet(data.train.sentences, extra, vocabulary);
    const train = { tokens: transfer.tokens.slice(0, transfer.trainRows), labels: data.train.labels };
    const dev = { tokens: data.dev.sentences.slice(0, 100).map((s) => Int32Array.from(vocabulary.encode(s))), labels: data.dev.labels.slice(0, 100) };
    const before = tf.memory().numTensors;

    const teacher = await trainTfjsTeacher(train, vocabulary.size, settings);
    const cached = cachedTeacher(teacher.ensemble);
    const labels = await trainStudentOnLabels(train, vocabulary.size, settings);
    const plain = await distillStudent(cached, headRows(transfer, transfer.trainRows), vocabulary.size, settings, 'distil');
    const callsAfterTrainRows = cached.teacherCalls;
    expect(cached.cache.size).toBe(transfer.trainRows);
    const aug = await distillStudent(cached, transfer, vocabulary.size, settings, 'distil-aug');
    // The second run scored only the augmented rows: one teacher call per id in all.
    expect(cached.cache.size).toBe(transfer.ids.length);
    expect(cached.teacherCalls).toBeGreaterThan(callsAfterTrainRows);

    for (const model of [labels.student, plain.student, aug.student]) {
      const acc = await devAccuracy((x) => model.apply(x) as tf.Tensor, dev);
      expect(acc).toBeGreaterThanOrEqual(0);
      expect(acc).toBeLessThanOrEqual(1);
      model.dispose();
    }
    teacher.members.forEach((cnn) => cnn.dispose());
    expect(tf.memory().numTensors).toBe(before);
  });

  it.skipIf(!hasTorch)('runs route (a): exported transfer set, PyTorch teacher file, read back by id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kd-sst2-'));
    try {
      const data = readSst2(dataDir, { trainRows: 200 });
      const vocabulary = Vocabulary.fromCorpus(data.train.sentences, { tokenizer: 'whitespace', maxLength: 50 });
      const extra = await augment(data.train.sentences, { nIter: 1, seed: 0, tokenizer: tokenizeSst2 });
      const transfer = buildTransferSet(data.train.sentences, extra, vocabulary);
      await writeTransferSet(join(dir, 'transfer.jsonl'), Array.from(transfer.ids, (id) => ({ id, text: transfer.texts[id]! })));
      const script = join(repo, 'examples/sst2/teacher/train_teacher.py');
      const run = spawnSync(
        PYTHON,
        [script, '--data', dataDir, '--train-rows', '200', '--members', '1', '--epochs', '1', '--transfer', join(dir, 'transfer.jsonl'), '--out', join(dir, 'teacher.npy')],
        { encoding: 'utf8' },
      );
      expect(run.status, run.stderr).toBe(0);

      const cache = await readTeacherCache(join(dir, 'teacher.npy'));
      checkTeacherCoverage(cache, transfer, 'teacher.npy');
      expect(() => checkTeacherCoverage(cache, buildTransferSet(data.train.sentences, [...extra, 'one row too many'], vocabulary), 'teacher.npy')).toThrow(
        /scored for another transfer set/,
      );
      const before = tf.memory().numTensors;
      const { student } = await distillStudent(cache, transfer, vocabulary.size, settings, 'distil-aug');
      student.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
