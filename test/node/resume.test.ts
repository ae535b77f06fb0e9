import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Distiller } from '../../src/distill/Distiller.js';
import { withSeed } from '../../src/distill/seed.js';
import { fileCheckpointStore } from '../../src/node/fileCheckpointStore.js';

const script = fileURLToPath(new URL('./fixtures/resumeChild.ts', import.meta.url));
let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'kd-resume-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

interface Result { weights: string[]; epoch: number[]; history: Record<string, number[]> }

/** Runs the child; resolves with its exit code or signal. */
function child(mode: string, dir: string, out: string, kill?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, KD_KILL: kill ?? '' };
    const p = spawn(process.execPath, ['--import', 'tsx', script, mode, dir, out], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => (signal === 'SIGKILL' || code === 0 ? resolve(signal ?? 'ok') : reject(new Error(`child exited ${code}: ${stderr}`))));
  });
}

const read = async (file: string) => JSON.parse(await fs.readFile(file, 'utf8')) as Result;

/** Kills a child at `kill`, starts it again on the same directory, returns the resumed result. */
async function killAndResume(mode: string, kill: string): Promise<{ result: Result; signal: string; names: string[]; after: string[] }> {
  const dir = path.join(root, `${mode}-${kill.replace(':', '-')}`);
  const out = `${dir}.json`;
  const signal = await child(mode, dir, out, kill);
  const names = (await fs.readdir(dir).catch(() => [] as string[])).sort();
  await child(mode, dir, out);
  return { result: await read(out), signal, names, after: (await fs.readdir(dir)).sort() };
}

describe('resume after SIGKILL (child processes on cpu)', () => {
  it.each(['fit', 'dataset'])('%s: killed mid-epoch, right after a checkpoint write and during one, ends bit for bit as an uninterrupted run', async (mode) => {
    const straightOut = path.join(root, `${mode}-straight.json`);
    const [, ...runs] = await Promise.all([
      child(mode, path.join(root, `${mode}-straight`), straightOut),
      killAndResume(mode, 'step:6'),
      killAndResume(mode, 'afterSave:8'),
      killAndResume(mode, 'duringSave:12'),
      killAndResume(mode, 'betweenRenames:12'),
    ]);
    const straight = await read(straightOut);
    expect(straight.epoch).toEqual([0, 1, 2]);
    for (const run of runs) {
      expect(run.signal).toBe('SIGKILL');
      expect(run.result.weights).toEqual(straight.weights);
      expect(run.result.history).toEqual(straight.history);
      expect(run.result.epoch).toEqual(straight.epoch);
    }
    // Killed at step 6: step-000000004 was its newest; killed after writing step 8: it is there.
    expect(runs[0]!.names.filter((n) => n.endsWith('.json'))).toEqual(['step-000000004.json']);
    expect(runs[1]!.names.filter((n) => n.endsWith('.json'))).toEqual(['step-000000004.json', 'step-000000008.json']);
    // Killed inside the write of step 12: its weights are in a temporary file, or in place without a manifest;
    // step 8 is the newest checkpoint either way, and the resumed run's write of step 12 cleared what was left.
    for (const run of [runs[2]!, runs[3]!]) {
      expect(run.names.filter((n) => n.endsWith('.json'))).toEqual(['step-000000004.json', 'step-000000008.json']);
      expect(run.names.filter((n) => n.startsWith('step-000000012.')).length).toBeGreaterThan(0);
    }
    expect(runs[2]!.names.some((n) => /^step-000000012\.[0-9a-f-]{36}\.bin\.[0-9a-f-]{36}\.tmp$/.test(n))).toBe(true);
    expect(runs[3]!.names.some((n) => /^step-000000012\.[0-9a-f-]{36}\.bin$/.test(n))).toBe(true);
    for (const run of runs) expect(run.after.filter((n) => n.endsWith('.tmp') || !n.startsWith('step-'))).toEqual([]);
    for (const run of runs) expect(run.after.filter((n) => n.endsWith('.bin')).length).toBe(run.after.filter((n) => n.endsWith('.json')).length);
  }, 180_000);
});

describe('resume from damaged checkpoints (file store)', () => {
  const teacher = withSeed(1, () => tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [5] })] }));
  const x = withSeed(2, () => tf.randomNormal([24, 5]));
  const build = (units = 3) => {
    const student = withSeed(4, () => tfl.sequential({ layers: [tfl.layers.dense({ units, inputShape: [5] }), tfl.layers.dense({ units: 3 })] }));
    const d = new Distiller({ teacher, student });
    d.compile({ optimizer: tf.train.adam(0.01), temperature: 2 });
    return d;
  };
  const args = { epochs: 2, batchSize: 8, seed: 3 };
  const bits = (d: Distiller) => d.student.getWeights().map((w) => Array.from(w.dataSync()));

  async function interrupted(dir: string): Promise<string[]> {
    let steps = 0;
    const crash = { onBatchEnd: async () => { if (++steps === 5) throw new Error('crash'); } };
    await expect(build().fit(x, undefined, { ...args, callbacks: crash, checkpoint: { store: fileCheckpointStore(dir), everySteps: 2 } })).rejects.toThrow('crash');
    return fs.readdir(dir);
  }

  it('a truncated weights file or garbage JSON in the newest: falls back to the previous one, with a warning', async () => {
    const straight = build();
    await straight.fit(x, undefined, args);
    for (const damage of ['truncate', 'garbage'] as const) {
      const dir = path.join(root, `damaged-${damage}`);
      const files = await interrupted(dir);
      expect(files.filter((f) => f.endsWith('.json')).sort()).toEqual(['step-000000002.json', 'step-000000004.json']);
      if (damage === 'truncate') {
        const bin = files.find((f) => f.startsWith('step-000000004.') && f.endsWith('.bin'))!;
        const bytes = await fs.readFile(path.join(dir, bin));
        await fs.writeFile(path.join(dir, bin), bytes.subarray(0, bytes.length - 7));
      } else {
        await fs.writeFile(path.join(dir, 'step-000000004.json'), '{"kdCheckpointFile": 1, "weig');
      }
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      const resumed = build();
      await resumed.fit(x, undefined, { ...args, checkpoint: { store: fileCheckpointStore(dir), everySteps: 2 }, resume: true });
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(damage === 'truncate' ? /step-000000004 .*truncated/ : /step-000000004 .*not JSON/));
      warn.mockRestore();
      expect(bits(resumed)).toEqual(bits(straight));
    }
  });

  it('every checkpoint damaged: CHECKPOINT_CORRUPT, nothing removed', async () => {
    const dir = path.join(root, 'all-damaged');
    const files = await interrupted(dir);
    for (const f of files.filter((n) => n.endsWith('.json'))) await fs.writeFile(path.join(dir, f), 'garbage');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    await expect(build().fit(x, undefined, { ...args, checkpoint: { store: fileCheckpointStore(dir) }, resume: true })).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    warn.mockRestore();
    expect((await fs.readdir(dir)).sort()).toEqual(files.sort());
  });

  it('a checkpoint from another student: CHECKPOINT_MISMATCH', async () => {
    const dir = path.join(root, 'other-student');
    await interrupted(dir);
    await expect(build(4).fit(x, undefined, { ...args, checkpoint: { store: fileCheckpointStore(dir) }, resume: true })).rejects.toMatchObject({
      code: 'CHECKPOINT_MISMATCH',
      message: expect.stringMatching(/student\.layers: saved .* now /),
    });
  });
});
