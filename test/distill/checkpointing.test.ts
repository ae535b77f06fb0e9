import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it, vi } from 'vitest';
import type { CheckpointRecord, CheckpointStore } from '../../src/checkpoints/store.js';
import { Distiller } from '../../src/distill/Distiller.js';
import { withSeed } from '../../src/distill/seed.js';

/** A store in memory that copies what it is given. */
export function memoryStore(keep = 2): CheckpointStore & { records: Map<string, CheckpointRecord> } {
  const records = new Map<string, CheckpointRecord>();
  return {
    keep,
    records,
    async write(r) {
      records.set(r.name, { name: r.name, manifest: JSON.parse(JSON.stringify(r.manifest)) as Record<string, unknown>, weights: r.weights.slice(0) });
    },
    async list() {
      return [...records.keys()].sort();
    },
    async read(name) {
      const r = records.get(name);
      if (r === undefined) throw new Error(`no ${name}`);
      return { ...r, weights: r.weights.slice(0) };
    },
    async remove(name) {
      records.delete(name);
    },
  };
}

const teacher = withSeed(1, () => tfl.sequential({ layers: [tfl.layers.dense({ units: 4, inputShape: [6] })] }));
const x = withSeed(2, () => tf.randomNormal([40, 6]));
const y = withSeed(3, () => tf.randomUniform([40], 0, 4, 'int32'));

function build(optimizer: () => tf.Optimizer = () => tf.train.adam(0.01), temperature: number | ((at: { epoch: number }) => number) = ({ epoch }) => 4 - epoch) {
  const student = withSeed(4, () =>
    tfl.sequential({ layers: [tfl.layers.dense({ units: 8, activation: 'relu', inputShape: [6] }), tfl.layers.dropout({ rate: 0.3 }), tfl.layers.dense({ units: 4 })] }),
  );
  const distiller = new Distiller({ teacher, student });
  distiller.compile({ optimizer: optimizer(), temperature, alpha: 0.3 });
  return distiller;
}

const bits = (m: tfl.LayersModel) => m.getWeights().map((w) => Array.from(new Uint32Array(new Float32Array(w.dataSync()).buffer)));

class Crash extends Error {}

/** Callbacks that throw a {@link Crash} at the end of the n-th step of the fit they are given to. */
function crashAfterStep(n: number) {
  let steps = 0;
  return { onBatchEnd: async () => { if (++steps === n) throw new Crash(); } };
}

/** A run of `args` crashed at step 7 with checkpoints every 2 steps, its newest checkpoint (step 6) truncated. */
async function crashedWithDamagedNewest(args: { epochs: number; batchSize: number; seed: number }) {
  const store = memoryStore();
  await expect(build().fit(x, y, { ...args, checkpoint: { store, everySteps: 2 }, callbacks: crashAfterStep(7) })).rejects.toThrow(Crash);
  const newest = store.records.get('step-000000006')!;
  store.records.set('step-000000006', { ...newest, weights: newest.weights.slice(0, 100) });
  return store;
}

describe('fit with checkpoints: resume', () => {
  it('resumes bit for bit after a crash mid-epoch (dropout, Adam, a temperature schedule)', async () => {
    const args = { epochs: 3, batchSize: 8, seed: 7 };
    const straight = build();
    const h0 = await straight.fit(x, y, args);

    const store = memoryStore();
    const crashing = build();
    await expect(crashing.fit(x, y, { ...args, checkpoint: { store, everySteps: 3 }, callbacks: crashAfterStep(8) })).rejects.toThrow(Crash);
    expect(await store.list()).toEqual(['step-000000003', 'step-000000006']);

    const before = tf.memory().numTensors;
    const resumed = build();
    const h1 = await resumed.fit(x, y, { ...args, checkpoint: { store, everySteps: 3 }, resume: true });
    expect(bits(resumed.student)).toEqual(bits(straight.student));
    expect(h1.history).toEqual(h0.history);
    expect(h1.epoch).toEqual(h0.epoch);
    // The last one is the run's end (step 15), kept with the one before.
    expect(await store.list()).toEqual(['step-000000012', 'step-000000015']);

    // A finished run: its History, no training.
    const again = build();
    const h2 = await again.fit(x, y, { ...args, checkpoint: { store }, resume: true });
    expect(h2.history).toEqual(h0.history);
    expect(bits(again.student)).toEqual(bits(straight.student));
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 64);
  });

  it('falls back to the previous checkpoint when the newest is damaged, with a warning', async () => {
    const args = { epochs: 2, batchSize: 8, seed: 7 };
    const straight = build();
    await straight.fit(x, y, args);
    const store = await crashedWithDamagedNewest(args);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const resumed = build();
    await resumed.fit(x, y, { ...args, checkpoint: { store, everySteps: 2 }, resume: true });
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/step-000000006 cannot be used .*truncated/));
    warn.mockRestore();
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('keeps the checkpoint it rewrote under a damaged one\'s name, so a second crash still resumes from it', async () => {
    const args = { epochs: 2, batchSize: 8, seed: 7 };
    const straight = build();
    await straight.fit(x, y, args);
    const store = await crashedWithDamagedNewest(args);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    // Falls back to step 4, runs steps 5 and 6 again (writing step-000000006 anew), and crashes during step 7.
    await expect(build().fit(x, y, { ...args, checkpoint: { store, everySteps: 2 }, resume: true, callbacks: crashAfterStep(3) })).rejects.toThrow(Crash);
    expect([...store.records.keys()]).toEqual(['step-000000004', 'step-000000006']);
    const resumed = build();
    await resumed.fit(x, y, { ...args, checkpoint: { store, everySteps: 2 }, resume: true });
    // The second resume started from the rewritten step 6: no second fallback.
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('a teacher that throws: TEACHER_FAILED with the cause, the store untouched, and the run resumes from it', async () => {
    const args = { epochs: 2, batchSize: 8, seed: 7 };
    const straight = build();
    await straight.fit(x, y, args);
    let calls = 0;
    const cause = new Error('teacher offline');
    const flaky = (input: unknown) => {
      if (++calls === 6) throw cause;
      return teacher.predict(input as tf.Tensor) as tf.Tensor;
    };
    const student = withSeed(4, () =>
      tfl.sequential({ layers: [tfl.layers.dense({ units: 8, activation: 'relu', inputShape: [6] }), tfl.layers.dropout({ rate: 0.3 }), tfl.layers.dense({ units: 4 })] }),
    );
    const failing = new Distiller({ teacher: flaky, student });
    failing.compile({ optimizer: tf.train.adam(0.01), temperature: ({ epoch }) => 4 - epoch, alpha: 0.3 });
    const store = memoryStore();
    const error = await failing.fit(x, y, { ...args, checkpoint: { store, everySteps: 2 } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TEACHER_FAILED', cause, message: expect.stringMatching(/teacher function failed at epoch 1, batch 0: teacher offline/) });
    expect([...store.records.keys()]).toEqual(['step-000000002', 'step-000000004']);
    const resumed = build();
    await resumed.fit(x, y, { ...args, checkpoint: { store, everySteps: 2 }, resume: true });
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('everyEpochs: a checkpoint every n epochs and at the run\'s end; a resume from one is exact', async () => {
    const args = { epochs: 5, batchSize: 8, seed: 7 };
    const straight = build(undefined, ({ epoch }) => 4 - epoch / 2);
    await straight.fit(x, y, args);
    const store = memoryStore(10);
    const written: string[] = [];
    const write = store.write.bind(store);
    store.write = async (r) => { written.push(r.name); return write(r); };
    let epochs = 0;
    const crash = { onEpochEnd: async () => { if (++epochs === 3) throw new Crash(); } };
    await expect(build(undefined, ({ epoch }) => 4 - epoch / 2).fit(x, y, { ...args, checkpoint: { store, everyEpochs: 2 }, callbacks: crash })).rejects.toThrow(Crash);
    // 5 steps an epoch: the end of epoch 2 is step 10.
    expect(written).toEqual(['step-000000010']);
    const resumed = build(undefined, ({ epoch }) => 4 - epoch / 2);
    await resumed.fit(x, y, { ...args, checkpoint: { store, everyEpochs: 2 }, resume: true });
    expect(written).toEqual(['step-000000010', 'step-000000020', 'step-000000025']);
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('refuses a checkpoint of another run (CHECKPOINT_MISMATCH naming what differs)', async () => {
    const store = memoryStore();
    await build().fit(x, y, { epochs: 1, batchSize: 8, seed: 7, checkpoint: { store } });
    await expect(build(() => tf.train.adam(0.02)).fit(x, y, { epochs: 1, batchSize: 8, seed: 7, checkpoint: { store }, resume: true })).rejects.toThrow(
      expect.objectContaining({ code: 'CHECKPOINT_MISMATCH', message: expect.stringMatching(/optimizer\.learningRate: saved 0\.01, now 0\.02/) }),
    );
    const other = tfl.sequential({ layers: [tfl.layers.dense({ units: 4, inputShape: [6] })] });
    const d = new Distiller({ teacher, student: other });
    d.compile({ optimizer: tf.train.adam(0.01), temperature: ({ epoch }) => 4 - epoch, alpha: 0.3 });
    await expect(d.fit(x, y, { epochs: 1, batchSize: 8, seed: 7, checkpoint: { store }, resume: true })).rejects.toThrow(expect.objectContaining({ code: 'CHECKPOINT_MISMATCH', message: expect.stringMatching(/student\.layers/) }));
  });

  it('gives typed errors for Adamax, parallel, resume without a store', async () => {
    await expect(build(() => tf.train.adamax(0.01)).fit(x, y, { checkpoint: { store: memoryStore() } })).rejects.toMatchObject({ code: 'CHECKPOINT_UNSUPPORTED' });
    await expect(build().fit(x, y, { resume: true })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(build().fit(x, y, { checkpoint: { store: memoryStore() }, parallel: {} as never })).rejects.toMatchObject({ code: 'PARALLEL_UNSUPPORTED' });
  });

  it('fitDataset: everySteps without deterministic is refused; epoch-end checkpoints resume at the epoch boundary', async () => {
    const dataset = { iterator: async () => { let i = 0; return { next: async () => (i < 5 ? { done: false as const, value: { xs: tf.slice(x, [8 * i], [8]), ys: tf.slice(y, [8 * i++], [8]) } } : { done: true as const, value: undefined }) }; } };
    await expect(build().fitDataset(dataset, { checkpoint: { store: memoryStore(), everySteps: 2 } })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(/deterministic: true/) });
    const straight = build();
    const h0 = await straight.fitDataset(dataset, { epochs: 2, seed: 5 });
    const store = memoryStore();
    await build().fitDataset(dataset, { epochs: 1, seed: 5, checkpoint: { store } });
    const resumed = build();
    const h1 = await resumed.fitDataset(dataset, { epochs: 2, seed: 5, checkpoint: { store }, resume: true });
    expect(h1.history).toEqual(h0.history);
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('fitDataset deterministic, one pass an epoch: resumes from an epoch-end checkpoint without skipping the next epoch, and mid-epoch', async () => {
    const dataset = { iterator: async () => { let i = 0; return { next: async () => (i < 5 ? { done: false as const, value: { xs: tf.slice(x, [8 * i], [8]), ys: tf.slice(y, [8 * i++], [8]) } } : { done: true as const, value: undefined }) }; } };
    const args = { epochs: 3, seed: 5, deterministic: true };
    const straight = build();
    const h0 = await straight.fitDataset(dataset, args);
    // The run stopped after its first epoch: the newest checkpoint is the epoch end's.
    const store = memoryStore();
    await build().fitDataset(dataset, { ...args, epochs: 1, checkpoint: { store } });
    const resumed = build();
    const h1 = await resumed.fitDataset(dataset, { ...args, checkpoint: { store }, resume: true });
    expect(h1.history).toEqual(h0.history);
    expect(bits(resumed.student)).toEqual(bits(straight.student));
    // Killed at step 12 (epoch 3, batch 2) with checkpoints every 3 steps: the newest is step 9, mid-epoch 2.
    const midStore = memoryStore();
    await expect(build().fitDataset(dataset, { ...args, callbacks: crashAfterStep(12), checkpoint: { store: midStore, everySteps: 3 } })).rejects.toThrow(Crash);
    const again = build();
    const h2 = await again.fitDataset(dataset, { ...args, checkpoint: { store: midStore, everySteps: 3 }, resume: true });
    expect(h2.history).toEqual(h0.history);
    expect(bits(again.student)).toEqual(bits(straight.student));
  });

  it('fitDataset deterministic with batchesPerEpoch: resumes mid-epoch from the iterator position, bit for bit', async () => {
    const dataset = { iterator: async () => { let i = 0; return { next: async () => (i < 5 ? { done: false as const, value: { xs: tf.slice(x, [8 * i], [8]), ys: tf.slice(y, [8 * i++], [8]) } } : { done: true as const, value: undefined }) }; } };
    const args = { epochs: 3, seed: 5, batchesPerEpoch: 3, deterministic: true };
    const straight = build();
    const h0 = await straight.fitDataset(dataset, args);
    const store = memoryStore();
    await expect(build().fitDataset(dataset, { ...args, callbacks: crashAfterStep(5), checkpoint: { store, everySteps: 2 } })).rejects.toThrow(Crash);
    const resumed = build();
    const h1 = await resumed.fitDataset(dataset, { ...args, checkpoint: { store, everySteps: 2 }, resume: true });
    expect(h1.history).toEqual(h0.history);
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('saves and restores feature-distillation projections', async () => {
    const fteacher = withSeed(11, () => tfl.sequential({ layers: [tfl.layers.dense({ units: 10, activation: 'relu', inputShape: [6], name: 'ck_t_hidden' }), tfl.layers.dense({ units: 4 })] }));
    // The projection (5 -> 10 units) is initialized at compile: seeded too.
    const fbuild = () => withSeed(12, () => {
      const student = tfl.sequential({ layers: [tfl.layers.dense({ units: 5, activation: 'relu', inputShape: [6] }), tfl.layers.dense({ units: 4 })] });
      const d = new Distiller({ teacher: fteacher, student });
      d.compile({ optimizer: tf.train.adam(1e-2), temperature: 2, features: [{ teacherLayer: 'ck_t_hidden', studentLayer: student.layers[0]!.name }] });
      return d;
    });
    const args = { epochs: 2, batchSize: 8, seed: 9 };
    const straight = fbuild();
    const h0 = await straight.fit(x, undefined, args);
    const store = memoryStore();
    await expect(fbuild().fit(x, undefined, { ...args, checkpoint: { store, everySteps: 3 }, callbacks: crashAfterStep(7) })).rejects.toThrow(Crash);
    const saved = (await store.read('step-000000006')).manifest as { arrays: Array<{ group: string }> };
    expect(saved.arrays.filter((a) => a.group === 'projections').length).toBeGreaterThan(0);
    const resumed = fbuild();
    const h1 = await resumed.fit(x, undefined, { ...args, checkpoint: { store, everySteps: 3 }, resume: true });
    expect(h1.history).toEqual(h0.history);
    expect(bits(resumed.student)).toEqual(bits(straight.student));
  });

  it('keeps earlyStopping\'s patience across a resume, and the best epoch apart (keepBest)', async () => {
    const validationData: [tf.Tensor, tf.Tensor] = [x, y];
    const run = (store: ReturnType<typeof memoryStore>, epochs: number, resume: boolean) =>
      build(() => tf.train.sgd(1), 2).fit(x, y, {
        epochs, batchSize: 8, seed: 7, validationData, resume,
        callbacks: tfl.callbacks.earlyStopping({ monitor: 'val_loss', patience: 3, minDelta: 10 }),
        checkpoint: { store, keepBest: { monitor: 'val_loss' } },
      });
    const h0 = await run(memoryStore(), 8, false);
    const store = memoryStore(1);
    await run(store, 3, false);
    const h1 = await run(store, 8, true);
    expect(h0.epoch).toEqual([0, 1, 2, 3]); // no gain of 10: stopped after 3 epochs' patience
    expect(h1.epoch).toEqual(h0.epoch);
    expect(h1.history).toEqual(h0.history);
    const losses = h0.history.val_loss as number[];
    const best = (await store.read('best')).manifest as { position: { epoch: number } };
    expect(best.position.epoch).toBe(losses.indexOf(Math.min(...losses)) + 1);
    expect((await store.list()).filter((n) => n.startsWith('step-'))).toHaveLength(1);

    // restore: the best epoch's weights in the student at the end, also when resuming the finished run.
    const bestStore = memoryStore();
    const withBest = build(() => tf.train.sgd(1), 2);
    await withBest.fit(x, y, { epochs: 3, batchSize: 8, seed: 7, validationData, checkpoint: { store: bestStore, keepBest: { monitor: 'val_loss', restore: true } } });
    const again = build(() => tf.train.sgd(1), 2);
    await again.fit(x, y, { epochs: 3, batchSize: 8, seed: 7, validationData, resume: true, checkpoint: { store: bestStore, keepBest: { monitor: 'val_loss', restore: true } } });
    expect(bits(again.student)).toEqual(bits(withBest.student));
    expect((await withBest.evaluate(x, y)).loss).toBeCloseTo(Math.min(...((await bestStore.read('best')).manifest as { history: { history: { val_loss: number[] } } }).history.history.val_loss), 5);
  });

  it('leaves no tensors behind: saving, and resuming into the same distiller', async () => {
    const distiller = build();
    const store = memoryStore();
    await distiller.fit(x, y, { epochs: 1, batchSize: 8, seed: 7, checkpoint: { store, everySteps: 2 } });
    const baseline = tf.memory().numTensors;
    await distiller.fit(x, y, { epochs: 2, batchSize: 8, seed: 7, checkpoint: { store, everySteps: 2 } });
    expect(tf.memory().numTensors).toBe(baseline);
    await distiller.fit(x, y, { epochs: 3, batchSize: 8, seed: 7, checkpoint: { store, everySteps: 2 }, resume: true });
    expect(tf.memory().numTensors).toBe(baseline);
  });
});

