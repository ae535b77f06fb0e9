/**
 * Tang et al. (2019) without Python: a BERT-shaped SST-2 classifier run by
 * transformers.js (onnxruntime underneath) scores the augmented transfer set
 * once, by id, into a `TeacherCache`; Tang's BiLSTM student is distilled from
 * the cache in tfjs, and compared with the same student trained on the labels.
 *
 * The data, the transfer set and the students are the SST-2 example's
 * (examples/sst2: `readSst2`, `buildTransferSet`, `trainStudentOnLabels`,
 * `distillStudent`); only the teacher differs.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { augment, TeacherCache, transformersTeacher, Vocabulary } from '../../src/index.js';
import { writeTeacherOutputs } from '../../src/node/index.js';
import { tokenizeSst2 } from '../../src/text/index.js';
import { readSst2 } from '../sst2/data.js';
import { buildTransferSet, devAccuracy, distillStudent, forwardOf, trainStudentOnLabels, type PipelineSettings } from '../sst2/pipeline.js';
import { measureSpeed, type SpeedRow } from '../sst2/report.js';
import { msPer1000 } from './msPer1000.js';
import { loadTinyBert } from './tinyBert.js';

/** Settings of the SST-2 run; defaults in main.ts. */
export interface Sst2Settings extends PipelineSettings {
  data: string;
  trainRows: number | undefined;
  augPasses: number;
  augSeed: number;
  maxLength: number;
  /** Sentences per transformers.js call while scoring the transfer set. */
  teacherBatchSize: number;
  /** onnxruntime's threads for the teacher. */
  threads: number;
  /** Also write the teacher's rows as a teacher-output file (.npy, .jsonl, .arrow). */
  teacherOut: string | undefined;
}

/** What the run measured. */
export interface Sst2Result {
  trainRows: number;
  transferRows: number;
  teacher: { devAccuracy: number; parameters: number; scoringSeconds: number; rowsPerSecond: number; modelCalls: number };
  labels: { devAccuracy: number; seconds: number };
  distilled: { devAccuracy: number; seconds: number };
  speed: SpeedRow[];
}

/** Parameters of the tiny BERT (train_tiny_bert.py prints them; fixture.json records them). */
const TEACHER_PARAMETERS = 85_602;

/**
 * The whole SST-2 run.
 *
 * @param settings - See {@link Sst2Settings}.
 * @returns Accuracies, sizes, speeds.
 */
export async function runSst2(settings: Sst2Settings): Promise<Sst2Result> {
  const log = settings.log ?? (() => {});
  const data = readSst2(settings.data, settings.trainRows === undefined ? {} : { trainRows: settings.trainRows });
  const vocabulary = Vocabulary.fromCorpus(data.train.sentences, { tokenizer: 'whitespace', maxLength: settings.maxLength });
  const augmented =
    settings.augPasses === 0
      ? []
      : await augment(data.train.sentences, { nIter: settings.augPasses, seed: settings.augSeed, tokenizer: tokenizeSst2 });
  const transfer = buildTransferSet(data.train.sentences, augmented, vocabulary);
  log(`transfer set: ${transfer.trainRows} training rows + ${augmented.length} augmented = ${transfer.ids.length}; vocabulary ${vocabulary.size}`);

  // The teacher: every transfer-set row scored once, by id, into a cache.
  const { model, tokenizer } = await loadTinyBert({ threads: settings.threads });
  const teacher = transformersTeacher(model, tokenizer, { texts: transfer.texts, batchSize: settings.teacherBatchSize });
  const ids = Array.from(transfer.ids);
  const x = tf.tensor1d(transfer.ids, 'int32');
  const started = performance.now();
  const cache = await TeacherCache.fromTeacher(teacher, { x, ids }, { batchSize: 4096 });
  const scoringSeconds = (performance.now() - started) / 1000;
  x.dispose();
  log(`teacher scored ${cache.size} rows in ${scoringSeconds.toFixed(1)} s (${(cache.size / scoringSeconds).toFixed(0)} rows/s, ${teacher.modelCalls} calls)`);
  if (settings.teacherOut !== undefined) {
    await writeTeacherOutputs(cache, settings.teacherOut);
    log(`teacher outputs written to ${settings.teacherOut}`);
  }
  const devLogits = await teacher.scoreTexts(data.dev.sentences);
  const teacherDev = accuracyOf(await devLogits.data(), data.dev.labels);
  devLogits.dispose();
  log(`teacher dev accuracy ${(teacherDev * 100).toFixed(2)} %`);

  const train = { tokens: transfer.tokens.slice(0, transfer.trainRows), labels: data.train.labels };
  const dev = { tokens: data.dev.sentences.map((s) => Int32Array.from(vocabulary.encode(s))), labels: data.dev.labels };
  const labels = await trainStudentOnLabels(train, vocabulary.size, settings);
  const labelsDev = await devAccuracy(forwardOf(labels.student), dev);
  labels.student.dispose();
  log(`student on labels: dev ${(labelsDev * 100).toFixed(2)} %, ${labels.seconds.toFixed(0)} s`);
  const distilled = await distillStudent(cache, transfer, vocabulary.size, settings, 'distil-aug');
  const distilledDev = await devAccuracy(forwardOf(distilled.student), dev);
  log(`student distilled from the transformers.js teacher: dev ${(distilledDev * 100).toFixed(2)} %, ${distilled.seconds.toFixed(0)} s`);

  // Speed: the first 256 dev sentences in one batch, median of 3 (the SST-2 example's protocol).
  const timing = transformersTeacher(model, tokenizer, { texts: [], batchSize: 256, sortByLength: false });
  const teacherMs = await msPer1000(async () => (await timing.scoreTexts(data.dev.sentences.slice(0, 256))).dispose(), Math.min(256, data.dev.sentences.length));
  const speed = await measureSpeed({
    student: distilled.student,
    tfjsTeacher: undefined,
    meta: {
      description: 'tiny BERT, transformers.js',
      devAccuracy: teacherDev,
      memberDevAccuracy: [],
      parameters: TEACHER_PARAMETERS,
      trainSeconds: 0,
      msPer1000: teacherMs,
      runtime: `transformers.js, onnxruntime-node (CPU, ${settings.threads} thread${settings.threads === 1 ? '' : 's'})`,
    },
    dev,
  });
  distilled.student.dispose();
  await model.dispose();
  return {
    trainRows: transfer.trainRows,
    transferRows: transfer.ids.length,
    teacher: {
      devAccuracy: teacherDev,
      parameters: TEACHER_PARAMETERS,
      scoringSeconds,
      rowsPerSecond: cache.size / scoringSeconds,
      modelCalls: teacher.modelCalls,
    },
    labels: { devAccuracy: labelsDev, seconds: labels.seconds },
    distilled: { devAccuracy: distilledDev, seconds: distilled.seconds },
    speed,
  };
}

function accuracyOf(logits: ArrayLike<number>, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if ((logits[2 * i + 1]! > logits[2 * i]! ? 1 : 0) === labels[i]) correct++;
  return correct / labels.length;
}
