/**
 * Feature distillation through the Distiller: it pulls a student layer toward
 * the teacher's, leaves the student's parameters and the teacher alone, runs
 * the teacher once per batch, logs `feature_loss`, and leaks nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { buildBiLstmStudent, Distiller, withSeed } from '../../src/index.js';
import { loadStudent, saveStudent } from '../../src/node/index.js';
import type { KdError } from '../../src/errors.js';
import type { FeatureSpec } from '../../src/distill/features.js';
import { sameValues, weightValues } from './helpers.js';

/** 6 → hidden (linear unless `activation`) → 3 logits, layers named `${prefix}_hidden`, `${prefix}_logits`. */
function net(prefix: string, hidden: number, seed: number, activation?: 'relu') {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: hidden, inputShape: [6], name: `${prefix}_hidden`, activation }),
        tfl.layers.dense({ units: 3, name: `${prefix}_logits` }),
      ],
    }),
  );
}

function convNet(prefix: string, filters: number, seed: number) {
  return withSeed(seed, () =>
    tfl.sequential({
      layers: [
        tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', inputShape: [5, 5, 2], name: `${prefix}_conv` }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, name: `${prefix}_logits` }),
      ],
    }),
  );
}

/** mean(teacher²) at the layer, to turn the mse feature loss into a relative gap. */
function meanSquare(model: tfl.LayersModel, layer: string, x: tf.Tensor): number {
  return tf.tidy(() => {
    const sub = tfl.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tfl.SymbolicTensor });
    return tf.mean(tf.square(sub.predict(x) as tf.Tensor)).dataSync()[0]!;
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as KdError).code;
  }
  return undefined;
}

afterEach(() => vi.restoreAllMocks());

describe('Distiller with features', () => {
  test.each([
    ['same widths, no projection', 12, 'none'],
    ["narrower student, projection 'auto'", 8, 'auto'],
  ] as const)('pulls the student layer toward the teacher layer (%s): relative gap falls ≥ 10×', async (_name, width, projection) => {
    const teacher = net('t', 12, 1);
    const student = net('s', width, 2);
    const x = withSeed(3, () => tf.randomNormal([256, 6]));
    const params = student.countParams();
    const teacherBefore = weightValues(teacher);
    const distiller = new Distiller({ teacher, student });
    distiller.compile({
      optimizer: tf.train.adam(3e-2),
      temperature: 2,
      features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden', projection }],
    });
    const scale = meanSquare(teacher, 't_hidden', x);
    const before = (await distiller.evaluate(x)).feature_loss! / scale;
    const history = await distiller.fit(x, undefined, { epochs: 40, batchSize: 64, seed: 0 });
    const after = (await distiller.evaluate(x)).feature_loss! / scale;
    expect(before).toBeGreaterThan(0.1);
    expect(after * 10, `relative gap ${before} → ${after}`).toBeLessThanOrEqual(before);
    expect(history.history.feature_loss).toHaveLength(40);
    expect(student.countParams()).toBe(params);
    expect(student.layers.map((l) => l.name)).toEqual(['s_hidden', 's_logits']);
    expect(sameValues(weightValues(teacher), teacherBefore)).toBe(true);
  });

  test('the student saves alone: same weight specs as before feature distillation', async () => {
    const teacher = net('t', 12, 1);
    const student = net('s', 8, 2);
    const specs = async () => {
      let names: string[] = [];
      await student.save(tf.io.withSaveHandler(async (artifacts) => {
        names = (artifacts.weightSpecs ?? []).map((w) => w.name);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }));
      return names;
    };
    const before = await specs();
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden' }] });
    await distiller.fit(tf.randomNormal([32, 6]), undefined, { epochs: 1, batchSize: 16 });
    expect(await specs()).toEqual(before);
    // kd-ts/node's saveStudent writes the student's weights only, and loadStudent gives back its layers.
    const dir = await mkdtemp(join(tmpdir(), 'kd-features-save-'));
    try {
      await saveStudent(student, dir);
      const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { weights: { name: string }[] }[] };
      expect(manifest.weightsManifest.flatMap((group) => group.weights.map((w) => w.name))).toEqual(before);
      const loaded = await loadStudent(dir);
      expect(loaded.countParams()).toBe(student.countParams());
      loaded.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the teacher runs once per batch (logits and features from one pass)', async () => {
    const teacher = net('t', 12, 1, 'relu');
    const student = net('s', 8, 2);
    const calls = vi.spyOn(teacher.getLayer('t_hidden'), 'call');
    const distiller = new Distiller({ teacher, student });
    distiller.compile({
      optimizer: tf.train.adam(1e-2),
      temperature: 2,
      features: [
        { teacherLayer: 't_hidden', studentLayer: 's_hidden', loss: 'cosine' },
        { teacherLayer: 't_logits', studentLayer: 's_logits', weight: 0.5 },
      ],
    });
    const x = tf.randomNormal([100, 6]);
    await distiller.fit(x, undefined, { epochs: 2, batchSize: 32 }); // 4 batches per epoch
    expect(calls).toHaveBeenCalledTimes(8);
    await distiller.evaluate(x, undefined, { batchSize: 50 });
    expect(calls).toHaveBeenCalledTimes(10);
  });

  test('logs feature_loss, val_feature_loss, and evaluate reports it; the total is the sum of the terms', async () => {
    const teacher = net('t', 12, 1);
    const student = net('s', 12, 2);
    const x = tf.randomNormal([64, 6]);
    const y = tf.randomUniform([64], 0, 3, 'int32');
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, alpha: 0.3, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden', weight: 2 }] });
    const history = await distiller.fit(x, y, { epochs: 2, batchSize: 32, validationData: [x, y] });
    expect(history.history.feature_loss).toHaveLength(2);
    expect(history.history.val_feature_loss).toHaveLength(2);
    const logs = await distiller.evaluate(x, y);
    const mse = tf.tidy(() => {
      const sub = (m: tfl.LayersModel, name: string) => tfl.model({ inputs: m.inputs, outputs: m.getLayer(name).output as tfl.SymbolicTensor }).predict(x) as tf.Tensor;
      return tf.mean(tf.square(tf.sub(sub(student, 's_hidden'), sub(teacher, 't_hidden')))).dataSync()[0]!;
    });
    expect(logs.feature_loss).toBeCloseTo(2 * mse, 4);
    const expected = 0.3 * logs.student_loss! + 0.7 * logs.distillation_loss! + logs.feature_loss!;
    expect(logs.loss).toBeCloseTo(expected, 4);
  });

  test.each([
    ['mse', 'auto', 'dense'],
    ['cosine', 'linear', 'dense'],
    ['mse', 'none', 'dense'],
    ['mse', 'auto', 'conv'],
    ['cosine', 'linear', 'conv'],
    ['attention', 'auto', 'conv'],
  ] as const)('no leaked tensors over many steps: %s, projection %s, %s', async (loss, projection, kind) => {
    const conv = kind === 'conv';
    const teacher = conv ? convNet('t', 6, 1) : net('t', 12, 1);
    const student = conv ? convNet('s', projection === 'none' ? 6 : 3, 2) : net('s', projection === 'none' ? 12 : 8, 2);
    const feature: FeatureSpec = { teacherLayer: conv ? 't_conv' : 't_hidden', studentLayer: conv ? 's_conv' : 's_hidden', loss, projection };
    const x = tf.randomNormal(conv ? [40, 5, 5, 2] : [40, 6]);
    const y = tf.randomUniform([40], 0, 3, 'int32');
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, alpha: 0.5, features: [feature] });
    await distiller.fit(x, y, { epochs: 1, batchSize: 8 }); // the optimizer's slots exist from here on
    const baseline = tf.memory().numTensors;
    await distiller.fit(x, y, { epochs: 4, batchSize: 8, validationData: [x, y] });
    await distiller.evaluate(x, y);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  test("no leaked tensors: kind 'none', a scheduled weight and clipNorm; masked [batch, time, units] BiLSTM features", async () => {
    const teacher = net('t', 12, 1);
    const student = net('s', 8, 2);
    const x = tf.randomNormal([40, 6]);
    const distiller = new Distiller({ teacher, student });
    const weight = ({ epoch }: { epoch: number }) => 1 + epoch;
    distiller.compile({ optimizer: tf.train.adam(1e-2), kind: 'none', clipNorm: 0.5, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden', weight }] });
    await distiller.fit(x, undefined, { epochs: 1, batchSize: 8 });
    let baseline = tf.memory().numTensors;
    await distiller.fit(x, undefined, { epochs: 3, batchSize: 8, validationData: { x } });
    await distiller.evaluate(x);
    expect(tf.memory().numTensors).toBe(baseline);

    const make = (seed: number, hiddenUnits: number) =>
      withSeed(seed, () => buildBiLstmStudent({ vocabSize: 30, numClasses: 2, embeddingDim: 8, hiddenUnits, fcUnits: 8, pooling: 'max' }));
    const tokens = tf.tensor2d(Array.from({ length: 16 }, (_, row) => [3 + (row % 20), 4, row % 3 === 0 ? 0 : 5, 0]), undefined, 'int32');
    const labels = tf.tensor1d(Array.from({ length: 16 }, (_, row) => row % 2), 'int32');
    const text = new Distiller({ teacher: make(1, 12), student: make(2, 4) });
    text.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, alpha: 0.5, features: [{ teacherLayer: 'bilstm', studentLayer: 'bilstm', loss: 'cosine' }] });
    await text.fit(tokens, labels, { epochs: 1, batchSize: 8 });
    baseline = tf.memory().numTensors;
    const history = await text.fit(tokens, labels, { epochs: 3, batchSize: 8 });
    await text.evaluate(tokens, labels);
    expect(tf.memory().numTensors).toBe(baseline);
    expect(history.history.feature_loss!.every((v) => Number.isFinite(v as number) && (v as number) > 0)).toBe(true);
  });

  test("kind 'none' refuses beta and topK by name (they shape a logit term it drops)", () => {
    const distiller = new Distiller({ teacher: net('t', 12, 1), student: net('s', 8, 2) });
    const features = [{ teacherLayer: 't_hidden', studentLayer: 's_hidden' }];
    expect(codeOf(() => distiller.compile({ optimizer: 'sgd', kind: 'none', beta: 0.3, features }))).toBe('INVALID_BETA');
    expect(codeOf(() => distiller.compile({ optimizer: 'sgd', kind: 'none', topK: 2, features }))).toBe('INVALID_TOP_K');
    expect(() => distiller.compile({ optimizer: 'sgd', kind: 'none', topK: 2, features })).toThrow(/kind 'none' drops/);
  });

  test('compiling again frees the old projections', async () => {
    const teacher = net('t', 12, 1);
    const student = net('s', 8, 2);
    const distiller = new Distiller({ teacher, student });
    const spec = { features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden' }] };
    const optimizer = tf.train.sgd(0.1);
    distiller.compile({ optimizer, temperature: 2, ...spec });
    const before = tf.memory().numTensors;
    distiller.compile({ optimizer, temperature: 2, ...spec });
    expect(tf.memory().numTensors).toBe(before);
    distiller.compile({ optimizer, temperature: 2 });
    expect(tf.memory().numTensors).toBe(before - 2);
  });

  test('parallel training refuses feature terms with a typed error, before any replica starts', async () => {
    const distiller = new Distiller({ teacher: net('t', 12, 1), student: net('s', 8, 2) });
    distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden' }] });
    const begin = vi.fn();
    const error = await distiller.fit(tf.randomNormal([8, 6]), undefined, { parallel: { workers: 2, begin } }).catch((e: KdError) => e);
    expect((error as KdError).code).toBe('PARALLEL_UNSUPPORTED');
    expect((error as KdError).message).toMatch(/feature/);
    expect(begin).not.toHaveBeenCalled();
  });

  test("kind 'none' trains on the feature terms alone (FitNets' first stage); without features it is a typed error", async () => {
    const teacher = net('t', 12, 1);
    const student = net('s', 8, 2);
    const distiller = new Distiller({ teacher, student });
    expect(codeOf(() => distiller.compile({ optimizer: 'adam', kind: 'none' }))).toBe('INVALID_OPTION');
    distiller.compile({ optimizer: tf.train.adam(1e-2), kind: 'none', features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden' }] });
    const head = Float32Array.from(student.getLayer('s_logits').getWeights()[0]!.dataSync());
    const x = tf.randomNormal([64, 6]);
    const history = await distiller.fit(x, undefined, { epochs: 3, batchSize: 16 });
    expect(history.history.distillation_loss).toEqual([0, 0, 0]);
    expect(history.history.loss).toEqual(history.history.feature_loss);
    const logs = await distiller.evaluate(x);
    expect(logs.loss).toBeCloseTo(logs.feature_loss!, 6);
    // Layers above the hinted one get no gradient: unchanged.
    expect(Array.from(student.getLayer('s_logits').getWeights()[0]!.dataSync())).toEqual(Array.from(head));
  });

  test('a weight schedule is evaluated per step; an invalid value is a typed error naming epoch and step, weights untouched', async () => {
    const teacher = net('t', 12, 1);
    const student = net('s', 12, 2);
    const x = tf.randomNormal([32, 6]);
    const seen: string[] = [];
    const weight = ({ epoch, step }: { epoch: number; step: number }) => {
      seen.push(`${epoch}/${step}`);
      return epoch === 0 ? 0 : 3;
    };
    const distiller = new Distiller({ teacher, student });
    distiller.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden', weight }] });
    const history = await distiller.fit(x, undefined, { epochs: 2, batchSize: 16 });
    expect(seen).toEqual(['0/0', '0/1', '1/2', '1/3']);
    const featureLoss = history.history.feature_loss as number[];
    expect(featureLoss[0]).toBe(0);
    expect(featureLoss[1]).toBeGreaterThan(0);

    const broken = new Distiller({ teacher, student });
    broken.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, features: [{ teacherLayer: 't_hidden', studentLayer: 's_hidden', weight: ({ step }) => (step === 1 ? Number.NaN : 1) }] });
    let afterFirstStep: Float32Array[] = [];
    const callbacks = { onBatchEnd: async () => void (afterFirstStep = weightValues(student)) };
    const error = (await broken.fit(x, undefined, { epochs: 1, batchSize: 16, shuffle: false, callbacks }).catch((e: KdError) => e)) as KdError;
    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toMatch(/epoch 0, step 1/);
    // The failing step left the weights as the first step had made them.
    expect(afterFirstStep.length).toBeGreaterThan(0);
    expect(sameValues(weightValues(student), afterFirstStep)).toBe(true);
  });

  test('bad features are typed errors at compile', () => {
    const student = net('s', 8, 2);
    const functionTeacher = new Distiller({ teacher: (x) => tf.zeros([(x as tf.Tensor).shape[0]!, 3]), student });
    expect(codeOf(() => functionTeacher.compile({ optimizer: 'adam', temperature: 2, features: [{ teacherLayer: 'a', studentLayer: 's_hidden' }] }))).toBe(
      'INVALID_TEACHER',
    );
    const distiller = new Distiller({ teacher: net('t', 12, 1), student });
    const compile = (features: FeatureSpec[]) => codeOf(() => distiller.compile({ optimizer: 'adam', temperature: 2, features }));
    expect(compile([{ teacherLayer: 't_hidden', studentLayer: 'missing' }])).toBe('UNKNOWN_LAYER');
    expect(compile([{ teacherLayer: 't_hidden', studentLayer: 's_hidden', projection: 'none' }])).toBe('FEATURE_SHAPE_MISMATCH');
    expect(compile([{ teacherLayer: 't_hidden', studentLayer: 's_hidden', loss: 'attention' }])).toBe('FEATURE_SHAPE_MISMATCH');
  });
});
