/**
 * Build step of the browser demo: writes what the page fetches into
 * `examples/browser/public/` (ignored by git), so the browser never parses
 * the `mnist` package's 41 MB of JSON.
 *
 * - `data/mnist-subset.bin` + `data/mnist-subset.json`: a seeded,
 *   class-balanced subset (3,000 training and 1,000 test digits by default),
 *   pixels as uint8 grey levels, 3.1 MB in all.
 * - `teacher/model.json` + `teacher/weights.bin`: a 784-256-256-10 teacher
 *   trained here, in Node on the wasm backend, on the 9,000 digits that are
 *   not test digits: the teacher you already have, loaded from a URL.
 * - `wasm/*.wasm`: the wasm backend's binaries, which the page points
 *   `setWasmPaths` at.
 *
 * Run: `npx tsx examples/browser/prepare.ts` (about 20–40 s the first time;
 * a rerun with the same settings only copies the .wasm files). The Vite
 * config runs it before `vite` and `vite build`.
 */
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { pickTrainingBackend, withSeed } from '../../src/index.js';
import { saveStudent } from '../../src/node/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, loadMnistSplit, type MnistSet } from '../shared/mnist.js';
import { buildMlp } from './models.js';

/** Everything that decides the output; a change regenerates it. */
const PREPARE_SETTINGS = {
  /** Format version of the files: bump when the layout changes. */
  version: 1,
  seed: 0,
  /** Training digits per class the page gets (3,000 in all). */
  trainPerClass: 300,
  /** Test digits per class (1,000 in all): the page scores every model on these. */
  testPerClass: 100,
  teacherHidden: [256, 256],
  teacherDropout: 0.3,
  teacherInputDropout: 0.2,
  teacherEpochs: 8,
  teacherLearningRate: 1e-3,
  batchSize: 64,
};

/** What `data/mnist-subset.json` says about `data/mnist-subset.bin`. */
export interface SubsetManifest {
  settings: typeof PREPARE_SETTINGS;
  /** Pixels per digit (784). */
  pixels: number;
  /** Digits in each part, laid out in the .bin as: train pixels, train labels, test pixels, test labels. */
  trainSize: number;
  testSize: number;
  /** The teacher's accuracy on the page's test digits, measured here. */
  teacherTestAccuracy: number;
  /** Digit ids in the `mnist` package (see examples/shared/mnist.ts), to trace a digit back. */
  trainIds: number[];
  testIds: number[];
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Where the page's static files go; Vite serves and copies this folder. */
const PUBLIC_DIR = path.join(HERE, 'public');
const MANIFEST = path.join(PUBLIC_DIR, 'data', 'mnist-subset.json');

/**
 * Writes the data subset and the teacher unless they are there with the
 * same settings, and copies the .wasm binaries every time.
 *
 * @returns Whether the data and teacher were (re)generated.
 */
async function prepare(): Promise<boolean> {
  await copyWasmBinaries();
  if (await isUpToDate()) return false;
  await rm(path.join(PUBLIC_DIR, 'data'), { recursive: true, force: true });
  await rm(path.join(PUBLIC_DIR, 'teacher'), { recursive: true, force: true });

  const s = PREPARE_SETTINGS;
  const split = loadMnistSplit({ testPerClass: s.testPerClass, seed: s.seed });
  const teacherSet = quantize(split.train);
  const trainSet = firstPerClass(teacherSet, s.trainPerClass);
  const testSet = quantize(split.test);

  const started = performance.now();
  tf.env().set('PROD', true); // no "use tfjs-node" banner
  await pickTrainingBackend({ prefer: ['wasm'] });
  const teacher = withSeed(s.seed, () => buildMlp(s.teacherHidden, { dropout: s.teacherDropout, inputDropout: s.teacherInputDropout }));
  teacher.compile({
    optimizer: tf.train.adam(s.teacherLearningRate),
    loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits),
  });
  const x = tf.tensor2d(teacherSet.x, [teacherSet.size, MNIST_PIXELS]);
  const oneHot = tf.oneHot(tf.tensor1d(teacherSet.labels, 'int32'), MNIST_CLASSES);
  // tfjs-layers shuffles and draws dropout masks from Math.random: seed it.
  await withSeed(s.seed, () => teacher.fit(x, oneHot, { epochs: s.teacherEpochs, batchSize: s.batchSize, verbose: 0 }));
  const teacherTestAccuracy = accuracy(teacher, testSet);
  tf.dispose([x, oneHot]);
  await saveStudent(teacher, path.join(PUBLIC_DIR, 'teacher'));
  teacher.dispose();

  await mkdir(path.dirname(MANIFEST), { recursive: true });
  await writeFile(path.join(PUBLIC_DIR, 'data', 'mnist-subset.bin'), concatBytes([trainSet, testSet]));
  const manifest: SubsetManifest = {
    settings: s,
    pixels: MNIST_PIXELS,
    trainSize: trainSet.size,
    testSize: testSet.size,
    teacherTestAccuracy,
    trainIds: Array.from(trainSet.ids),
    testIds: Array.from(testSet.ids),
  };
  // Written last: its presence means the rest is complete.
  await writeFile(MANIFEST, JSON.stringify(manifest));
  console.log(
    `prepare: ${trainSet.size} train + ${testSet.size} test digits; teacher ${s.teacherHidden.join('-')} ` +
      `trained on ${teacherSet.size} digits in ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
      `test accuracy ${(teacherTestAccuracy * 100).toFixed(2)} %`,
  );
  return true;
}

/** Digits with uint8 grey levels (what the .bin stores), so the teacher trains on what the page sees. */
interface ByteSet {
  pixels: Uint8Array;
  x: Float32Array;
  labels: Int32Array;
  ids: Int32Array;
  size: number;
}

async function isUpToDate(): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(MANIFEST, 'utf8')) as SubsetManifest;
    await readFile(path.join(PUBLIC_DIR, 'teacher', 'model.json'));
    return JSON.stringify(manifest.settings) === JSON.stringify(PREPARE_SETTINGS);
  } catch {
    return false;
  }
}

async function copyWasmBinaries(): Promise<void> {
  // Resolve the package's own dist/ folder through Node, wherever npm put it.
  const wasmEntry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  const distDir = path.dirname(wasmEntry);
  const target = path.join(PUBLIC_DIR, 'wasm');
  await mkdir(target, { recursive: true });
  for (const name of await readdir(distDir)) {
    if (name.endsWith('.wasm')) await copyFile(path.join(distDir, name), path.join(target, name));
  }
}

/** Rounds [0, 1] grey levels to bytes, and back to floats, so both sides see the same pixels. */
function quantize(set: MnistSet): ByteSet {
  const pixels = new Uint8Array(set.x.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round(set.x[i]! * 255);
  return { pixels, x: Float32Array.from(pixels, (v) => v / 255), labels: set.labels, ids: set.ids, size: set.size };
}

/**
 * The first `perClass` digits of each class, keeping the set's (seeded,
 * shuffled) order: class-balanced, and any prefix is still mixed.
 */
function firstPerClass(set: ByteSet, perClass: number): ByteSet {
  const taken = new Array<number>(MNIST_CLASSES).fill(0);
  const rows: number[] = [];
  for (let row = 0; row < set.size; row++) {
    const label = set.labels[row]!;
    if (taken[label]! < perClass) {
      taken[label]!++;
      rows.push(row);
    }
  }
  const pixels = new Uint8Array(rows.length * MNIST_PIXELS);
  rows.forEach((row, i) => pixels.set(set.pixels.subarray(row * MNIST_PIXELS, (row + 1) * MNIST_PIXELS), i * MNIST_PIXELS));
  return {
    pixels,
    x: Float32Array.from(pixels, (v) => v / 255),
    labels: Int32Array.from(rows, (row) => set.labels[row]!),
    ids: Int32Array.from(rows, (row) => set.ids[row]!),
    size: rows.length,
  };
}

function concatBytes(sets: ByteSet[]): Uint8Array {
  const parts = sets.flatMap((set) => [set.pixels, Uint8Array.from(set.labels)]);
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function accuracy(model: tfl.LayersModel, set: ByteSet): number {
  const predicted = tf.tidy(() => {
    const logits = model.predict(tf.tensor2d(set.x, [set.size, MNIST_PIXELS])) as tf.Tensor;
    return tf.argMax(logits, -1).dataSync();
  });
  let correct = 0;
  for (let i = 0; i < set.size; i++) if (predicted[i] === set.labels[i]) correct++;
  return correct / set.size;
}

prepare().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
