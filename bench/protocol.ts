/**
 * What bench/run.ts and its child processes (bench/child.ts) share: the
 * settings, the configurations and the JSON a child prints. The parent loads
 * no tfjs backend: only the children do, one configuration each.
 */
import { fileURLToPath } from 'node:url';
import type { ModelName } from './models.js';

/** Every setting, in one place. */
export const SETTINGS = {
  /** `--runs`: timed runs per figure (at least 5). */
  runs: 5,
  /** Untimed steps before timing (V8 tiers wasm up, the heap faults in, XNNPACK packs weights). */
  warmupSteps: 2,
  /** A timed run repeats steps until it has lasted this long (at least one step). */
  minRunSeconds: 0.5,
  /**
   * Without --cpu-bilstm, the cpu BiLSTM is not timed: its Embedding gradient
   * (tfjs-backend-cpu's UnsortedSegmentSum) loops over every vocabulary id.
   * That kernel alone is timed on this many ids and extrapolated instead.
   */
  cpuEmbeddingProbeIds: 100,
  /** The Distiller comparison: batches per epoch. */
  distillerBatches: 20,
  /**
   * The Distiller comparison's timed epochs of each loop: `4 · runs + 1`, or
   * `runs` with --quick. The goal (≤ 3 % overhead) is finer than the noise of
   * one epoch on a shared machine, hence many.
   */
  distillerRounds: (runs: number, quick: boolean) => (quick ? runs : 4 * runs + 1),
  python: '/usr/bin/python3',
  torchScript: fileURLToPath(new URL('./reference/kd_step.py', import.meta.url)),
} as const;

export const CONFIGS = ['cpu', 'wasm', 'wasm+kd', 'wasm+kd+fastLSTM'] as const;
export type ConfigName = (typeof CONFIGS)[number];

/** Marks the line of a child's stdout that carries its JSON result. */
export const RESULT_MARKER = '@@kd-bench-result ';

export interface ModelResult {
  model: ModelName;
  /** samples/s of each timed run (wall clock). */
  rates?: number[];
  /** Samples per second of the process's CPU time (user + system), each timed run. */
  cpuRates?: number[];
  /** Steps per timed run (min and max over runs). */
  steps?: [number, number];
  /** Tensors alive after the timed runs minus before: should be 0. */
  tensorsLeaked?: number;
  /** The first words of the error the step threw. */
  error?: string;
  /** Why the model was not timed, for the table cell. */
  skipped?: string;
}

export interface ConfigResult {
  config: ConfigName;
  backend: string;
  simd?: boolean;
  threads?: number;
  results: ModelResult[];
}

export interface DistillerResult {
  /** Wall-clock time of each timed epoch. */
  distillerMs: number[];
  handMs: number[];
  /** CPU time of the process (user + system) over each timed epoch: less sensitive to other processes' load. */
  distillerCpuMs: number[];
  handCpuMs: number[];
  tensorsLeaked: { distiller: number; hand: number };
}

export interface TorchResult {
  torch: string;
  threads: number;
  blas: string;
  results: {
    model: ModelName;
    samples_per_s: number;
    runs: number[];
    /** Per CPU-second of the process; absent from older copies of kd_step.py. */
    cpu_samples_per_s?: number;
    cpu_runs?: number[];
  }[];
}

export interface Options {
  runs: number;
  quick: boolean;
  models: ModelName[];
  configs: ConfigName[];
  torch: boolean;
  /** Time the BiLSTM on cpu too (about a quarter of an hour per step). */
  cpuBilstm: boolean;
}

/** The first words of an error, for a table cell. */
export function firstWords(error: unknown, words = 8): string {
  const message = error instanceof Error ? error.message : String(error);
  const kernel = /Kernel '(\w+)' not registered for backend '(\w+)'/.exec(message);
  if (kernel !== null) return `${kernel[1]} not registered`;
  const all = message.replace(/\s+/g, ' ').trim().split(' ');
  return all.slice(0, words).join(' ') + (all.length > words ? '…' : '');
}

