/**
 * What one child process of bench/run.ts measures: one backend
 * configuration's training steps, or the Distiller comparison. Kept apart
 * from bench/run.ts so that the parent process never loads a tfjs backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
// In Node the wasm backend loads its .wasm binary from its own dist/ folder.
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createTrainStep, distillationLoss, Distiller, withSeed } from '../src/index.js';
import { enableWasmTraining } from '../src/backend/wasm.js';
import { benchCase, MODEL_SETTINGS, mlp, type ModelName } from './models.js';
import { firstWords, SETTINGS, type ConfigName, type ConfigResult, type DistillerResult, type ModelResult, type Options } from './protocol.js';

/** Runs `what` (a configuration name, or `'distiller'`) and returns its JSON-able result. */
export async function runChild(what: string, options: Options): Promise<ConfigResult | DistillerResult> {
  tf.env().set('PROD', true); // silences the "use tfjs-node" banner
  if (what === 'distiller') {
    await useConfig('wasm+kd');
    return compareDistiller(options);
  }
  const config = what as ConfigName;
  await useConfig(config);
  const result: ConfigResult = { config, backend: tf.getBackend(), results: [] };
  if (config !== 'cpu') {
    result.simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
    result.threads = getThreadsCount();
  }
  for (const model of options.models) {
    const slow = config === 'cpu' && model === 'bilstm' && !options.cpuBilstm;
    result.results.push(
      slow ? await estimateCpuBiLstm() : await measureStep(model, config === 'wasm+kd+fastLSTM' ? 'fast' : 'tfjs', options.runs),
    );
  }
  return result;
}

async function useConfig(config: ConfigName): Promise<void> {
  if (config.startsWith('wasm+kd')) enableWasmTraining();
  const backend = config === 'cpu' ? 'cpu' : 'wasm';
  if (!(await tf.setBackend(backend))) throw new Error(`could not start the ${backend} backend`);
  await tf.ready();
}

/** samples/s of `createTrainStep` on one student, or the first words of its error. */
async function measureStep(model: ModelName, lstm: 'tfjs' | 'fast', runs: number): Promise<ModelResult> {
  const c = withSeed(0, () => benchCase(model, lstm));
  const step = createTrainStep({
    student: c.student,
    optimizer: tf.train.adam(MODEL_SETTINGS.learningRate),
    temperature: c.temperature,
    kind: c.kind,
  });
  const batch = { inputs: c.inputs, teacherLogits: c.teacherLogits };
  const samples = c.inputs.shape[0]!;
  try {
    for (let i = 0; i < SETTINGS.warmupSteps; i++) await step(batch);
    const tensorsBefore = tf.memory().numTensors;
    const rates: number[] = [];
    const cpuRates: number[] = [];
    const steps: number[] = [];
    for (let run = 0; run < runs; run++) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      let n = 0;
      let elapsed = 0;
      do {
        await step(batch);
        n++;
        elapsed = performance.now() - started;
      } while (elapsed < SETTINGS.minRunSeconds * 1000);
      const used = process.cpuUsage(cpu);
      rates.push((n * samples * 1000) / elapsed);
      cpuRates.push((n * samples * 1e6) / (used.user + used.system));
      steps.push(n);
    }
    return {
      model,
      rates,
      cpuRates,
      steps: [Math.min(...steps), Math.max(...steps)],
      tensorsLeaked: tf.memory().numTensors - tensorsBefore,
    };
  } catch (error) {
    return { model, error: `fails: ${firstWords(error)}` };
  } finally {
    tf.dispose([c.inputs, c.teacherLogits]);
    c.student.dispose();
  }
}

/**
 * A lower bound on the cpu BiLSTM's step time: its Embedding gradient alone.
 * tfjs-backend-cpu's UnsortedSegmentSum runs one masked sum over the whole
 * gradient per vocabulary id, so its time is linear in the ids: a slice of
 * them is timed and scaled up.
 */
async function estimateCpuBiLstm(): Promise<ModelResult> {
  const { batch } = MODEL_SETTINGS;
  const { vocabulary, embedding, tokens } = MODEL_SETTINGS.bilstm;
  const probeIds = SETTINGS.cpuEmbeddingProbeIds;
  const gradient = tf.randomNormal([batch * tokens, embedding], 0, 1, 'float32', 8);
  const ids = tf.randomUniform([batch * tokens], 1, vocabulary, 'int32', 9) as tf.Tensor1D;
  const started = performance.now();
  tf.unsortedSegmentSum(gradient, ids, probeIds).dispose();
  const seconds = ((performance.now() - started) / 1000) * (vocabulary / probeIds);
  tf.dispose([gradient, ids]);
  return {
    model: 'bilstm',
    skipped: `not timed: ≥ ${Math.round(seconds / 60)} min/step (≤ ${(batch / seconds).toFixed(2)} samples/s; see notes)`,
  };
}

/**
 * Epoch times of `Distiller.fit` and of a hand-written loop doing the same
 * work, alternating ABBA so that drift and load fall on both.
 */
async function compareDistiller(options: Options): Promise<DistillerResult> {
  const { batch, temperature, learningRate } = MODEL_SETTINGS;
  const sizes = MODEL_SETTINGS.mlp.sizes;
  const rows = SETTINGS.distillerBatches * batch;
  const x = tf.randomUniform([rows, sizes[0]], 0, 1, 'float32', 7);
  const teacher = withSeed(1, () => tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [sizes[0]] })] }));

  const distiller = new Distiller({ teacher, student: withSeed(0, () => mlp(sizes)) });
  distiller.compile({ optimizer: tf.train.adam(learningRate), temperature });
  const distillerEpoch = async () => {
    await distiller.fit(x, undefined, { epochs: 1, batchSize: batch, shuffle: false });
  };

  const student = withSeed(0, () => mlp(sizes));
  const optimizer = tf.train.adam(learningRate);
  const variables = student.trainableWeights.map((w) => w.read() as tf.Variable);
  const handEpoch = async () => {
    for (let start = 0; start < rows; start += batch) {
      const size = Math.min(batch, rows - start);
      // Taken as the Distiller takes it: tf.gather (wasm's Slice copies its whole input every call).
      const indices = tf.range(start, start + size, 1, 'int32');
      const xb = tf.gather(x, indices);
      indices.dispose();
      const teacherLogits = tf.tidy(() => teacher.apply(xb, { training: false }) as tf.Tensor);
      const loss = optimizer.minimize(
        () => distillationLoss(student.apply(xb, { training: true }) as tf.Tensor, teacherLogits, { temperature, validate: false }),
        true,
        variables,
      )!;
      await loss.data();
      tf.dispose([xb, teacherLogits, loss]);
    }
  };

  const time = async (epoch: () => Promise<void>) => {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await epoch();
    const used = process.cpuUsage(cpu);
    return { wall: performance.now() - started, cpu: (used.user + used.system) / 1000 };
  };
  await distillerEpoch();
  await handEpoch();
  const rounds = SETTINGS.distillerRounds(options.runs, options.quick);
  const result: DistillerResult = {
    distillerMs: [],
    handMs: [],
    distillerCpuMs: [],
    handCpuMs: [],
    tensorsLeaked: { distiller: 0, hand: 0 },
  };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['distiller', 'hand'] as const) : (['hand', 'distiller'] as const);
    for (const which of order) {
      const before = tf.memory().numTensors;
      const { wall, cpu } = await time(which === 'distiller' ? distillerEpoch : handEpoch);
      (which === 'distiller' ? result.distillerMs : result.handMs).push(wall);
      (which === 'distiller' ? result.distillerCpuMs : result.handCpuMs).push(cpu);
      result.tensorsLeaked[which] += tf.memory().numTensors - before;
    }
  }
  return result;
}
