/**
 * Tang et al. (2019) on GLUE SST-2, in tfjs: distil a teacher into a BiLSTM
 * student on the training rows alone and on the rows plus augmented copies,
 * and compare with the same student trained on the labels.
 *
 * Per seed, on the GLUE SST-2 files (`--data`):
 * 1. the vocabulary of the training rows (sentences cut at 50 tokens);
 * 2. the transfer set: the 67,349 training rows, then `--aug-passes` passes
 *    of Tang et al.'s augmentation (masking, POS-guided swaps, n-grams) over
 *    them, duplicates dropped; row i has id i;
 * 3. the teacher's logits for every transfer-set row, by id:
 *    route (a) `--teacher-logits <file>`: a file written by
 *    `teacher/train_teacher.py` (PyTorch) from the transfer set this script
 *    exports with `--export-transfer <file>`, read through kd-ts's readers;
 *    route (b), the default: CNNs trained here in tfjs, through
 *    `cachedTeacher`, so each id is scored once;
 * 4. three BiLSTM students from the same initial weights: on the labels
 *    (cross-entropy), distilled on the training rows, distilled on the whole
 *    transfer set (MSE on logits, alpha 0, as Tang et al.);
 * 5. dev accuracy of each, and size and speed of the student against the teacher.
 *
 * Run `npx tsx examples/sst2/main.ts --data <GLUE SST-2 folder>`; see README.md for every flag.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { augment, cachedTeacher, pickTrainingBackend, Vocabulary, type TeacherLike } from '../../src/index.js';
import { tokenizeSst2 } from '../../src/text/index.js';
import { readTeacherCache, writeTransferSet } from '../../src/node/index.js';
import { printMarkdownTable } from '../shared/table.js';
import { pct, spread } from '../shared/stats.js';
import { readSst2 } from './data.js';
import { readFlags, UsageError, USAGE, type Settings } from './flags.js';
import {
  buildTransferSet,
  checkTeacherCoverage,
  devAccuracy,
  distillStudent,
  forwardOf,
  headRows,
  trainStudentOnLabels,
  trainTfjsTeacher,
  type TfjsTeacher,
  type TransferSet,
} from './pipeline.js';
import { measureSpeed, readTeacherMeta, type SpeedRow, type TeacherMeta } from './report.js';

/** What one seed's run measured. */
interface SeedResult {
  seed: number;
  teacherDev: number;
  labels: { dev: number; seconds: number };
  distilled: { dev: number; seconds: number };
  distilledAug: { dev: number; seconds: number };
  teacherCalls?: number;
}

async function main(): Promise<void> {
  const settings = readFlags();
  const started = performance.now();
  // Wall clock and this process's CPU time: on a shared machine the CPU time says more about an idle one.
  const cpuSeconds = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  };
  let cpuAt = cpuSeconds();
  const phases: { name: string; wallSeconds: number; cpuSeconds: number }[] = [];
  const phase = (name: string, since: number) => {
    const cpu = cpuSeconds();
    phases.push({ name, wallSeconds: (performance.now() - since) / 1000, cpuSeconds: cpu - cpuAt });
    console.log(`[${name}: ${((performance.now() - since) / 1000).toFixed(1)} s wall, ${(cpu - cpuAt).toFixed(1)} s CPU]`);
    cpuAt = cpu;
  };
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: [settings.backend] });
  console.log(choice.reasons.join('\n'));

  let t = performance.now();
  const data = readSst2(settings.data, settings.trainRows === undefined ? {} : { trainRows: settings.trainRows });
  const vocabulary = Vocabulary.fromCorpus(data.train.sentences, { tokenizer: 'whitespace', maxLength: settings.maxLength });
  console.log(`SST-2: ${data.train.sentences.length} training rows, ${data.dev.sentences.length} dev sentences; vocabulary ${vocabulary.size} ids (PAD, UNK, MASK included)`);
  phase('data and vocabulary', t);

  t = performance.now();
  const augmented =
    settings.augPasses === 0
      ? []
      : await augment(data.train.sentences, {
          nIter: settings.augPasses,
          pMask: settings.pMask,
          pPos: settings.pPos,
          pNgram: settings.pNgram,
          seed: settings.augSeed,
          tokenizer: tokenizeSst2,
        });
  const transfer = buildTransferSet(data.train.sentences, augmented, vocabulary);
  console.log(`transfer set: ${transfer.trainRows} training rows + ${augmented.length} augmented (${settings.augPasses} passes) = ${transfer.ids.length} rows`);
  phase('augmentation', t);

  if (settings.exportTransfer !== undefined) {
    await writeTransferSet(settings.exportTransfer, transferEntries(transfer));
    console.log(`wrote ${transfer.ids.length} rows to ${settings.exportTransfer}; score them with teacher/train_teacher.py, then pass --teacher-logits`);
    return;
  }

  const train = { tokens: transfer.tokens.slice(0, transfer.trainRows), labels: data.train.labels };
  const dev = { tokens: data.dev.sentences.map((s) => Int32Array.from(vocabulary.encode(s))), labels: data.dev.labels };

  // The teacher, once for all seeds.
  t = performance.now();
  let teacher: TeacherLike;
  let tfjsTeacher: TfjsTeacher | undefined;
  let meta: TeacherMeta;
  if (settings.teacherLogits !== undefined) {
    const cache = await readTeacherCache(settings.teacherLogits);
    checkTeacherCoverage(cache, transfer, settings.teacherLogits);
    teacher = cache;
    meta = readTeacherMeta(settings.teacherLogits);
    console.log(`route (a): ${cache.size} teacher rows from ${settings.teacherLogits} (${meta.description})`);
  } else {
    console.log(`route (b): training ${settings.teacherMembers} CNN teacher(s) in tfjs, ${settings.teacherEpochs} epoch(s) each`);
    tfjsTeacher = await trainTfjsTeacher(train, vocabulary.size, { ...settings, seed: settings.seeds[0]!, log: console.log });
    const dev0 = await devAccuracy(tfjsTeacher.forward, dev);
    const memberDev = await Promise.all(tfjsTeacher.members.map((cnn) => devAccuracy((x) => cnn.apply(x, false), dev)));
    meta = {
      description: `${settings.teacherMembers} CNN(s) in tfjs, filters 3/4/5 × 100, mean logits`,
      devAccuracy: dev0,
      memberDevAccuracy: memberDev,
      parameters: tfjsTeacher.parameters,
      trainSeconds: tfjsTeacher.seconds,
    };
    // The teacher runs on each id once, in the first epoch that meets it; later epochs and runs read the cache.
    teacher = cachedTeacher(tfjsTeacher.ensemble, { initialCapacity: transfer.ids.length });
    console.log(`teacher dev accuracy ${pct(dev0)} (members ${memberDev.map(pct).join(', ')}), ${tfjsTeacher.seconds.toFixed(0)} s`);
  }
  phase('teacher', t);

  const results: SeedResult[] = [];
  let lastStudent: Awaited<ReturnType<typeof distillStudent>>['student'] | undefined;
  for (const seed of settings.seeds) {
    console.log(`\n## Seed ${seed}\n`);
    const run = { ...settings, seed, log: console.log };
    const result: SeedResult = { seed, teacherDev: meta.devAccuracy } as SeedResult;

    t = performance.now();
    const labels = await trainStudentOnLabels(train, vocabulary.size, run);
    result.labels = { dev: await devAccuracy(forwardOf(labels.student), dev), seconds: labels.seconds };
    console.log(`student on labels: dev ${pct(result.labels.dev)}, ${labels.seconds.toFixed(0)} s`);
    labels.student.dispose();
    phase('student on labels', t);
    t = performance.now();

    const plain = await distillStudent(teacher, headRows(transfer, transfer.trainRows), vocabulary.size, run, 'distil');
    result.distilled = { dev: await devAccuracy(forwardOf(plain.student), dev), seconds: plain.seconds };
    console.log(`distilled, training rows only: dev ${pct(result.distilled.dev)}, ${plain.seconds.toFixed(0)} s`);
    plain.student.dispose();
    phase('distilled, training rows', t);
    t = performance.now();

    const aug = await distillStudent(teacher, transfer, vocabulary.size, run, 'distil-aug');
    result.distilledAug = { dev: await devAccuracy(forwardOf(aug.student), dev), seconds: aug.seconds };
    console.log(`distilled, transfer set (${transfer.ids.length} rows): dev ${pct(result.distilledAug.dev)}, ${aug.seconds.toFixed(0)} s`);
    if ('teacherCalls' in teacher) result.teacherCalls = (teacher as { teacherCalls: number }).teacherCalls;
    lastStudent?.dispose();
    lastStudent = aug.student;
    results.push(result);
    phase('distilled, transfer set', t);
  }

  // Size and speed: the last distilled student against the teacher, on the dev sentences.
  t = performance.now();
  const speed: SpeedRow[] = await measureSpeed({ student: lastStudent!, tfjsTeacher, meta, dev });
  phase('size and speed', t);

  printSummary(settings, transfer, meta, results, speed);
  const total = (performance.now() - started) / 1000;
  console.log(`\ntotal ${(total / 60).toFixed(1)} min wall, ${(cpuSeconds() / 60).toFixed(1)} min CPU, backend ${tf.getBackend()}`);
  if (settings.out !== undefined) {
    mkdirSync(path.dirname(settings.out), { recursive: true });
    writeFileSync(
      settings.out,
      JSON.stringify({ settings: { ...settings, data: undefined }, transferRows: transfer.ids.length, augmentedRows: transfer.ids.length - transfer.trainRows, teacher: meta, results, speed, phases, totalSeconds: total, totalCpuSeconds: cpuSeconds() }, null, 2),
    );
    console.log(`results: ${settings.out}`);
  }
  lastStudent?.dispose();
  tfjsTeacher?.members.forEach((cnn) => cnn.dispose());
}

function printSummary(settings: Settings, transfer: TransferSet, meta: TeacherMeta, results: SeedResult[], speed: SpeedRow[]): void {
  console.log('\n## Dev accuracy\n');
  const column = (f: (r: SeedResult) => number) => spread(results.map((r) => f(r) * 100));
  const seconds = (f: (r: SeedResult) => number) => `${(results.reduce((a, r) => a + f(r), 0) / results.length).toFixed(0)} s`;
  printMarkdownTable(
    ['model', `dev accuracy (%${results.length > 1 ? `, mean ± sd over ${results.length} seeds` : ''})`, 'train time', 'PyTorch anchor'],
    [
      [`teacher: ${meta.description}`, (meta.devAccuracy * 100).toFixed(2), `${meta.trainSeconds.toFixed(0)} s`, '83.3'],
      ['BiLSTM on labels', column((r) => r.labels.dev), seconds((r) => r.labels.seconds), '81.4'],
      [`BiLSTM distilled, training rows (${transfer.trainRows})`, column((r) => r.distilled.dev), seconds((r) => r.distilled.seconds), '80.3'],
      [
        `BiLSTM distilled, + ${settings.augPasses} augmentation pass(es) (${transfer.ids.length} rows)`,
        column((r) => r.distilledAug.dev),
        seconds((r) => r.distilledAug.seconds),
        '82.9 (2 passes)',
      ],
    ],
  );
  if (results.length > 1) {
    console.log('\nper seed (labels / distilled / distilled + augmentation):');
    for (const r of results) console.log(`  seed ${r.seed}: ${pct(r.labels.dev)} / ${pct(r.distilled.dev)} / ${pct(r.distilledAug.dev)}`);
  }
  console.log('\n## Size and speed (dev sentences)\n');
  printMarkdownTable(
    ['model', 'parameters', 'ms per 1,000 sentences', 'runtime'],
    speed.map((s) => [s.model, s.parameters.toLocaleString('en-US'), s.msPer1000.toFixed(0), s.runtime]),
  );
}

/** The transfer set as `writeTransferSet` takes it: `{ id, text }` per row. */
function* transferEntries(set: TransferSet): Generator<{ id: number; text: string }> {
  for (let i = 0; i < set.ids.length; i++) yield { id: set.ids[i]!, text: set.texts[i]! };
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
  else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
