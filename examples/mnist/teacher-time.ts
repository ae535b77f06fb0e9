/**
 * Times the demo teacher's training alone, to compare machines and commits:
 * Hinton's 784-1200-1200-10 with dropout (0.2 on the inputs, 0.5 after each
 * hidden layer), Adam 1e-3, batch 128, 8,000 rows per epoch, plain
 * tfjs-layers `model.fit`, on wasm with kd-ts's kernels (`pickTrainingBackend`).
 * The rows are seeded random pixels, not digits: the cost of a step does not
 * depend on the values, and the script needs nothing from examples/ beyond
 * tfjs and `src/index.ts`, so it runs unchanged at older commits (copy it
 * into a `git worktree` of the commit).
 *
 * Prints wall and user CPU seconds per epoch (user time is what to compare on
 * a shared machine) and the inference time per 1,000 rows (batches of 500, as
 * the demo's compression table times it).
 *
 * Run: `npx tsx examples/mnist/teacher-time.ts [--epochs 2] [--backend wasm|cpu]`
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { pickTrainingBackend } from '../../src/index.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { epochs: { type: 'string', default: '2' }, backend: { type: 'string', default: 'wasm' } } });
  const epochs = Number(values.epochs);
  tf.env().set('PROD', true);
  const choice = await pickTrainingBackend({ prefer: [values.backend === 'cpu' ? 'cpu' : 'wasm'] });
  console.log(`${choice.backend}; load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const rows = 8000;
  const x = tf.randomUniform([rows, 784], 0, 1, 'float32', 1);
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.randomUniform([rows], 0, 10, 'int32', 2), 10), 'float32'));
  const model = tfl.sequential();
  model.add(tfl.layers.dropout({ rate: 0.2, inputShape: [784], seed: 3 }));
  model.add(tfl.layers.dense({ units: 1200, activation: 'relu' }));
  model.add(tfl.layers.dropout({ rate: 0.5, seed: 4 }));
  model.add(tfl.layers.dense({ units: 1200, activation: 'relu' }));
  model.add(tfl.layers.dropout({ rate: 0.5, seed: 5 }));
  model.add(tfl.layers.dense({ units: 10 }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits) });
  let wall = performance.now();
  let cpu = process.cpuUsage();
  await model.fit(x, y, {
    epochs,
    batchSize: 128,
    shuffle: false,
    verbose: 0,
    callbacks: {
      onEpochEnd: async (epoch) => {
        const used = process.cpuUsage(cpu);
        console.log(`epoch ${epoch + 1}: ${((performance.now() - wall) / 1000).toFixed(2)} s wall, ${(used.user / 1e6).toFixed(2)} s user`);
        wall = performance.now();
        cpu = process.cpuUsage();
      },
    },
  });
  const first = tf.slice(x, 0, 1000);
  const started = performance.now();
  for (let i = 0; i < 5; i++) tf.tidy(() => (model.predict(first, { batchSize: 500 }) as tf.Tensor).dataSync());
  console.log(`inference: ${((performance.now() - started) / 5).toFixed(1)} ms per 1,000 rows`);
  tf.dispose([x, y, first]);
  model.dispose();
}

// The wasm module prints its whole minified source on an uncaught error: print the error alone.
main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
