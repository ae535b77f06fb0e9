/**
 * MNIST distillation demo (`npm run demo`): a 2×1200 teacher on 8,000 digits,
 * a 2×800 student trained on the labels of 2,000 of them alone, and the same
 * student distilled, on the `mnist` package's digits (seeded, class-balanced
 * 8,000/2,000 split). Prints
 * a compression table (parameters, saved size, test errors, agreement,
 * inference time, each against the teacher) and writes a report with
 * learning curves.
 *
 * Run:
 * - `npx tsx examples/mnist/main.ts` (about 4 minutes of one core, wasm; see README.md);
 * - `... --quick`: 1,000 training digits, tiny models, 2 epochs: a smoke test (seconds);
 * - `... --full`: Hinton et al.'s recipe, 40 epochs, 3 seeds, many students (about an hour).
 * Flags: `--out DIR` (default `.tmp/mnist-report`, or `.tmp/mnist-full` with `--full`),
 * `--seed N`, `--epochs N` (students), `--teacher-epochs N`, `--student-hidden 800,800`, `--student-digits N`, `--temperature T`, `--alpha A` (default run);
 * `--seeds 0,1,2`, `--epochs 40` and `--only KEY,KEY` (`--full`: only those models, e.g. `s800-kd-no3`; the teacher always trains), `--full --summarize`
 * (only summarize the seed files already in the out folder, e.g. while seeds run in separate processes),
 * `--full --checkpoint DIR` (a killed run, started again with the same flags, resumes: checkpoint.ts),
 * `--backend wasm|cpu` (default wasm).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// In Node the wasm backend loads its .wasm binary from its own dist/ folder: no network.
import '@tensorflow/tfjs-backend-wasm';
import { pickTrainingBackend } from '../../src/index.js';
import { DEFAULT_DEMO, QUICK_DEMO, runDemo } from './demo.js';
import { FULL_RECIPE, runFull, summarizeFull } from './full.js';

const USAGE =
  'usage: npx tsx examples/mnist/main.ts [--quick | --full [--seeds 0,1,2] [--epochs 40] [--summarize] [--checkpoint DIR]] [--seed 0] [--epochs N] [--teacher-epochs N] [--student-hidden 800,800] [--student-digits N] [--temperature T] [--alpha A] [--out DIR] [--backend wasm|cpu]';

class UsageError extends Error {}

async function main(): Promise<void> {
  const flags = readFlags();
  // PROD silences the "use tfjs-node" banner (IS_TEST would also turn on a
  // per-kernel leak check that throws on the wasm backend's fused matmul).
  tf.env().set('PROD', true);
  // On wasm, kd-ts adds fast matrix products and the kernels stock wasm lacks for training.
  const choice = await pickTrainingBackend({ prefer: [flags.backend] });
  console.log(choice.reasons.join('\n'));
  await tf.ready();
  const log = (line: string) => console.log(line);
  if (flags.full) {
    const settings = {
      ...FULL_RECIPE,
      seeds: flags.seeds ?? FULL_RECIPE.seeds,
      epochs: flags.epochs ?? FULL_RECIPE.epochs,
      teacherEpochs: flags.teacherEpochs ?? FULL_RECIPE.teacherEpochs,
      only: flags.only ?? FULL_RECIPE.only,
      ...(flags.checkpoint === undefined ? {} : { checkpoint: flags.checkpoint }),
    };
    const outDir = flags.out ?? '.tmp/mnist-full';
    await (flags.summarize ? summarizeFull(settings, outDir, log) : runFull(settings, outDir, log));
  } else {
    const base = flags.quick ? QUICK_DEMO : DEFAULT_DEMO;
    const settings = {
      ...base,
      seed: flags.seed ?? base.seed,
      studentEpochs: flags.epochs ?? base.studentEpochs,
      teacherEpochs: flags.teacherEpochs ?? base.teacherEpochs,
      student: flags.studentHidden === undefined ? base.student : { hidden: flags.studentHidden },
      studentDigits: flags.studentDigits ?? base.studentDigits,
      temperature: flags.temperature ?? base.temperature,
      alpha: flags.alpha ?? base.alpha,
    };
    await runDemo(settings, flags.out ?? '.tmp/mnist-report', log);
  }
}

interface Flags {
  quick: boolean;
  full: boolean;
  summarize: boolean;
  out?: string;
  seed?: number;
  seeds?: number[];
  only?: string[];
  /** `--full --checkpoint DIR`: resume a killed run (examples/mnist/checkpoint.ts). */
  checkpoint?: string;
  epochs?: number;
  teacherEpochs?: number;
  studentHidden?: number[];
  studentDigits?: number;
  temperature?: number;
  alpha?: number;
  backend: 'wasm' | 'cpu';
}

function readFlags(): Flags {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        full: { type: 'boolean', default: false },
        summarize: { type: 'boolean', default: false },
        out: { type: 'string' },
        seed: { type: 'string' },
        seeds: { type: 'string' },
        only: { type: 'string' },
        checkpoint: { type: 'string' },
        epochs: { type: 'string' },
        'teacher-epochs': { type: 'string' },
        'student-hidden': { type: 'string' },
        'student-digits': { type: 'string' },
        temperature: { type: 'string' },
        alpha: { type: 'string' },
        backend: { type: 'string', default: 'wasm' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values.quick && values.full) throw new UsageError('--quick and --full exclude each other');
  if (values.summarize && !values.full) throw new UsageError('--summarize goes with --full');
  if (values.only !== undefined && !values.full) throw new UsageError('--only goes with --full');
  if (values.checkpoint !== undefined && (!values.full || values.summarize)) throw new UsageError('--checkpoint goes with --full (training runs)');
  if (values.backend !== 'wasm' && values.backend !== 'cpu') throw new UsageError(`--backend must be wasm or cpu, got ${values.backend}`);
  const integer = (name: string, text: string | undefined, min: number) => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${text}`);
    return value;
  };
  const real = (name: string, text: string | undefined, valid: (value: number) => boolean) => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value) || !valid(value)) throw new UsageError(`--${name} is out of range: ${text}`);
    return value;
  };
  return {
    quick: values.quick,
    full: values.full,
    summarize: values.summarize,
    out: values.out,
    seed: integer('seed', values.seed, 0),
    seeds: values.seeds?.split(',').map((s) => integer('seeds', s, 0)!),
    only: values.only?.split(',').map((key) => key.trim()),
    checkpoint: values.checkpoint,
    epochs: integer('epochs', values.epochs, 1),
    teacherEpochs: integer('teacher-epochs', values['teacher-epochs'], 1),
    studentHidden: values['student-hidden']?.split(',').map((s) => integer('student-hidden', s, 1)!),
    studentDigits: integer('student-digits', values['student-digits'], 1),
    temperature: real('temperature', values.temperature, (v) => v > 0),
    alpha: real('alpha', values.alpha, (v) => v >= 0 && v <= 1),
    backend: values.backend,
  };
}

// The wasm module rethrows uncaught errors after printing its whole minified
// source: report errors here instead.
main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
  else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
