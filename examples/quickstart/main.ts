/**
 * Quickstart: the shortest program that distils. A teacher MLP (784-256-256-10)
 * trained on MNIST teaches a 10× smaller student (784-32-10); the same student,
 * from the same initial weights, trained on the labels alone is the baseline.
 * Run: `npm run quickstart` (about 45 s on 2 cores; see README.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { Distiller, pickTrainingBackend, withSeed } from 'kd-ts';
import { buildMlp, loadMnist } from './mnist.js';

tf.env().set('PROD', true); // no "use tfjs-node" banner
// wasm, with the training kernels stock wasm lacks and kd-ts's fast matrix products.
await pickTrainingBackend({ prefer: ['wasm'] });
const SEED = 0; // seeds the split, the initial weights, shuffling and dropout: same seed, same numbers
const { train, test } = loadMnist(SEED); // 8,000 training digits, 2,000 test digits

// Networks end in logits (the Distiller compares logits): no softmax layer.
const teacher = withSeed(SEED, () => buildMlp([256, 256], { inputDropout: 0.2, dropout: 0.3 }));
const scratch = withSeed(`${SEED}/student`, () => buildMlp([32]));
const student = withSeed(`${SEED}/student`, () => buildMlp([32])); // the same initial weights as `scratch`

/** Plain tfjs training on the labels: the teacher, and the baseline student. */
async function fitOnLabels(model: tfl.LayersModel, epochs: number, learningRate: number): Promise<void> {
  const loss = (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits);
  model.compile({ optimizer: tf.train.adam(learningRate), loss });
  // tfjs-layers shuffles and drops out with Math.random: withSeed makes the run repeatable.
  await withSeed(SEED, () => model.fit(train.x, train.oneHot, { epochs, batchSize: 64, verbose: 0 }));
}

console.log('training the teacher on the labels, 12 epochs...');
await fitOnLabels(teacher, 12, 1e-3);
console.log('training the student on the labels, 10 epochs...');
await fitOnLabels(scratch, 10, 1e-2);

console.log('distilling the teacher into the student, 10 epochs...');
const distiller = new Distiller({ teacher, student });
// Temperature 4 softens the teacher's outputs; alpha 0.1 weighs the hard-label term.
distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 4, alpha: 0.1 });
await distiller.fit(train.x, train.y, { epochs: 10, batchSize: 64, seed: SEED });

/** Test digits a model gets wrong, of 2,000. */
function testErrors(model: tfl.LayersModel): number {
  return tf.tidy(() => {
    const predicted = tf.argMax(model.predict(test.x) as tf.Tensor, -1);
    return tf.sum(tf.notEqual(predicted, test.y)).dataSync()[0]!;
  });
}
const { acc, agreement } = await distiller.evaluate(test.x, test.y);
console.log(`test errors (of 2000): teacher ${testErrors(teacher)} (${teacher.countParams()} parameters),`);
console.log(`  student on labels ${testErrors(scratch)}, distilled student ${testErrors(student)} (${student.countParams()} parameters each)`);
console.log(`distilled student: accuracy ${(acc! * 100).toFixed(2)} %, agreement with the teacher ${(agreement! * 100).toFixed(2)} %`);

tf.dispose([train.x, train.y, train.oneHot, test.x, test.y, test.oneHot]);
