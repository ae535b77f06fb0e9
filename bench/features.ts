/**
 * The Distiller's overhead with two feature terms, against a hand-written
 * loop doing the same work (goal: ≤ 1.05×).
 *
 * Both train the same MLP student (784-128-128-10) against the same MLP
 * teacher (784-512-512-10) on the same batches: KL at T = 4 on the logits,
 * plus `mse` between the student's first hidden layer (projected 128 → 512 by
 * a trainable Dense) and the teacher's, and `cosine` between the second
 * hidden layers (projected likewise). The hand-written loop builds its own
 * two-output teacher and three-output student models, its own projections,
 * and calls the public loss functions (`distillationLoss`, `featureLoss`)
 * inside `optimizer.minimize`, reading the loss once per batch as the
 * Distiller does. Epochs alternate ABBA so that drift and load from other
 * processes fall on both; each figure is the median epoch.
 *
 * Run: `nice -n 15 npx tsx bench/features.ts [--runs 7] [--batches 24] [--backend wasm|cpu]`
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { Distiller, distillationLoss, pickTrainingBackend, withSeed } from '../src/index.js';
import { featureLoss } from '../src/losses/index.js';
import { formatTable, loadAverage, machine, median } from './util.js';

const BATCH = 128;
const TEMPERATURE = 4;
const LEARNING_RATE = 1e-3;

function mlp(hidden: number[], prefix: string, seed: number): tfl.LayersModel {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        ...hidden.map((units, i) => tfl.layers.dense({ units, activation: 'relu', name: `${prefix}_h${i + 1}`, ...(i === 0 ? { inputShape: [784] } : {}) })),
        tfl.layers.dense({ units: 10, name: `${prefix}_logits` }),
      ],
    }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '7' }, batches: { type: 'string', default: '24' }, backend: { type: 'string', default: 'wasm' } },
  });
  const runs = Number(values.runs);
  const rows = Number(values.batches) * BATCH;
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: [values.backend as 'wasm' | 'cpu'] });
  const loadBefore = loadAverage();
  const x = tf.randomUniform([rows, 784], 0, 1, 'float32', 7);
  const teacher = mlp([512, 512], 't', 1);
  const features = [
    { teacherLayer: 't_h1', studentLayer: 's_h1', loss: 'mse' as const },
    { teacherLayer: 't_h2', studentLayer: 's_h2', loss: 'cosine' as const },
  ];

  const distiller = new Distiller({ teacher, student: mlp([128, 128], 's', 0) });
  distiller.compile({ optimizer: tf.train.adam(LEARNING_RATE), temperature: TEMPERATURE, features });
  const distillerEpoch = async () => {
    await distiller.fit(x, undefined, { epochs: 1, batchSize: BATCH, shuffle: false });
  };

  // The same by hand.
  const student = mlp([128, 128], 's', 0);
  const layerOut = (m: tfl.LayersModel, name: string) => m.getLayer(name).output as tfl.SymbolicTensor;
  const teacherModel = tfl.model({ inputs: teacher.inputs, outputs: [teacher.outputs[0]!, layerOut(teacher, 't_h1'), layerOut(teacher, 't_h2')] });
  const studentModel = tfl.model({ inputs: student.inputs, outputs: [student.outputs[0]!, layerOut(student, 's_h1'), layerOut(student, 's_h2')] });
  const projections = [0, 1].map((i) => withSeed(10 + i, () => tfl.sequential({ layers: [tfl.layers.dense({ units: 512, inputShape: [128] })] })));
  const optimizer = tf.train.adam(LEARNING_RATE);
  const variables = [student, ...projections].flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
  const handEpoch = async () => {
    for (let start = 0; start < rows; start += BATCH) {
      const size = Math.min(BATCH, rows - start);
      const indices = tf.range(start, start + size, 1, 'int32');
      const xb = tf.gather(x, indices);
      indices.dispose();
      const t = tf.tidy(() => teacherModel.apply(xb, { training: false }) as tf.Tensor[]);
      const loss = optimizer.minimize(
        () => {
          const [logits, h1, h2] = studentModel.apply(xb, { training: true }) as tf.Tensor[];
          const kd = distillationLoss(logits!, t[0]!, { temperature: TEMPERATURE, validate: false });
          const f1 = featureLoss(projections[0]!.apply(h1!) as tf.Tensor, t[1]!, { kind: 'mse' });
          const f2 = featureLoss(projections[1]!.apply(h2!) as tf.Tensor, t[2]!, { kind: 'cosine' });
          return tf.addN([kd, f1, f2]) as tf.Scalar;
        },
        true,
        variables,
      )!;
      await loss.data();
      tf.dispose([xb, ...t, loss]);
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
  const ms = { distiller: [] as number[], hand: [] as number[] };
  const cpuMs = { distiller: [] as number[], hand: [] as number[] };
  const leaked = { distiller: 0, hand: 0 };
  for (let round = 0; round < runs; round++) {
    for (const which of round % 2 === 0 ? (['distiller', 'hand'] as const) : (['hand', 'distiller'] as const)) {
      const before = tf.memory().numTensors;
      const { wall, cpu } = await time(which === 'distiller' ? distillerEpoch : handEpoch);
      ms[which].push(wall);
      cpuMs[which].push(cpu);
      leaked[which] += tf.memory().numTensors - before;
    }
  }
  const d = median(ms.distiller);
  const h = median(ms.hand);
  const dc = median(cpuMs.distiller);
  const hc = median(cpuMs.hand);
  const perRound = ms.distiller.map((v, i) => v / ms.hand[i]!);
  console.log(`machine: ${machine()}; backend: ${tf.getBackend()} (${choice.reasons[0] ?? ''}); load average before ${loadBefore}, after ${loadAverage()}`);
  console.log(`epoch: ${rows / BATCH} batches of ${BATCH}; median of ${runs} epochs each, alternating ABBA\n`);
  console.log(
    formatTable(
      ['loop', 'median epoch, wall (ms)', 'min–max (ms)', 'median epoch, CPU (ms)', 'samples/s', 'tensors leaked', 'ratio wall', 'ratio CPU'],
      [
        ['Distiller.fit, 2 feature terms', d.toFixed(0), `${Math.min(...ms.distiller).toFixed(0)}–${Math.max(...ms.distiller).toFixed(0)}`, dc.toFixed(0), (rows / (d / 1000)).toFixed(0), String(leaked.distiller), (d / h).toFixed(3), (dc / hc).toFixed(3)],
        ['hand-written loop', h.toFixed(0), `${Math.min(...ms.hand).toFixed(0)}–${Math.max(...ms.hand).toFixed(0)}`, hc.toFixed(0), (rows / (h / 1000)).toFixed(0), String(leaked.hand), '1.000', '1.000'],
      ],
    ),
  );
  console.log(`\nper-round wall ratio: median ${median(perRound).toFixed(3)}, ${Math.min(...perRound).toFixed(3)}–${Math.max(...perRound).toFixed(3)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
