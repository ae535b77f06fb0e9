// pack-smoke (ESM): kd-ts from the packed tarball, next to the tfjs
// sub-packages only. No chained tensor ops (t.sum(), t.flatten()): without the
// umbrella @tensorflow/tfjs they are not registered, and kd-ts must not need them.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import * as kd from 'kd-ts';
import { Distiller, distillationLoss, softmaxWithTemperature, seededRandom } from 'kd-ts';
import * as kdNode from 'kd-ts/node';
// One name from each subpath entry.
import { logSoftmaxWithTemperature } from 'kd-ts/losses';
import { TeacherCache } from 'kd-ts/teachers';
import { Distiller as DistillerFromSubpath, DISTILLATION_HEAD_OUTPUTS } from 'kd-ts/distill';
import { parseIdList } from 'kd-ts/io';
import { whitespaceTokenize } from 'kd-ts/text';
import { registerCpuTrainingKernels } from 'kd-ts/backend';
import { MaskedGlobalMaxPooling1D } from 'kd-ts/layers';

const label = 'pack-smoke esm';

function assert(cond, msg) {
  if (!cond) throw new Error(`${label}: ${msg}`);
}

function snapshot(model) {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

function maxAbsDiff(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < a[i].length; j++) d = Math.max(d, Math.abs(a[i][j] - b[i][j]));
  }
  return d;
}

async function main() {
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
  await tf.ready();
  assert(tf.getBackend() === 'cpu', `backend is ${tf.getBackend()}, expected cpu`);
  assert(typeof Distiller === 'function', 'Distiller is not a class');
  assert(kdNode !== null && typeof kdNode === 'object', "import 'kd-ts/node' did not give a module namespace");

  // Subpath entries: each gives working values, and a class re-exported by two
  // entries is one class (the build shares chunks in both formats), so errors
  // thrown behind one entry are instances of the classes of another.
  assert(DistillerFromSubpath === Distiller, "kd-ts/distill's Distiller is not kd-ts's Distiller");
  assert(TeacherCache === kd.TeacherCache, "kd-ts/teachers' TeacherCache is not kd-ts's TeacherCache");
  assert(DISTILLATION_HEAD_OUTPUTS.join() === 'hard,soft', `DISTILLATION_HEAD_OUTPUTS is ${DISTILLATION_HEAD_OUTPUTS}`);
  assert(whitespaceTokenize(' a  b ').join('|') === 'a|b', 'whitespaceTokenize');
  assert(registerCpuTrainingKernels().includes('UnsortedSegmentSum'), 'registerCpuTrainingKernels');
  assert(typeof MaskedGlobalMaxPooling1D === 'function' && MaskedGlobalMaxPooling1D.className.startsWith('kd>'), 'MaskedGlobalMaxPooling1D');
  const logProbs = logSoftmaxWithTemperature(tf.tensor2d([[0, 0]]), 2).arraySync()[0];
  assert(logProbs.every((v) => Math.abs(v - Math.log(0.5)) < 1e-6), `logSoftmaxWithTemperature gave ${logProbs}`);
  let thrown;
  try {
    parseIdList('[1,');
  } catch (error) {
    thrown = error;
  }
  assert(thrown !== undefined, "kd-ts/io's parseIdList accepted truncated JSON");
  assert(thrown instanceof kd.KdError, `kd-ts/io threw ${thrown && thrown.constructor.name}, not an instance of $import('kd-ts').KdError`);
  assert(thrown.constructor === kd.KdDataError && thrown.code === 'CORRUPT_FILE', `kd-ts/io threw ${thrown.constructor.name} ${thrown.code}`);

  // softmaxWithTemperature: rows sum to 1.
  const logits = tf.tensor2d([[1, 2, 3], [0, 0, 0]]);
  const probs = softmaxWithTemperature(logits, 2);
  const rowSums = tf.sum(probs, 1).arraySync();
  assert(rowSums.every((s) => Math.abs(s - 1) < 1e-5), `softmax rows sum to ${rowSums}`);

  // distillationLoss: a finite scalar.
  const lossT = distillationLoss(logits, tf.tensor2d([[3, 2, 1], [1, 0, 0]]), {
    temperature: 2,
    alpha: 0.5,
    labels: tf.tensor1d([2, 0], 'int32'),
  });
  assert(lossT.shape.length === 0, `distillationLoss shape ${JSON.stringify(lossT.shape)}`);
  assert(Number.isFinite(lossT.dataSync()[0]), `distillationLoss = ${lossT.dataSync()[0]}`);

  // seededRandom: seedrandom's Alea through this entry's interop (CJS dependency).
  const r1 = seededRandom(7);
  const r2 = seededRandom(7);
  const draws = [r1(), r1(), r1()];
  assert(draws.every((v) => v >= 0 && v < 1), `seededRandom draws ${draws}`);
  assert(draws.every((v) => v === r2()), 'seededRandom(7) does not repeat');

  // Distiller: one step on 8 examples.
  const teacher = tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 8, activation: 'relu', inputShape: [4] }),
      tfl.layers.dense({ units: 3 }),
    ],
  });
  const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] })] });
  const x = tf.randomNormal([8, 4]);
  const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');

  const studentBefore = snapshot(student);
  const teacherBefore = snapshot(teacher);
  const distiller = new Distiller({ teacher, student });
  distiller.compile({ optimizer: tf.train.adam(0.01), temperature: 2, alpha: 0.5 });
  const history = await distiller.fit(x, y, { epochs: 1, batchSize: 8 });

  const loss = history.history.loss?.[0];
  assert(typeof loss === 'number' && Number.isFinite(loss), `loss is ${loss}`);
  const moved = maxAbsDiff(studentBefore, snapshot(student));
  assert(moved > 0, 'the student weights did not change');
  assert(maxAbsDiff(teacherBefore, snapshot(teacher)) === 0, 'the teacher weights changed');

  // Data-parallel: the worker script (dist/node-worker.*) ships in this format and trains the student.
  const pool = kdNode.workerPool({ workers: 2 });
  try {
    const beforeParallel = snapshot(student);
    await distiller.fit(x, y, { epochs: 1, batchSize: 8, parallel: pool });
    assert(maxAbsDiff(beforeParallel, snapshot(student)) > 0, 'the parallel fit did not change the student weights');
  } finally {
    await pool.close();
  }

  console.log(`${label}: ok loss=${loss.toFixed(6)} maxWeightDelta=${moved.toExponential(3)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
