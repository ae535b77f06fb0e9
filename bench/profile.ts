/**
 * Where one KD training step of a benchmark student spends its time, kernel
 * by kernel (`tf.profile`), to explain the figures of bench/run.ts.
 *
 * Run: `npx tsx bench/profile.ts [--model mlp|bilstm|conv] [--config cpu|wasm|wasm+kd|wasm+kd+fastLSTM] [--top 10]`
 *
 * One step after two warm-up steps. Profiling adds its own cost (every
 * kernel is timed separately), so read the shares, not the absolute times.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { createTrainStep, withSeed } from '../src/index.js';
import { enableWasmTraining } from '../src/backend/wasm.js';
import { benchCase, MODEL_NAMES, MODEL_SETTINGS, type ModelName } from './models.js';
import { CONFIGS, type ConfigName } from './protocol.js';
import { printTable } from './util.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: 'string', default: 'bilstm' }, config: { type: 'string', default: 'wasm+kd' }, top: { type: 'string', default: '10' } },
  });
  const model = values.model as ModelName;
  const config = values.config as ConfigName;
  if (!MODEL_NAMES.includes(model)) throw new Error(`--model: choose from ${MODEL_NAMES.join(', ')}`);
  if (!CONFIGS.includes(config)) throw new Error(`--config: choose from ${CONFIGS.join(', ')}`);

  tf.env().set('PROD', true); // silences the "use tfjs-node" banner
  if (config.startsWith('wasm+kd')) enableWasmTraining();
  if (!(await tf.setBackend(config === 'cpu' ? 'cpu' : 'wasm'))) throw new Error('could not start the backend');

  const c = withSeed(0, () => benchCase(model, config === 'wasm+kd+fastLSTM' ? 'fast' : 'tfjs'));
  const step = createTrainStep({
    student: c.student,
    optimizer: tf.train.adam(MODEL_SETTINGS.learningRate),
    temperature: c.temperature,
    kind: c.kind,
  });
  const batch = { inputs: c.inputs, teacherLogits: c.teacherLogits };
  for (let i = 0; i < 2; i++) await step(batch);

  const started = performance.now();
  // tf.profile awaits the function's promise; the step's logs are plain numbers, not tensors.
  const info = await tf.profile(async () => {
    await step(batch);
    return [];
  });
  const stepMs = performance.now() - started;

  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const kernel of info.kernels) {
    const entry = byKernel.get(kernel.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(kernel.kernelTimeMs);
    entry.calls++;
    byKernel.set(kernel.name, entry);
  }
  const totalMs = [...byKernel.values()].reduce((sum, e) => sum + e.ms, 0);
  console.log(
    `${model} on ${config}: one step ${stepMs.toFixed(0)} ms under the profiler, ${info.kernels.length} kernel calls, ` +
      `${totalMs.toFixed(0)} ms in kernels (nested kernels count twice: a kernel that calls others, e.g. a custom op, includes them)\n`,
  );
  const rows = [...byKernel]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, Number(values.top))
    .map(([name, e]) => [name, String(e.calls), e.ms.toFixed(1), `${((100 * e.ms) / totalMs).toFixed(0)} %`]);
  printTable(['kernel', 'calls', 'ms', 'share of kernel time'], rows);
}

await main();
