/**
 * Throughput of one knowledge-distillation training step in kd-ts, per
 * student and backend configuration, next to PyTorch on the same machine;
 * then the {@link Distiller}'s overhead over a hand-written loop.
 *
 * Run: `npx tsx bench/run.ts [--runs 5] [--quick] [--models mlp,bilstm,conv]
 *       [--configs cpu,wasm,wasm+kd,wasm+kd+fastLSTM] [--no-torch] [--cpu-bilstm]
 *       [--parallel]`
 *
 * (`npm run bench` runs it with the defaults; docs/benchmarks.md explains the
 * output.) --quick skips the BiLSTM on cpu. Without --cpu-bilstm, the BiLSTM
 * on cpu is not timed either (a step takes about a quarter of an hour there,
 * nearly all in the Embedding gradient): that gradient's kernel is timed on a
 * slice of the vocabulary and extrapolated, and the table says so.
 *
 * Table 1: samples/s of `createTrainStep` (student forward + backward + Adam,
 * one value read per step) at batch 128, teacher logits fixed and random as
 * in bench/reference/kd_step.py. Every configuration runs in its own child
 * process, so kernel registrations (`enableWasmTraining()`) never leak from
 * one to the next. Each figure is the median of `--runs` timed runs after
 * warm-up; a run repeats steps until it has lasted `minRunSeconds`.
 *
 * Table 2: `Distiller.fit` against a hand-written loop doing the same work
 * (MLP, wasm+kd), epochs alternating between the two so that load from
 * other processes falls on both.
 *
 * Table 3 (`--parallel`, a few minutes more): data-parallel training on
 * worker threads, 1 process against 1, 2 and all-core pools, from
 * bench/parallel.ts with short settings (`npm run bench:parallel` runs it
 * alone, with its options). Without the flag, the output says how to get it.
 *
 * Shared machines are noisy: compare ratios within one run, not absolute
 * figures across runs; the load average before and after is printed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable, loadAverage, machine, median } from './util.js';
import { MODEL_NAMES, MODEL_SETTINGS, type ModelName } from './models.js';
import {
  CONFIGS,
  firstWords,
  RESULT_MARKER,
  SETTINGS,
  type ConfigName,
  type ConfigResult,
  type DistillerResult,
  type Options,
  type TorchResult,
} from './protocol.js';

/** What each configuration means, for the notes under the table. */
const CONFIG_NOTES: Record<ConfigName, string> = {
  cpu: "tfjs's cpu backend (JavaScript, one thread), stock",
  wasm: "tfjs's wasm backend (SIMD, one thread), stock",
  'wasm+kd': 'wasm after kd-ts `enableWasmTraining()` (training kernels + fast matMul); BiLSTM with tfjs-layers LSTM',
  'wasm+kd+fastLSTM': 'as wasm+kd, BiLSTM with kd-ts `bidirectionalFastLstm` (MLP and Conv are the wasm+kd models: not repeated)',
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      models: { type: 'string' },
      configs: { type: 'string' },
      'no-torch': { type: 'boolean', default: false },
      'cpu-bilstm': { type: 'boolean', default: false },
      parallel: { type: 'boolean', default: false },
      child: { type: 'string' },
    },
  });
  const options: Options = {
    runs: Math.max(5, Number(values.runs ?? SETTINGS.runs) || SETTINGS.runs),
    quick: values.quick ?? false,
    models: pickList(values.models, MODEL_NAMES, '--models'),
    configs: pickList(values.configs, CONFIGS, '--configs'),
    torch: !(values['no-torch'] ?? false),
    cpuBilstm: values['cpu-bilstm'] ?? false,
  };
  if (values.child !== undefined) {
    const { runChild } = await import('./child.js');
    const result = await runChild(values.child, options);
    process.stdout.write(`\n${RESULT_MARKER}${JSON.stringify(result)}\n`);
    return;
  }
  await runParent(options);
  console.log(values.parallel ? `\n${parallelTable(options)}` : `\n${PARALLEL_POINTER}`);
}

const PARALLEL_POINTER =
  'Table 3, data-parallel training on worker threads (a few minutes more): `npm run bench -- --parallel`, ' +
  'or `npm run bench:parallel` alone (bench/parallel.ts; docs/parallel.md reads it).';

/** Table 3: bench/parallel.ts with short settings, in its own process; its markdown output, or why not. */
function parallelTable(options: Options): string {
  progress('data-parallel training (bench/parallel.ts)');
  const args = ['--runs', '3', '--rounds', '1', '--models', options.models.join(','), '--no-split', ...(options.torch ? [] : ['--no-torch'])];
  const script = fileURLToPath(new URL('./parallel.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), script, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  const command = `npx tsx bench/parallel.ts ${args.join(' ')}`;
  if (child.status !== 0) return `Table 3 (data-parallel training): \`${command}\` failed (exit ${String(child.status)}).`;
  return [`Table 3: data-parallel training on worker threads (\`${command}\`)`, '', child.stdout.trim()].join('\n');
}

async function runParent(options: Options): Promise<void> {
  const started = new Date();
  const loadBefore = loadAverage();
  const torch = options.torch ? runTorch(options.runs) : { error: 'skipped (--no-torch)' };

  const configs: ConfigResult[] = [];
  for (const config of options.configs) {
    const models = options.models.filter((m) => config !== 'wasm+kd+fastLSTM' || m === 'bilstm');
    const timed = models.filter((m) => !(options.quick && config === 'cpu' && m === 'bilstm'));
    progress(`${config}: ${timed.join(', ') || 'nothing to run'}`);
    const result: ConfigResult =
      timed.length === 0
        ? { config, backend: '', results: [] }
        : await runChildProcess<ConfigResult>(config, timed, options).catch((error: unknown) => ({
            config,
            backend: '',
            results: timed.map((model) => ({ model, error: `child process failed: ${firstWords(error)}` })),
          }));
    for (const model of models.filter((m) => !timed.includes(m))) {
      result.results.push({ model, skipped: 'skipped (--quick: too slow)' });
    }
    configs.push(result);
  }

  // The Distiller comparison trains the MLP on wasm+kd: it runs when both are selected.
  let distiller: DistillerResult | Error | undefined;
  if (options.models.includes('mlp') && options.configs.includes('wasm+kd')) {
    progress('Distiller vs hand-written loop (mlp, wasm+kd)');
    distiller = await runChildProcess<DistillerResult>('distiller', ['mlp'], options).catch(
      (error: unknown) => new Error(firstWords(error)),
    );
  }
  const loadAfter = loadAverage();

  const versions = await libraryVersions();
  const wasmInfo = configs.find((c) => c.simd !== undefined);
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
      : `npx tsx bench/run.ts ${process.argv.slice(2).join(' ')}`.trim();
  const lines = [
    `kd-ts: one KD training step, batch ${MODEL_SETTINGS.batch} (samples/s, higher is better)`,
    '',
    `- date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- machine: ${machine()}; load average (1/5/15 min) before: ${loadBefore}, after: ${loadAfter}`,
    `- node ${process.version}; tfjs-core ${versions.core}, tfjs-layers ${versions.layers}, tfjs-backend-wasm ${versions.wasm}` +
      (wasmInfo === undefined ? '' : ` (SIMD ${wasmInfo.simd ? 'on' : 'off'}, ${wasmInfo.threads} thread)`),
    `- PyTorch: ${'error' in torch ? torch.error : `${torch.torch}, BLAS ${torch.blas}, ${torch.threads} thread`}`,
    `- command: ${command}`,
    '',
    stepTable(configs, torch),
    '',
    ...stepNotes(configs, options),
  ];
  if (distiller !== undefined) lines.push('', ...distillerSection(distiller, options));
  console.log(lines.join('\n'));
}

function stepTable(configs: ConfigResult[], torch: TorchResult | { error: string }): string {
  const rows: string[][] = [];
  for (const model of MODEL_NAMES) {
    const pytorch = 'error' in torch ? undefined : torch.results.find((r) => r.model === model);
    for (const c of configs) {
      const r = c.results.find((x) => x.model === model);
      if (r === undefined) continue;
      if (r.rates === undefined) {
        rows.push([model, c.config, r.error ?? r.skipped ?? 'no result', '', '', '']);
        continue;
      }
      const value = median(r.rates);
      rows.push([
        model,
        c.config,
        formatRate(value),
        `${formatRate(Math.min(...r.rates))}–${formatRate(Math.max(...r.rates))}`,
        ratio(value, pytorch?.samples_per_s),
        ratio(r.cpuRates === undefined ? undefined : median(r.cpuRates), pytorch?.cpu_samples_per_s),
      ]);
    }
    if (pytorch !== undefined && rows.some((r) => r[0] === model)) {
      const { runs } = pytorch;
      const range = `${formatRate(Math.min(...runs))}–${formatRate(Math.max(...runs))}`;
      rows.push([model, 'PyTorch CPU (reference)', formatRate(pytorch.samples_per_s), range, '1×', pytorch.cpu_samples_per_s === undefined ? '—' : '1×']);
    }
  }
  return formatTable(['model', 'config', 'samples/s (median)', 'min–max', '× PyTorch', '× PyTorch (CPU time)'], rows);
}

/** "0.25×", or "—" without a reference. */
function ratio(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined) return '—';
  const r = value / reference;
  return `${r.toFixed(r < 0.1 ? 3 : 2)}×`;
}

function stepNotes(configs: ConfigResult[], options: Options): string[] {
  const notes = [
    `Median of ${options.runs} timed runs after ${SETTINGS.warmupSteps} warm-up steps; each run repeats steps for ≥ ${SETTINGS.minRunSeconds} s. ` +
      'Step: kd-ts `createTrainStep` (student forward + backward + Adam 1e-3, one value read per step); ' +
      'teacher logits fixed and random. PyTorch: bench/reference/kd_step.py in the same run, 1 thread. ' +
      '× PyTorch: ratio of the medians of samples/s (wall clock); (CPU time): the same with samples per second of ' +
      "each process's own CPU time, which other processes' load disturbs less.",
    'Students: mlp 784-800-800-10 (KL·T², T = 4); bilstm embedding 10000×100 → BiLSTM 150 (sigmoid gates) → ' +
      'Dense 200 relu → 2, 32 tokens (MSE on logits summed over classes); conv 3×3×16 → pool → 3×3×32 → pool → 10 (KL·T², T = 4).',
    ...configs.map((c) => `${c.config}: ${CONFIG_NOTES[c.config]}.`),
  ];
  if (configs.some((c) => c.results.some((r) => r.skipped?.startsWith('not timed')))) {
    notes.push(
      "bilstm on cpu: tfjs-backend-cpu's UnsortedSegmentSum (the Embedding gradient) runs one masked sum over the whole " +
        `[batch·tokens, 100] gradient per vocabulary id; timed on ${SETTINGS.cpuEmbeddingProbeIds} of the 10,000 ids and scaled up, ` +
        'the rest of the step not counted (a bound, not a measurement of the step). `--cpu-bilstm` times the whole step.',
    );
  }
  for (const c of configs) {
    for (const r of c.results) {
      if (r.tensorsLeaked !== undefined && r.tensorsLeaked !== 0) {
        notes.push(`Warning: ${r.model} on ${c.config} left ${r.tensorsLeaked} tensors alive over the timed runs (a leak).`);
      }
    }
  }
  return notes.map((n) => `- ${n}`);
}

function distillerSection(result: DistillerResult | Error, options: Options): string[] {
  const title = `Distiller.fit against a hand-written loop (mlp, wasm+kd, ${SETTINGS.distillerBatches} batches of ${MODEL_SETTINGS.batch} per epoch)`;
  if (result instanceof Error) return [title, '', `failed: ${result.message}`];
  const samples = SETTINGS.distillerBatches * MODEL_SETTINGS.batch;
  const ms = (values: number[]) => `${median(values).toFixed(0)} ms (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
  const row = (name: string, wall: number[], cpu: number[]) => [
    name,
    ms(wall),
    ms(cpu),
    formatRate((samples * 1000) / median(wall)),
  ];
  const ratios = (a: number[], b: number[]) => {
    const paired = a.map((v, i) => v / b[i]!);
    return (
      `${(median(a) / median(b)).toFixed(3)}× (ratio of medians); per round: median ${median(paired).toFixed(3)}×, ` +
      `${Math.min(...paired).toFixed(3)}–${Math.max(...paired).toFixed(3)}×`
    );
  };
  const leaks = Object.entries(result.tensorsLeaked).filter(([, n]) => n !== 0);
  return [
    title,
    '',
    formatTable(
      ['loop', 'epoch, wall clock: median (min–max)', 'epoch, CPU time: median (min–max)', 'samples/s (wall)'],
      [
        row('Distiller.fit (shuffle: false)', result.distillerMs, result.distillerCpuMs),
        row('hand-written loop', result.handMs, result.handCpuMs),
      ],
    ),
    '',
    `- Distiller / hand loop (goal ≤ 1.03×), wall clock: ${ratios(result.distillerMs, result.handMs)}.`,
    `- Same, CPU time of the process (less sensitive to other processes): ${ratios(result.distillerCpuMs, result.handCpuMs)}.`,
    `- ${result.distillerMs.length} epochs of each after one warm-up epoch each, alternating (ABBA) round by round` +
      `${options.quick ? ' (--quick)' : ''}. Both: the same data in memory, the batch taken per step ` +
      'with `tf.gather`, a Dense 784→10 LayersModel teacher run per batch in inference mode, ' +
      'KL·T² (T = 4), Adam 1e-3, one value read per batch (hand loop: `optimizer.minimize` then `await loss.data()`; ' +
      'Distiller: its step also computes agreement and NaN checks, read in the same read).',
    ...leaks.map(([name, n]) => `- Warning: the ${name} loop left ${n} tensors alive over the timed epochs (a leak).`),
  ];
}

/** Runs bench/reference/kd_step.py; an error line when python or torch is missing. */
function runTorch(runs: number): TorchResult | { error: string } {
  progress('PyTorch reference');
  const probe = spawnSync(SETTINGS.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    return { error: `not available (${SETTINGS.python} has no torch: install python3-torch and libopenblas0-pthread)` };
  }
  const run = spawnSync(SETTINGS.python, [SETTINGS.torchScript, '--runs', String(runs)], { encoding: 'utf8' });
  if (run.status !== 0) return { error: `kd_step.py failed: ${firstWords(run.stderr)}` };
  try {
    return JSON.parse(run.stdout.trim().split('\n').pop()!) as TorchResult;
  } catch {
    return { error: `kd_step.py printed no JSON: ${firstWords(run.stdout)}` };
  }
}

/** Runs this script as `--child what` in a fresh Node process and returns the JSON it prints. */
function runChildProcess<T>(what: string, models: ModelName[], options: Options): Promise<T> {
  const args = [
    '--import',
    import.meta.resolve('tsx'),
    fileURLToPath(import.meta.url),
    '--child',
    what,
    '--models',
    models.join(','),
    '--runs',
    String(options.runs),
    ...(options.quick ? ['--quick'] : []),
    ...(options.cpuBilstm ? ['--cpu-bilstm'] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (line === undefined) {
        reject(new Error(`exited with ${signal ?? code} without a result`));
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_MARKER.length)) as T);
    });
  });
}

async function libraryVersions(): Promise<{ core: string; layers: string; wasm: string }> {
  const read = async (name: string) => {
    const { readFile } = await import('node:fs/promises');
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(await readFile(url, 'utf8')) as { version: string }).version;
  };
  return {
    core: await read('@tensorflow/tfjs-core'),
    layers: await read('@tensorflow/tfjs-layers'),
    wasm: await read('@tensorflow/tfjs-backend-wasm'),
  };
}

function pickList<T extends string>(value: string | undefined, all: readonly T[], flag: string): T[] {
  if (value === undefined) return [...all];
  const picked = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = picked.filter((p) => !all.includes(p as T));
  if (unknown.length > 0) throw new Error(`${flag}: unknown ${unknown.join(', ')}; choose from ${all.join(', ')}`);
  return all.filter((a) => picked.includes(a));
}

/** "1,234" for rates above 100, else one decimal. */
function formatRate(rate: number): string {
  return rate >= 100 ? Math.round(rate).toLocaleString('en-US') : rate.toFixed(1);
}

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

await main();
