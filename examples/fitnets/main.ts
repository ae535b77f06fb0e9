/**
 * FitNets on MNIST (Romero et al. 2015): a thin, deeper student is first
 * hinted from the teacher's middle layer (feature distillation alone,
 * `kind: 'none'`, through a trainable projection that is never part of the
 * student), then distilled on the teacher's logits; against the same student
 * distilled on the logits alone for as many epochs in all.
 *
 * Data: the examples' seeded, class-balanced split of the `mnist` package
 * (examples/shared/mnist.ts: 8,000 training digits, 2,000 test digits). The
 * teacher learns from all 8,000 training digits; the students from the first
 * `--student-digits` of them (default 2,000), as in examples/mnist.
 *
 * Run: `nice -n 15 npx tsx examples/fitnets/main.ts` (3 seeds; a few minutes
 * of CPU on wasm), `--quick` for a smoke run. Flags: `--seeds 0,1,2`,
 * `--teacher-epochs N`, `--hint-epochs N`, `--epochs N` (second stage),
 * `--student-digits N`, `--student-hidden 16,16,16,16,16,16,16,16`, `--hint hidden_2,hidden_4`
 * (teacher layer, student layer), `--backend wasm|cpu`.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { Distiller, pickTrainingBackend, withSeed } from '../../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, toTensors, type MnistSet } from '../shared/mnist.js';
import { printMarkdownTable } from '../shared/table.js';
import { spread } from '../shared/stats.js';

interface Settings {
  seeds: number[];
  teacherHidden: number[];
  studentHidden: number[];
  teacherEpochs: number;
  hintEpochs: number;
  epochs: number;
  studentDigits: number;
  temperature: number;
  alpha: number;
  batchSize: number;
  /** Teacher layer hinting the student's guided layer (FitNets: the middle of each). */
  hint: { teacherLayer: string; studentLayer: string };
}

const DEFAULT: Settings = {
  seeds: [0, 1, 2],
  teacherHidden: [512, 512, 512],
  studentHidden: [16, 16, 16, 16, 16, 16, 16, 16],
  teacherEpochs: 10,
  hintEpochs: 10,
  epochs: 20,
  studentDigits: 2000,
  temperature: 4,
  alpha: 0.1,
  batchSize: 128,
  hint: { teacherLayer: 'hidden_2', studentLayer: 'hidden_4' },
};

const QUICK: Settings = { ...DEFAULT, seeds: [0], teacherHidden: [64, 64, 64], teacherEpochs: 1, hintEpochs: 1, epochs: 1, studentDigits: 500 };

/** A 784-…-10 ReLU MLP ending in logits, its hidden layers named hidden_1, hidden_2, ... */
export function namedMlp(hidden: readonly number[], seed: number): tfl.LayersModel {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        ...hidden.map((units, i) =>
          tfl.layers.dense({ units, activation: 'relu', name: `hidden_${i + 1}`, ...(i === 0 ? { inputShape: [MNIST_PIXELS] } : {}) }),
        ),
        tfl.layers.dense({ units: MNIST_CLASSES, name: 'logits' }),
      ],
    }),
  );
}

function testErrors(model: tfl.LayersModel, test: { x: tf.Tensor2D; y: tf.Tensor1D }): number {
  return tf.tidy(() => {
    const predicted = tf.argMax(model.predict(test.x) as tf.Tensor, -1);
    return tf.sum(tf.cast(tf.notEqual(predicted, test.y), 'int32')).dataSync()[0]!;
  });
}

function prefix(set: MnistSet, n: number): MnistSet {
  const size = Math.min(n, set.size);
  return { x: set.x.subarray(0, size * MNIST_PIXELS), labels: set.labels.subarray(0, size), ids: set.ids.subarray(0, size), size };
}

export interface SeedResult {
  seed: number;
  teacher: number;
  logits: number;
  fitnets: number;
  /** Relative gap ‖projected student − teacher‖ / ‖teacher‖ at the hinted layer, before and after stage 1. */
  hintGap: [number, number];
}

/** Trains the teacher and both students of one seed; returns test errors (of 2,000). */
export async function runSeed(s: Settings, seed: number, log: (line: string) => void): Promise<SeedResult> {
  const { train, test } = loadMnistSplit({ seed });
  const teacherData = toTensors(train);
  const studentData = toTensors(prefix(train, s.studentDigits));
  const testData = toTensors(test);

  const teacher = namedMlp(s.teacherHidden, seed);
  // tfjs's categoricalCrossentropy expects probabilities: the logits model trains on softmax cross-entropy.
  teacher.compile({ optimizer: tf.train.adam(1e-3), loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits) });
  const oneHot = tf.oneHot(teacherData.y, MNIST_CLASSES);
  await withSeed(seed, () => teacher.fit(teacherData.x, oneHot, { epochs: s.teacherEpochs, batchSize: s.batchSize, verbose: 0 }));
  oneHot.dispose();
  const teacherErrors = testErrors(teacher, testData);
  log(`seed ${seed}: teacher ${teacherErrors} test errors`);

  const studentSeed = 1000 + seed;
  const fit = (d: Distiller, epochs: number) =>
    d.fit(studentData.x, studentData.y, { epochs, batchSize: s.batchSize, seed });
  const kd = { optimizer: tf.train.adam(1e-3), temperature: s.temperature, alpha: s.alpha } as const;

  // Plain logit distillation for hintEpochs + epochs.
  const plain = namedMlp(s.studentHidden, studentSeed);
  const plainDistiller = new Distiller({ teacher, student: plain });
  plainDistiller.compile({ ...kd, optimizer: tf.train.adam(1e-3) });
  await fit(plainDistiller, s.hintEpochs + s.epochs);
  const logitsErrors = testErrors(plain, testData);

  // FitNets: stage 1, hints only (kind 'none'); stage 2, logit distillation.
  const hinted = namedMlp(s.studentHidden, studentSeed);
  const paramsBefore = hinted.countParams();
  const fitnets = new Distiller({ teacher, student: hinted });
  // The projection (16 → 512) is drawn by tfjs's generators: compile inside withSeed to repeat it.
  withSeed(`${seed}/projection`, () =>
    fitnets.compile({ optimizer: tf.train.adam(1e-3), kind: 'none', features: [{ ...s.hint, loss: 'mse' }] }),
  );
  const gapBefore = (await fitnets.evaluate(studentData.x)).feature_loss!;
  await fit(fitnets, s.hintEpochs);
  const gapAfter = (await fitnets.evaluate(studentData.x)).feature_loss!;
  fitnets.compile({ ...kd, optimizer: tf.train.adam(1e-3) });
  await fit(fitnets, s.epochs);
  const fitnetsErrors = testErrors(hinted, testData);
  if (hinted.countParams() !== paramsBefore) throw new Error('the hint changed the student');
  log(`seed ${seed}: logits-only ${logitsErrors}, FitNets ${fitnetsErrors} test errors; hint loss ${gapBefore.toFixed(4)} → ${gapAfter.toFixed(4)}`);

  tf.dispose([teacherData.x, teacherData.y, studentData.x, studentData.y, testData.x, testData.y]);
  teacher.dispose();
  plain.dispose();
  hinted.dispose();
  return { seed, teacher: teacherErrors, logits: logitsErrors, fitnets: fitnetsErrors, hintGap: [gapBefore, gapAfter] };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      seeds: { type: 'string' },
      'teacher-epochs': { type: 'string' },
      'hint-epochs': { type: 'string' },
      epochs: { type: 'string' },
      'student-digits': { type: 'string' },
      'student-hidden': { type: 'string' },
      hint: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const base = values.quick ? QUICK : DEFAULT;
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const s: Settings = {
    ...base,
    seeds: values.seeds === undefined ? base.seeds : values.seeds.split(',').map(Number),
    teacherEpochs: num(values['teacher-epochs'], base.teacherEpochs),
    hintEpochs: num(values['hint-epochs'], base.hintEpochs),
    epochs: num(values.epochs, base.epochs),
    studentDigits: num(values['student-digits'], base.studentDigits),
    studentHidden: values['student-hidden']?.split(',').map(Number) ?? base.studentHidden,
    hint:
      values.hint === undefined
        ? base.hint
        : { teacherLayer: values.hint.split(',')[0]!, studentLayer: values.hint.split(',')[1]! },
  };
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: [values.backend as 'wasm' | 'cpu'] });
  console.log(choice.reasons.join('\n'));
  const started = Date.now();
  const results: SeedResult[] = [];
  for (const seed of s.seeds) results.push(await runSeed(s, seed, console.log));
  console.log(
    `\nteacher 784-${s.teacherHidden.join('-')}-10 (${s.teacherEpochs} epochs, 8,000 digits); ` +
      `student 784-${s.studentHidden.join('-')}-10 on ${s.studentDigits} digits; hint ${s.hint.teacherLayer} → ${s.hint.studentLayer}, ` +
      `${s.hintEpochs} + ${s.epochs} epochs; T=${s.temperature}, alpha=${s.alpha}; backend ${tf.getBackend()}; ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s wall\n`,
  );
  printMarkdownTable(
    ['seed', 'teacher errors', 'logit KD errors', 'FitNets (hint, then KD) errors', 'hint loss before → after stage 1'],
    [
      ...results.map((r) => [String(r.seed), String(r.teacher), String(r.logits), String(r.fitnets), `${r.hintGap[0].toFixed(4)} → ${r.hintGap[1].toFixed(4)}`]),
      ['mean ± sd', spread(results.map((r) => r.teacher)), spread(results.map((r) => r.logits)), spread(results.map((r) => r.fitnets)), ''],
    ],
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
