/**
 * Teacher cache benchmark: the time of one distillation epoch with the teacher
 * run online, served from a cache (`cachedTeacher` after its first epoch), and
 * with a zero-cost teacher (the student-only floor of the same loop).
 *
 * Teacher 784-1200-1200-10 (untrained: only its cost matters), student
 * 784-64-10, on the 8,000 training digits of `examples/shared/mnist.ts`, batch
 * 128, `Distiller.fitDataset` with `{ xs, ys, id }` elements, wasm with
 * `enableWasmTraining()`. After warm-up, the three loops take turns, one epoch
 * each per round, so that load changes on a shared machine hit all three alike.
 *
 * Run: `npx tsx bench/cache.ts [--rounds 7] [--batch 128]`.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import {
  Distiller,
  cachedTeacher,
  enableWasmTraining,
  seededRandom,
  withSeed,
  type DatasetLike,
  type DistillationBatch,
  type Teacher,
  type TeacherLike,
} from '../src/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, toTensors } from '../examples/shared/mnist.js';
import { formatTable, loadAverage, machine, median } from './util.js';

const TEACHER_HIDDEN = [1200, 1200];
const STUDENT_HIDDEN = [64];

interface Loop {
  name: string;
  distiller: Distiller;
  wall: number[];
  cpu: number[];
  calls?: () => number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, batch: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 7);
  const batchSize = Number(values.batch ?? 128);
  tf.env().set('PROD', true);
  const added = enableWasmTraining();
  await tf.setBackend('wasm');
  await tf.ready();
  const loadBefore = loadAverage();

  const split = loadMnistSplit({ seed: 0 });
  const train = toTensors(split.train);
  const teacherModel = withSeed('bench/teacher', () => mlp(TEACHER_HIDDEN));
  const studentFlops = flops(STUDENT_HIDDEN);
  const teacherFlops = flops(TEACHER_HIDDEN);

  const zeroCost: Teacher = { outputs: 'logits', predict: (x) => tf.zeros([(x as tf.Tensor).shape[0]!, MNIST_CLASSES]) };
  const cached = cachedTeacher(teacherModel);
  const make = (name: string, teacher: TeacherLike, calls?: () => number): Loop => {
    const student = withSeed('bench/student', () => mlp(STUDENT_HIDDEN));
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-3), temperature: 4, alpha: 0.1 });
    return { name, distiller, wall: [], cpu: [], ...(calls === undefined ? {} : { calls }) };
  };
  const loops = [
    make('teacher online', teacherModel),
    make('teacher from cache (cachedTeacher, after epoch 1)', cached, () => cached.teacherCalls),
    make('student only (zero-cost teacher)', zeroCost),
  ];
  const data = batches(train.x, train.y, split.train.ids, batchSize);
  const epoch = async (loop: Loop) => {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await loop.distiller.fitDataset(data, { epochs: 1 });
    return { wall: performance.now() - started, cpu: (() => { const u = process.cpuUsage(cpu); return (u.user + u.system) / 1000; })() };
  };

  // Warm-up: one epoch each; the cached loop's first epoch fills the cache (timed apart), then one more.
  const fill = await epoch(loops[1]!);
  for (const loop of loops) await epoch(loop);
  for (let r = 0; r < rounds; r++) {
    for (const loop of loops) {
      const t = await epoch(loop);
      loop.wall.push(t.wall);
      loop.cpu.push(t.cpu);
    }
  }

  const floor = loops[2]!;
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const rows = loops.map((loop) => [
    loop.name,
    `${ms(median(loop.wall))} (${Math.min(...loop.wall).toFixed(0)}–${Math.max(...loop.wall).toFixed(0)})`,
    `${ms(median(loop.cpu))} (${Math.min(...loop.cpu).toFixed(0)}–${Math.max(...loop.cpu).toFixed(0)})`,
    `${(median(loop.wall) / median(floor.wall)).toFixed(2)}×`,
    `${(median(loop.cpu) / median(floor.cpu)).toFixed(2)}×`,
    `${Math.round(split.train.size / (median(loop.wall) / 1000)).toLocaleString('en-US')}`,
  ]);
  // Per round, cached / student-only: the pairing removes most of the load drift.
  const paired = loops[1]!.wall.map((w, r) => w / floor.wall[r]!);
  const pairedCpu = loops[1]!.cpu.map((c, r) => c / floor.cpu[r]!);

  console.log(`- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`);
  console.log(`- machine: ${machine()}; load average (1/5/15 min) before: ${loadBefore}, after: ${loadAverage()}`);
  console.log(`- node ${process.version}; tfjs-core ${tf.version_core}, backend ${tf.getBackend()} with enableWasmTraining() (${added.filter((a) => a.includes('fast')).join(', ')})`);
  console.log(
    `- teacher ${arch(TEACHER_HIDDEN)}, ${teacherModel.countParams().toLocaleString('en-US')} parameters, ` +
      `${(teacherFlops / 1e6).toFixed(2)} MFLOP per example forward; student ${arch(STUDENT_HIDDEN)}, ` +
      `${(studentFlops / 1e6).toFixed(3)} MFLOP forward, about ${((3 * studentFlops) / 1e6).toFixed(2)} per training example ` +
      `(teacher forward / student forward = ${(teacherFlops / studentFlops).toFixed(0)}×, / student training ≈ ${(teacherFlops / (3 * studentFlops)).toFixed(0)}×)`,
  );
  console.log(`- ${split.train.size} examples per epoch, batch ${batchSize} (${Math.ceil(split.train.size / batchSize)} steps); medians of ${rounds} epochs after one warm-up epoch each, loops taking turns`);
  console.log(`- the cached loop's first epoch (the teacher runs and fills the cache): ${ms(fill.wall)} wall, ${ms(fill.cpu)} CPU; teacher calls after all epochs: ${cached.teacherCalls}`);
  console.log('- command: npx tsx bench/cache.ts' + (values.rounds || values.batch ? ` ${process.argv.slice(2).join(' ')}` : ''));
  console.log('');
  console.log(formatTable(['loop', 'epoch, wall: median (min–max)', 'epoch, CPU: median (min–max)', '× student only (wall)', '× student only (CPU)', 'examples/s (wall)'], rows));
  console.log('');
  console.log(
    `cached / student only, per round: wall median ${median(paired).toFixed(3)}× (${Math.min(...paired).toFixed(3)}–${Math.max(...paired).toFixed(3)}), ` +
      `CPU median ${median(pairedCpu).toFixed(3)}× (${Math.min(...pairedCpu).toFixed(3)}–${Math.max(...pairedCpu).toFixed(3)}); goal ≤ 1.1×`,
  );
  tf.dispose([train.x, train.y]);
}

/** `{ xs, ys, id }` batches over the rows, reshuffled every pass by one seeded generator per call of `iterator()`. */
function batches(x: tf.Tensor2D, y: tf.Tensor1D, ids: Int32Array, batchSize: number): DatasetLike<DistillationBatch> {
  let pass = 0;
  return {
    iterator: async () => {
      const random = seededRandom(`bench/${pass++}`);
      const order = Int32Array.from({ length: ids.length }, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      let start = 0;
      return {
        next: async (): Promise<IteratorResult<DistillationBatch>> => {
          if (start >= order.length) return { done: true, value: undefined };
          const picked = order.subarray(start, Math.min(start + batchSize, order.length));
          start += batchSize;
          const indices = tf.tensor1d(picked, 'int32');
          const value = { xs: tf.gather(x, indices), ys: tf.gather(y, indices), id: tf.tensor1d(Int32Array.from(picked, (r) => ids[r]!), 'int32') };
          indices.dispose();
          return { done: false, value };
        },
      };
    },
  };
}

function mlp(hidden: number[]): tfl.Sequential {
  const model = tfl.sequential();
  hidden.forEach((units, i) => model.add(tfl.layers.dense({ units, activation: 'relu', ...(i === 0 ? { inputShape: [MNIST_PIXELS] } : {}) })));
  model.add(tfl.layers.dense({ units: MNIST_CLASSES }));
  return model;
}

/** Multiply-adds × 2 of one example's forward pass. */
function flops(hidden: number[]): number {
  const widths = [MNIST_PIXELS, ...hidden, MNIST_CLASSES];
  let total = 0;
  for (let i = 1; i < widths.length; i++) total += 2 * widths[i - 1]! * widths[i]!;
  return total;
}

function arch(hidden: number[]): string {
  return [MNIST_PIXELS, ...hidden, MNIST_CLASSES].join('-');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
