/**
 * The measurements behind the demo's default recipe (examples/mnist/README.md,
 * "How the default was chosen"): for one seed, trains (or reloads) a teacher,
 * then for each student recipe a student on the labels alone and the same
 * student distilled (same initial weights, same digits and labels, same
 * batches in the same order, same epochs; only the soft targets differ), and
 * appends one JSON line per recipe to `<out>/sweep.jsonl`.
 *
 * Teachers are saved under `<out>/teachers/` and reused by later runs; so are
 * the labels-only students' results (several temperatures share one).
 *
 * Run: `npx tsx examples/mnist/sweep.ts --seed 0 --teacher 1200x1200:20:8000 --student 800x800:20:2000:T3:a0.1 [--student ...] [--out .tmp/mnist-sweep]`
 * - teacher `HIDDEN:EPOCHS:DIGITS`: hidden widths joined by `x`, its epochs, how many training digits it reads (a prefix of the 8,000);
 * - student `HIDDEN:EPOCHS:DIGITS:T<temperature>:a<alpha>`: both students read the same first DIGITS digits.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { cachedTeacher, pickTrainingBackend } from '../../src/index.js';
import { loadStudent, saveStudent } from '../../src/node/index.js';
import { toTensors } from '../shared/mnist.js';
import { EpochBatches, loadDemoData } from './data.js';
import { buildMlp, countMismatches, distill, predictClasses, trainOnLabels, type EpochPoint } from './train.js';

interface TeacherRecipe {
  hidden: number[];
  epochs: number;
  digits: number;
}

interface StudentRecipe extends TeacherRecipe {
  temperature: number;
  alpha: number;
}

const TEACHER_DROPOUT = { inputDropout: 0.2, dropout: 0.5 };
const SHIFT = 2;
const BATCH = 128;
const RATE = 1e-3;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: '0' },
      teacher: { type: 'string', default: '1200x1200:20:8000' },
      student: { type: 'string', multiple: true, default: [] },
      out: { type: 'string', default: '.tmp/mnist-sweep' },
    },
  });
  tf.env().set('PROD', true);
  await pickTrainingBackend({ prefer: ['wasm'] });
  await tf.ready();
  const seed = Number(values.seed);
  const out = values.out;
  await mkdir(path.join(out, 'teachers'), { recursive: true });
  const teacherRecipe = parseTeacher(values.teacher);
  const split = loadDemoData({ seed });
  const test = toTensors(split.test);
  const scoreOn = { x: test.x, labels: split.test.labels };
  const limited = (digits: number) => loadDemoData({ seed, trainLimit: digits }).train;
  const batches = (digits: number, options: { oneHot: boolean; maxShift: number; ids?: boolean }) =>
    new EpochBatches(limited(digits), { batchSize: BATCH, seed: `${seed}/batches`, ...options });

  // The teacher: trained once per (seed, recipe), then reloaded.
  const teacherKey = `s${seed}-${values.teacher.replace(/:/g, '-')}`;
  const teacherDir = path.join(out, 'teachers', teacherKey);
  let teacher;
  let teacherInfo: { testErrors: number; cpuSeconds: number; wallSeconds: number };
  if (existsSync(path.join(teacherDir, 'info.json'))) {
    teacher = await loadStudent(teacherDir);
    teacherInfo = JSON.parse(await readFile(path.join(teacherDir, 'info.json'), 'utf8'));
    console.log(`teacher ${teacherKey}: reloaded, ${teacherInfo.testErrors} test errors`);
  } else {
    teacher = buildMlp({ hidden: teacherRecipe.hidden, ...TEACHER_DROPOUT }, `${seed}/teacher`);
    const clock = startClock();
    const run = await trainOnLabels(teacher, batches(teacherRecipe.digits, { oneHot: true, maxShift: SHIFT }), {
      epochs: teacherRecipe.epochs,
      learningRate: RATE,
      seed: `${seed}/teacher`,
      test: scoreOn,
    });
    const time = clock();
    teacherInfo = { testErrors: last(run.curve), ...time };
    await saveStudent(teacher, teacherDir);
    await writeFile(path.join(teacherDir, 'info.json'), JSON.stringify({ ...teacherInfo, curve: run.curve }));
    console.log(`teacher ${teacherKey}: ${teacherInfo.testErrors} test errors, ${time.cpuSeconds.toFixed(0)} s CPU, ${time.wallSeconds.toFixed(0)} s wall`);
  }
  const teacherErrors = countMismatches(await predictClasses(teacher, test.x), split.test.labels);

  for (const text of values.student) {
    const recipe = parseStudent(text);
    const studentSeed = `${seed}/s${recipe.hidden.join('x')}`;
    const labelsKey = `s${seed}-${recipe.hidden.join('x')}-${recipe.epochs}-${recipe.digits}`;
    const labelsFile = path.join(out, 'labels', `${labelsKey}.json`);
    let labels: { testErrors: number; cpuSeconds: number; wallSeconds: number; curve: EpochPoint[] };
    if (existsSync(labelsFile)) {
      labels = JSON.parse(await readFile(labelsFile, 'utf8'));
    } else {
      const student = buildMlp({ hidden: recipe.hidden }, studentSeed);
      const clock = startClock();
      const run = await trainOnLabels(student, batches(recipe.digits, { oneHot: true, maxShift: 0 }), {
        epochs: recipe.epochs,
        learningRate: RATE,
        seed: studentSeed,
        test: scoreOn,
      });
      labels = { testErrors: last(run.curve), ...clock(), curve: run.curve };
      await mkdir(path.dirname(labelsFile), { recursive: true });
      await writeFile(labelsFile, JSON.stringify(labels));
      student.dispose();
    }
    const student = buildMlp({ hidden: recipe.hidden }, studentSeed);
    const clock = startClock();
    const run = await distill(cachedTeacher(teacher), student, batches(recipe.digits, { oneHot: false, maxShift: 0, ids: true }), {
      epochs: recipe.epochs,
      learningRate: RATE,
      seed: studentSeed,
      test: scoreOn,
      temperature: recipe.temperature,
      alpha: recipe.alpha,
    });
    const time = clock();
    student.dispose();
    const result = {
      seed,
      teacher: values.teacher,
      teacherErrors,
      student: text,
      labelsErrors: labels.testErrors,
      distilledErrors: last(run.curve),
      ratio: last(run.curve) / labels.testErrors,
      labelsCpu: labels.cpuSeconds,
      distilledCpu: time.cpuSeconds,
      teacherCpu: teacherInfo.cpuSeconds,
      labelsCurve: labels.curve.map((p) => p.testErrors),
      distilledCurve: run.curve.map((p) => p.testErrors),
    };
    console.log(
      `seed ${seed} teacher ${values.teacher} (${teacherErrors}) student ${text}: labels ${labels.testErrors}, distilled ${result.distilledErrors} ` +
        `(${(result.ratio * 100).toFixed(0)} %); CPU ${labels.cpuSeconds.toFixed(0)} + ${time.cpuSeconds.toFixed(0)} s`,
    );
    await appendFile(path.join(out, 'sweep.jsonl'), `${JSON.stringify(result)}\n`);
  }
  teacher.dispose();
  tf.dispose([test.x, test.y]);
}

function parseTeacher(text: string): TeacherRecipe {
  const [hidden, epochs, digits] = text.split(':');
  return { hidden: hidden!.split('x').map(Number), epochs: Number(epochs), digits: Number(digits) };
}

function parseStudent(text: string): StudentRecipe {
  const parts = text.split(':');
  const base = parseTeacher(parts.slice(0, 3).join(':'));
  return { ...base, temperature: Number(parts[3]!.slice(1)), alpha: Number(parts[4]!.slice(1)) };
}

function last(curve: EpochPoint[]): number {
  return curve[curve.length - 1]!.testErrors;
}

/** Process CPU (user + system) and wall seconds since the call, when the returned function is called. */
function startClock(): () => { cpuSeconds: number; wallSeconds: number } {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    return { cpuSeconds: (used.user + used.system) / 1e6, wallSeconds: (performance.now() - wall) / 1000 };
  };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
