/**
 * What keeping only the teacher's top-k logits costs in accuracy (issue #11,
 * docs/teacher-outputs.md "Top-k outputs"): the demo's student (784-800-800-10
 * on the first 2,000 training digits, 40 epochs, Adam 1e-3 with a cosine
 * decay, batch 128, T = 3, alpha = 0.1, kind 'kl') distilled from sweep.ts's
 * teacher (784-1200-1200-10, 20 epochs on 8,000 shifted digits) with the
 * teacher's full logits, and with its k largest logits only, for each k.
 *
 * Every run of a seed starts from the same initial weights and reads the same
 * batches in the same order: only the teacher's targets differ. The teacher's
 * outputs on the 2,000 digits are scored once into a `TeacherCache` (full
 * logits, or `{ topK: k }`: class ids and logits, k·8 bytes a row), looked up
 * by each batch's ids; the step is a hand-written loop over
 * `distillationLoss(studentLogits, teacherOutputs, { temperature, alpha, labels })`,
 * which takes `TopKLogits` in place of full logits (the same loss the
 * Distiller computes).
 *
 * Teachers are shared with sweep.ts (`.tmp/mnist-sweep/teachers/`): trained
 * once per seed, then reloaded. Each result is appended to
 * `<out>/topk.jsonl`; a rerun skips (seed, k) pairs already there and prints
 * the table of everything recorded.
 *
 * Run: `npx tsx examples/mnist/topk.ts --seeds 0,1,2 --ks full,1,2,3,5 [--epochs 40] [--out .tmp/mnist-topk]`
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { distillationLoss, pickTrainingBackend, TeacherCache } from '../../src/index.js';
import { loadStudent, saveStudent } from '../../src/node/index.js';
import { toTensors } from '../shared/mnist.js';
import { EpochBatches, loadDemoData } from './data.js';
import { buildMlp, cosineRate, countMismatches, predictClasses, trainOnLabels } from './train.js';

const TEACHER = { hidden: [1200, 1200], epochs: 20, digits: 8000, inputDropout: 0.2, dropout: 0.5 };
const STUDENT = { hidden: [800, 800], digits: 2000 };
const TEMPERATURE = 3;
const ALPHA = 0.1;
const BATCH = 128;
const RATE = 1e-3;

interface Result {
  seed: number;
  k: number | 'full';
  epochs: number;
  teacherErrors: number;
  testErrors: number;
  /** Mean over the 2,000 digits of the teacher's probability mass at T inside its top k. */
  topKMass: number;
  seconds: number;
  load: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '0,1,2' },
      ks: { type: 'string', default: 'full,1,2,3,5' },
      epochs: { type: 'string', default: '40' },
      out: { type: 'string', default: '.tmp/mnist-topk' },
      teachers: { type: 'string', default: '.tmp/mnist-sweep/teachers' },
    },
  });
  tf.env().set('PROD', true);
  await pickTrainingBackend({ prefer: ['wasm'] });
  await tf.ready();
  const epochs = Number(values.epochs);
  const ks = values.ks.split(',').map((k) => (k === 'full' ? ('full' as const) : Number(k)));
  const resultsFile = path.join(values.out, 'topk.jsonl');
  await mkdir(values.out, { recursive: true });
  const done = await readResults(resultsFile);

  for (const seed of values.seeds.split(',').map(Number)) {
    const todo = ks.filter((k) => !done.some((r) => r.seed === seed && r.k === k && r.epochs === epochs));
    if (todo.length === 0) continue;
    const split = loadDemoData({ seed });
    const test = toTensors(split.test);
    const scoreOn = { x: test.x, labels: split.test.labels };
    const teacher = await loadOrTrainTeacher(seed, values.teachers, scoreOn);
    const teacherErrors = countMismatches(await predictClasses(teacher, test.x), split.test.labels);
    const train = loadDemoData({ seed, trainLimit: STUDENT.digits }).train;
    const trainX = toTensors(train);
    const ids = Array.from({ length: train.size }, (_, i) => i); // EpochBatches' ids: the row index
    const teacherLogits = tf.tidy(() => teacher.predict(trainX.x, { batchSize: 500 }) as tf.Tensor2D);

    for (const k of todo) {
      const cache = new TeacherCache(k === 'full' ? {} : { topK: k });
      cache.set(ids, teacherLogits);
      const topKMass = k === 'full' ? 1 : meanTopKMass(teacherLogits, k);
      const student = buildMlp({ hidden: STUDENT.hidden }, `${seed}/s${STUDENT.hidden.join('x')}`);
      const batches = new EpochBatches(train, { batchSize: BATCH, seed: `${seed}/batches`, oneHot: false, maxShift: 0, ids: true });
      const started = performance.now();
      await distilTopK(student, cache, batches, epochs);
      const seconds = (performance.now() - started) / 1000;
      const testErrors = countMismatches(await predictClasses(student, test.x), split.test.labels);
      const result: Result = { seed, k, epochs, teacherErrors, testErrors, topKMass, seconds, load: os.loadavg()[0]! };
      console.log(`seed ${seed} k ${k}: ${testErrors} test errors (teacher ${teacherErrors}), ${seconds.toFixed(0)} s, load ${result.load.toFixed(1)}`);
      await appendFile(resultsFile, `${JSON.stringify(result)}\n`);
      done.push(result);
      student.dispose();
    }
    tf.dispose([teacherLogits, trainX.x, trainX.y, test.x, test.y]);
    teacher.dispose();
  }
  console.log(`\n${table(done.filter((r) => r.epochs === epochs), ks)}`);
  const loads = done.map((r) => r.load);
  console.log(
    `\n${new Date().toISOString()}, ${epochs} epochs; 1-minute load average at the end of each run ${Math.min(...loads).toFixed(1)} to ` +
      `${Math.max(...loads).toFixed(1)}, now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
}

/** The hand-written loop: Adam with the demo's cosine decay, the Distiller's loss on each batch's cached teacher outputs. */
async function distilTopK(student: ReturnType<typeof buildMlp>, cache: TeacherCache, batches: EpochBatches, epochs: number): Promise<void> {
  const optimizer = tf.train.adam(RATE);
  const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let epoch = 0; epoch < epochs; epoch++) {
    (optimizer as unknown as { learningRate: number }).learningRate = cosineRate(RATE, epoch, epochs);
    const iterator = await batches.iterator();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      const { xs, ys, id } = next.value;
      const targets = await cache.predict(xs, { temperature: TEMPERATURE, ids: id! });
      optimizer.minimize(
        () =>
          distillationLoss(student.apply(xs, { training: true }) as tf.Tensor2D, targets, {
            temperature: TEMPERATURE,
            alpha: ALPHA,
            labels: ys,
            validate: false,
          }),
        false,
        variables,
      );
      tf.dispose([xs, ys, id, ...(targets instanceof tf.Tensor ? [targets] : [targets.ids, targets.logits])]);
    }
  }
  optimizer.dispose();
}

async function loadOrTrainTeacher(seed: number, dir: string, test: { x: tf.Tensor2D; labels: Int32Array }) {
  const key = `s${seed}-${TEACHER.hidden.join('x')}-${TEACHER.epochs}-${TEACHER.digits}`; // sweep.ts's key
  const teacherDir = path.join(dir, key);
  if (existsSync(path.join(teacherDir, 'info.json'))) return loadStudent(teacherDir);
  const teacher = buildMlp(TEACHER, `${seed}/teacher`);
  const train = loadDemoData({ seed, trainLimit: TEACHER.digits }).train;
  const started = process.cpuUsage();
  const run = await trainOnLabels(teacher, new EpochBatches(train, { batchSize: BATCH, seed: `${seed}/batches`, oneHot: true, maxShift: 2 }), {
    epochs: TEACHER.epochs,
    learningRate: RATE,
    seed: `${seed}/teacher`,
    test,
  });
  const used = process.cpuUsage(started);
  await saveStudent(teacher, teacherDir);
  const testErrors = run.curve[run.curve.length - 1]!.testErrors;
  await writeFile(path.join(teacherDir, 'info.json'), JSON.stringify({ testErrors, cpuSeconds: (used.user + used.system) / 1e6, curve: run.curve }));
  console.log(`teacher ${key}: trained, ${testErrors} test errors`);
  return teacher;
}

function meanTopKMass(logits: tf.Tensor2D, k: number): number {
  return tf.tidy(() => tf.mean(tf.sum(tf.topk(tf.softmax(tf.div(logits, TEMPERATURE)), k).values, -1)).dataSync()[0]!);
}

async function readResults(file: string): Promise<Result[]> {
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Result);
}

function table(results: Result[], ks: Array<number | 'full'>): string {
  const seeds = [...new Set(results.map((r) => r.seed))].sort((a, b) => a - b);
  const header = `| teacher outputs | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean ± sample sd | teacher mass in top k (T=${TEMPERATURE}) |`;
  const rule = `|---|${seeds.map(() => '---:').join('|')}|---:|---:|`;
  const teacherRow = `| (teacher's own errors) | ${seeds.map((s) => results.find((r) => r.seed === s)?.teacherErrors ?? '').join(' | ')} | | |`;
  const rows = ks.map((k) => {
    const of = seeds.map((s) => results.find((r) => r.seed === s && r.k === k));
    const errors = of.filter((r) => r !== undefined).map((r) => r!.testErrors);
    const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
    const sd = Math.sqrt(errors.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, errors.length - 1));
    const mass = of.filter((r) => r !== undefined).map((r) => r!.topKMass);
    const label = k === 'full' ? 'full logits (10 classes)' : `top-${k}`;
    return `| ${label} | ${of.map((r) => r?.testErrors ?? '-').join(' | ')} | ${errors.length > 1 ? `${mean.toFixed(1)} ± ${sd.toFixed(1)}` : errors.length === 1 ? mean.toFixed(0) : '-'} | ${
      mass.length ? `${((mass.reduce((a, b) => a + b, 0) / mass.length) * 100).toFixed(2)} %` : '-'
    } |`;
  });
  return [header, rule, teacherRow, ...rows].join('\n');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
