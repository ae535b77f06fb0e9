/**
 * The phases of the SST-2 example, each a function the example (main.ts) and
 * the opt-in test (test/sst2/example.test.ts) both call: the transfer set,
 * the tfjs teacher (route b), the teacher file (route a), the student on hard
 * labels, the distilled student.
 *
 * @packageDocumentation
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  buildBiLstmStudent,
  Distiller,
  EnsembleTeacher,
  withSeed,
  type ModelInputs,
  type TeacherCache,
  type TeacherLike,
  type Vocabulary,
} from '../../src/index.js';
import type { CheckpointStore } from '../../src/distill/index.js';
import { fileCheckpointStore } from '../../src/node/index.js';
import { bucketedBatches, type EncodedRows } from './batches.js';
import { TextCnn } from './textCnn.js';
import { predictLogits, trainOnLabels, type Forward } from './train.js';

/** Settings shared by the phases. Defaults live in main.ts. */
export interface PipelineSettings {
  seed: number;
  batchSize: number;
  learningRate: number;
  /** Student epochs (hard labels and distillation alike). */
  epochs: number;
  /** Dropout of the student's ReLU layer. */
  dropout: number;
  /** Teacher CNN members (route b). */
  teacherMembers: number;
  teacherEpochs: number;
  /** Called with progress lines. */
  log?: (line: string) => void;
  /**
   * `--checkpoint`: a folder for the distilled students' checkpoints (one
   * `fileCheckpointStore` per seed and student, every {@link CHECKPOINT_STEPS}
   * steps). A run killed and started again with the same flags resumes each
   * distillation where it stopped, and skips those that had finished.
   */
  checkpoint?: string;
}

/** Steps between two checkpoints with `--checkpoint` (a few seconds of training each way on 2 cores). */
export const CHECKPOINT_STEPS = 200;

/** The transfer set: SST-2's training rows first (ids 0..trainRows−1), then the augmented sentences. */
export interface TransferSet extends EncodedRows {
  ids: Int32Array;
  texts: string[];
  /** How many rows are training rows (the rest are augmented). */
  trainRows: number;
}

/** The CNN widest filter: every batch a CNN teacher reads is at least this wide. */
export const MIN_WIDTH = 5;
const NUM_CLASSES = 2;

/**
 * Builds the transfer set from the training sentences and their augmented
 * copies. Integer ids, in [0, 2^24): row i of the result has id i.
 *
 * @param trainSentences - SST-2's training rows.
 * @param augmented - Sentences from `augment` (originals and duplicates already dropped).
 * @param vocabulary - Encodes every row (truncated to its `maxLength`).
 * @returns The transfer set.
 */
export function buildTransferSet(trainSentences: string[], augmented: string[], vocabulary: Vocabulary): TransferSet {
  const texts = [...trainSentences, ...augmented];
  return {
    texts,
    tokens: texts.map((t) => Int32Array.from(vocabulary.encode(t))),
    ids: Int32Array.from(texts, (_, i) => i),
    trainRows: trainSentences.length,
  };
}

/** The first `rows` rows of a transfer set (the training rows alone, for distillation without augmentation). */
export function headRows(set: TransferSet, rows: number): EncodedRows {
  return { tokens: set.tokens.slice(0, rows), ids: set.ids.slice(0, rows) };
}

/** A trained tfjs teacher: its members, the ensemble as a function, its size and training time. */
export interface TfjsTeacher {
  members: TextCnn[];
  /** Mean of the members' logits, through kd-ts's `EnsembleTeacher`. */
  ensemble: EnsembleTeacher;
  /** The same as a {@link Forward} for scoring. */
  forward: Forward;
  parameters: number;
  seconds: number;
}

/**
 * Route (b): trains `teacherMembers` CNNs on the hard labels, each from its
 * own seed, and combines them by the mean of their logits.
 *
 * @param train - Encoded training rows with labels.
 * @param vocabSize - Rows of the embedding.
 * @param settings - See {@link PipelineSettings}.
 * @returns The teacher.
 */
export async function trainTfjsTeacher(train: EncodedRows, vocabSize: number, settings: PipelineSettings): Promise<TfjsTeacher> {
  const members: TextCnn[] = [];
  const started = performance.now();
  for (let k = 0; k < settings.teacherMembers; k++) {
    const seed = `${settings.seed}/teacher-${k}`;
    const cnn = withSeed(seed, () => new TextCnn({ vocabSize }));
    await trainOnLabels((x, training) => cnn.apply(x, training), cnn.variables, bucketedBatches(train, { batchSize: settings.batchSize, seed, minWidth: cnn.minWidth }), {
      epochs: settings.teacherEpochs,
      learningRate: settings.learningRate,
      numClasses: NUM_CLASSES,
      seed,
      onEpochEnd: (epoch, loss, seconds) =>
        settings.log?.(`  teacher CNN ${k + 1}/${settings.teacherMembers} epoch ${epoch + 1}/${settings.teacherEpochs}: loss ${loss.toFixed(4)}, ${seconds.toFixed(0)} s`),
    });
    members.push(cnn);
  }
  const ensemble = new EnsembleTeacher(
    members.map((cnn) => (x: ModelInputs) => cnn.apply(x as tf.Tensor, false)),
    { combine: 'mean-logits' },
  );
  const forward: Forward = (x) =>
    tf.tidy(() => tf.div(tf.addN(members.map((cnn) => cnn.apply(x, false))), members.length));
  return {
    members,
    ensemble,
    forward,
    parameters: members.reduce((n, cnn) => n + cnn.countParams(), 0),
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Route (a): checks that a teacher-output cache (read from the Python
 * teacher's file) has a row for every transfer-set id.
 *
 * @param cache - The cache.
 * @param set - The transfer set the file must cover.
 * @param file - The file's name, for the message.
 * @throws Error naming the first missing id and the fix.
 */
export function checkTeacherCoverage(cache: TeacherCache, set: TransferSet, file: string): void {
  const missing = set.ids.find((id) => !cache.has(id));
  if (missing !== undefined || cache.size !== set.ids.length) {
    throw new Error(
      `${file} holds ${cache.size} rows but the transfer set has ${set.ids.length}` +
        (missing === undefined ? '' : ` (first id without a row: ${missing}, "${set.texts[missing]}")`) +
        ': it was scored for another transfer set. Export the transfer set with the same --seed, --aug-passes and --train-rows ' +
        '(--export-transfer), score it with teacher/train_teacher.py, and pass its output here.',
    );
  }
}

/** The student of every run: Tang et al.'s BiLSTM (builder defaults: 300-d random embeddings, 150 units, ReLU 200). */
export function makeStudent(vocabSize: number, settings: PipelineSettings, seed: string): tfl.LayersModel {
  return withSeed(seed, () => buildBiLstmStudent({ vocabSize, numClasses: NUM_CLASSES, dropout: settings.dropout }));
}

/** A LayersModel as a {@link Forward}. */
export function forwardOf(model: tfl.LayersModel): Forward {
  return (x, training) => model.apply(x, { training }) as tf.Tensor;
}

/**
 * The student on hard labels alone: cross-entropy, Adam.
 *
 * @param train - Encoded training rows with labels.
 * @param vocabSize - Vocabulary size.
 * @param settings - See {@link PipelineSettings}.
 * @returns The trained student and the seconds it took.
 */
export async function trainStudentOnLabels(
  train: EncodedRows,
  vocabSize: number,
  settings: PipelineSettings,
): Promise<{ student: tfl.LayersModel; seconds: number }> {
  const seed = `${settings.seed}/student`;
  const student = makeStudent(vocabSize, settings, seed);
  const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
  const seconds = await trainOnLabels(forwardOf(student), variables, bucketedBatches(train, { batchSize: settings.batchSize, seed: `${seed}/labels` }), {
    epochs: settings.epochs,
    learningRate: settings.learningRate,
    numClasses: NUM_CLASSES,
    seed: `${seed}/labels`,
    onEpochEnd: (epoch, loss, s) => settings.log?.(`  labels epoch ${epoch + 1}/${settings.epochs}: loss ${loss.toFixed(4)}, ${s.toFixed(0)} s`),
  });
  return { student, seconds };
}

/**
 * The student distilled from the teacher's logits (Tang et al.: MSE on the
 * logits, alpha 0, so no labels) over some transfer-set rows, through
 * `Distiller.fitDataset`; batches carry the rows' ids, which the teacher
 * (a `TeacherCache`, or `cachedTeacher`) looks its rows up by.
 *
 * @param teacher - The teacher, keyed by id.
 * @param rows - Transfer-set rows with ids (no labels needed).
 * @param vocabSize - Vocabulary size.
 * @param settings - See {@link PipelineSettings}.
 * @param name - Names the run in logs and seeds.
 * @returns The student and the seconds it took.
 */
export async function distillStudent(
  teacher: TeacherLike,
  rows: EncodedRows,
  vocabSize: number,
  settings: PipelineSettings,
  name: string,
): Promise<{ student: tfl.LayersModel; seconds: number }> {
  // Every student starts from the same weights as the label-only one: only what it learns from differs.
  const student = makeStudent(vocabSize, settings, `${settings.seed}/student`);
  const distiller = new Distiller({ teacher, student });
  const optimizer = tf.train.adam(settings.learningRate);
  distiller.compile({ optimizer, kind: 'mse', alpha: 0 });
  const started = performance.now();
  let epochStarted = started;
  const batches = bucketedBatches({ tokens: rows.tokens, ids: rows.ids! }, { batchSize: settings.batchSize, seed: `${settings.seed}/${name}`, minWidth: MIN_WIDTH });
  const checkpoint = await checkpointOptions(settings, name);
  await distiller.fitDataset(batches, {
    epochs: settings.epochs,
    seed: `${settings.seed}/${name}`,
    // With checkpoints: resume where a killed run stopped. Every pass of `batches` is the same for a given epoch
    // (atEpoch below), so the resumed run skips the batches done and ends as an uninterrupted run would.
    ...checkpoint,
    callbacks: {
      onEpochBegin: async (epoch: number) => batches.atEpoch(epoch),
      onEpochEnd: async (epoch: number, logs?: Record<string, number>) => {
        const now = performance.now();
        settings.log?.(`  ${name} epoch ${epoch + 1}/${settings.epochs}: loss ${logs?.loss?.toFixed(4)}, ${((now - epochStarted) / 1000).toFixed(0)} s`);
        epochStarted = now;
      },
    },
  });
  optimizer.dispose(); // its moments: the Distiller leaves the optimizer to its owner
  return { student, seconds: (performance.now() - started) / 1000 };
}

/** `fitDataset`'s checkpoint options for one distillation of `--checkpoint DIR`, or none. */
async function checkpointOptions(settings: PipelineSettings, name: string): Promise<{ checkpoint?: { store: CheckpointStore; everySteps: number }; resume?: boolean; deterministic?: boolean }> {
  if (settings.checkpoint === undefined) return {};
  const store = fileCheckpointStore(path.join(settings.checkpoint, `seed-${settings.seed}-${name}`));
  const saved = await store.list();
  if (saved.length > 0) settings.log?.(`  ${name}: resuming from ${path.join(settings.checkpoint, `seed-${settings.seed}-${name}`)} (${saved.at(-1)})`);
  return { checkpoint: { store, everySteps: CHECKPOINT_STEPS }, resume: true, deterministic: true };
}

/** Dev accuracy of a model given as a {@link Forward}. */
export async function devAccuracy(forward: Forward, dev: EncodedRows & { labels: Int32Array }): Promise<number> {
  const logits = await predictLogits(forward, dev, { minWidth: MIN_WIDTH });
  let correct = 0;
  for (let i = 0; i < dev.labels.length; i++) if ((logits[2 * i + 1]! > logits[2 * i]! ? 1 : 0) === dev.labels[i]) correct++;
  return correct / dev.labels.length;
}
