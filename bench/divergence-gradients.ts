/**
 * How the gradient of each divergence (× T², kd-ts's default) scales with the
 * temperature: the L2 norm of d loss / d student logits for fixed random
 * logits (batch 64, 10 classes, logits ~ N(0, 3²), seeded), at T = 1 to 100.
 * Not a speed benchmark: it prints the numbers quoted in docs/losses.md.
 *
 * Run: `npx tsx bench/divergence-gradients.ts [--classes 10] [--batch 64]`.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients tf.grad needs
import '@tensorflow/tfjs-backend-cpu';
import { distillationLoss, seededRandom, type DistillationKind } from '../src/index.js';
import { formatTable } from './util.js';

const { values } = parseArgs({
  options: { classes: { type: 'string', default: '10' }, batch: { type: 'string', default: '64' } },
});
const classes = Number(values.classes);
const batch = Number(values.batch);
const temperatures = [1, 2, 4, 10, 20, 50, 100];
const kinds: DistillationKind[] = ['kl', 'reverse-kl', 'jsd', 'tvd'];

tf.env().set('PROD', true);
await tf.setBackend('cpu');

const random = seededRandom(20250611);
const normal = () => 3 * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const student = tf.tensor2d(Array.from({ length: batch * classes }, normal), [batch, classes]);
const teacher = tf.tensor2d(Array.from({ length: batch * classes }, normal), [batch, classes]);

function gradientNorm(kind: DistillationKind, temperature: number): number {
  return tf.tidy(() => {
    const grad = tf.grad((s: tf.Tensor) => distillationLoss(s, teacher, { kind, temperature }))(student);
    return tf.norm(grad).dataSync()[0]!;
  });
}

const rows = kinds.map((kind) => [kind, ...temperatures.map((t) => gradientNorm(kind, t).toPrecision(3))]);
console.log(`‖d loss / d student logits‖₂ with × T² (batch ${batch}, ${classes} classes, logits ~ N(0, 3²))\n`);
console.log(formatTable(['kind', ...temperatures.map((t) => `T = ${t}`)], rows));
tf.dispose([student, teacher]);
