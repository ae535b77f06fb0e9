/**
 * Matrix products and one KD training step on tfjs's wasm backend, with the
 * stock kernels and with `registerWasmFastMatMul()`.
 *
 * Run: `npx tsx bench/matmul.ts [--runs 7] [--steps 3]`
 *
 * Each figure is the median of `--runs` timed runs after warm-up (the first
 * products in a process are several times slower: V8 tiers the wasm code up
 * and the VM faults the wasm heap in, see the notes in src/backend/kernels/wasm/matMulProducts.ts).
 * Stock and fast runs alternate, round by round, so that load from other
 * processes falls on both. Shared machines are noisy: compare the ratios
 * within one run, not absolute figures across runs.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
// In Node the wasm backend loads its .wasm binary from its own dist/ folder.
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { distillationLoss, withSeed } from '../src/index.js';
import { registerWasmFastMatMul, unregisterWasmFastMatMul } from '../src/backend/wasmFastMatMul.js';
import { machine, median, printTable } from './util.js';

/** Every setting, in one place. */
const SETTINGS = {
  /** `--runs`: timed runs per figure (the median is reported). */
  runs: 7,
  /** `--steps`: training steps per timed run of the KD step. */
  steps: 3,
  batch: 128,
  student: [784, 800, 800, 10],
  teacher: [784, 1200, 1200, 10],
  temperature: 4,
  learningRate: 1e-3,
  /** XNNPACK's single-thread ceiling on this kind of machine (shared/notes/wasm-training-perf.md). */
  xnnpackGflops: 30,
};

type Variant = 'stock' | 'fast';

interface Case {
  name: string;
  /** Floating-point operations of one call (2 per multiply-add), for GFLOP/s. */
  flops: number;
  /** Samples per call, for samples/s; absent for single products. */
  samples?: number;
  run: () => void;
  /** Warm-up calls per variant before timing. */
  warmup: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, steps: { type: 'string' } } });
  const runs = Math.max(5, Number(values.runs ?? SETTINGS.runs));
  const steps = Math.max(1, Number(values.steps ?? SETTINGS.steps));

  tf.env().set('PROD', true); // silences the "use tfjs-node" banner
  if (!(await tf.setBackend('wasm'))) throw new Error('could not start the wasm backend');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  console.log(
    `backend ${tf.getBackend()} (tfjs ${tf.version_core}, SIMD ${simd ? 'on' : 'off'}, ${getThreadsCount()} thread); ` +
      `machine: ${machine()} (shared, noisy); node ${process.version}`,
  );
  console.log(`median of ${runs} runs after warm-up; stock and fast alternate round by round\n`);

  const cases = [...productCases(), kdStepCase(steps, false), kdStepCase(steps, true)];
  const timings = new Map<string, Record<Variant, number[]>>();
  for (const c of cases) {
    for (const variant of ['stock', 'fast'] as const) {
      use(variant);
      for (let i = 0; i < c.warmup; i++) c.run();
    }
  }
  for (let round = 0; round < runs; round++) {
    for (const c of cases) {
      for (const variant of ['stock', 'fast'] as const) {
        use(variant);
        const started = performance.now();
        c.run();
        const ms = performance.now() - started;
        const entry = timings.get(c.name) ?? { stock: [], fast: [] };
        entry[variant].push(ms);
        timings.set(c.name, entry);
      }
    }
  }
  unregisterWasmFastMatMul();

  const rows = cases.map((c) => {
    const t = timings.get(c.name)!;
    const stock = median(t.stock);
    const fast = median(t.fast);
    const rate = (ms: number) =>
      c.samples === undefined ? `${gflops(c.flops, ms)} GFLOP/s` : `${Math.round((c.samples * 1000) / ms)} samples/s, ${gflops(c.flops, ms)} GFLOP/s`;
    return [c.name, `${stock.toFixed(2)} ms (${rate(stock)})`, `${fast.toFixed(2)} ms (${rate(fast)})`, `${(stock / fast).toFixed(1)}×`];
  });
  printTable(['case', 'stock wasm', 'fast (registerWasmFastMatMul)', 'speed-up'], rows);
  console.log(
    `\nGFLOP/s counts 2 flops per multiply-add of the matrix products only (a training step also runs ` +
      `elementwise kernels and Adam); XNNPACK's single-thread ceiling here is about ${SETTINGS.xnnpackGflops} GFLOP/s.`,
  );
  console.log(
    `KD step: student ${SETTINGS.student.join('-')} (Dense, relu; logits), batch ${SETTINGS.batch}, ` +
      `distillationLoss (KL × T², T = ${SETTINGS.temperature}), Adam ${SETTINGS.learningRate}, optimizer.minimize; ` +
      `${steps} steps per run. "teacher cached": teacher logits computed once; "with teacher": ` +
      `a ${SETTINGS.teacher.join('-')} teacher's forward pass in every step.`,
  );
}

/** The products of a Dense layer 784→800 at batch 128: forward and both gradients. */
function productCases(): Case[] {
  const [batch, inputs, units] = [SETTINGS.batch, SETTINGS.student[0]!, SETTINGS.student[1]!];
  const x = tf.randomNormal([batch, inputs], 0, 1, 'float32', 1);
  const w = tf.randomNormal([inputs, units], 0, 0.05, 'float32', 2);
  const dy = tf.randomNormal([batch, units], 0, 1, 'float32', 3);
  const flops = 2 * batch * inputs * units;
  const product = (f: () => tf.Tensor) => () => tf.dispose(tf.tidy(f));
  return [
    { name: `x·W  ${batch}×${inputs}·${inputs}×${units} (same W)`, flops, warmup: 3, run: product(() => tf.matMul(x, w)) },
    {
      // A new W every call, as after every optimizer step: XNNPACK packs it again.
      name: `x·W  with a new W each call`,
      flops,
      warmup: 3,
      run: product(() => tf.matMul(x, tf.add(w, 0))),
    },
    { name: `xᵀ·dy (weight gradient)`, flops, warmup: 3, run: product(() => tf.matMul(x, dy, true, false)) },
    { name: `dy·Wᵀ (input gradient)`, flops, warmup: 3, run: product(() => tf.matMul(dy, w, false, true)) },
    {
      // What the fast kernel would do without flipping the product: transpose W, then multiply.
      name: `dy·Wᵀ as dy·transpose(W)`,
      flops,
      warmup: 3,
      run: product(() => tf.matMul(dy, tf.transpose(w))),
    },
  ];
}

/** One KD training step of the student, as a timed case. */
function kdStepCase(steps: number, withTeacher: boolean): Case {
  const { batch, student: studentSizes, teacher: teacherSizes } = SETTINGS;
  const student = withSeed(0, () => mlp(studentSizes));
  const teacher = withSeed(1, () => mlp(teacherSizes));
  const x = tf.randomUniform([batch, studentSizes[0]!], 0, 1, 'float32', 4);
  const cachedTeacherLogits = teacher.predict(x) as tf.Tensor;
  const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
  // One optimizer per variant: Adam's moments must not mix stock and fast steps.
  const optimizers: Record<Variant, tf.Optimizer> = {
    stock: tf.train.adam(SETTINGS.learningRate),
    fast: tf.train.adam(SETTINGS.learningRate),
  };
  const step = () => {
    const optimizer = optimizers[currentVariant];
    const teacherLogits = withTeacher ? (teacher.predict(x) as tf.Tensor) : cachedTeacherLogits;
    const loss = optimizer.minimize(
      () => distillationLoss(student.apply(x) as tf.Tensor, teacherLogits, { temperature: SETTINGS.temperature, validate: false }),
      true,
      variables,
    );
    if (loss !== null) loss.dispose();
    if (withTeacher) teacherLogits.dispose();
  };
  const matMulFlops = (sizes: number[]) => sizes.slice(1).reduce((sum, units, i) => sum + 2 * batch * sizes[i]! * units, 0);
  // Forward, then two products per layer backward, less the input gradient of the first layer (x is data).
  const studentFlops = 3 * matMulFlops(studentSizes) - 2 * batch * studentSizes[0]! * studentSizes[1]!;
  return {
    name: withTeacher ? 'KD step, with teacher' : 'KD step, teacher cached',
    flops: steps * (studentFlops + (withTeacher ? matMulFlops(teacherSizes) : 0)),
    samples: steps * batch,
    warmup: 2,
    run: () => {
      for (let i = 0; i < steps; i++) step();
    },
  };
}

function mlp(sizes: number[]): tfl.LayersModel {
  const layers = sizes.slice(1).map((units, i) =>
    tfl.layers.dense({
      units,
      activation: i === sizes.length - 2 ? 'linear' : 'relu',
      ...(i === 0 ? { inputShape: [sizes[0]!] } : {}),
    }),
  );
  return tfl.sequential({ layers });
}

let currentVariant: Variant = 'stock';

function use(variant: Variant): void {
  currentVariant = variant;
  if (variant === 'fast') registerWasmFastMatMul();
  else unregisterWasmFastMatMul();
}

function gflops(flops: number, ms: number): string {
  return (flops / ms / 1e6).toFixed(1);
}

await main();
