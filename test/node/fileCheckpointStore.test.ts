import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileCheckpointStore } from '../../src/node/fileCheckpointStore.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kd-ckpt-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const record = (name: string, fill: number) => ({ name, manifest: { fill }, weights: new Float32Array([fill, fill + 1]).buffer });

describe('fileCheckpointStore', () => {
  it('writes, lists (sorted), reads, replaces and removes records', async () => {
    const store = fileCheckpointStore(path.join(dir, 'run'));
    expect(store.keep).toBe(2);
    expect(await store.list()).toEqual([]);
    await store.write(record('step-000000002', 2));
    await store.write(record('step-000000001', 1));
    await store.write(record('best', 7));
    await store.write(record('best', 8));
    expect(await store.list()).toEqual(['best', 'step-000000001', 'step-000000002']);
    const best = await store.read('best');
    expect(best.manifest).toEqual({ fill: 8 });
    expect(Array.from(new Float32Array(best.weights))).toEqual([8, 9]);
    // The replaced record's weights file is gone: one .bin per record.
    expect((await fs.readdir(path.join(dir, 'run'))).filter((f) => f.endsWith('.bin'))).toHaveLength(3);
    await store.remove('step-000000001');
    await store.remove('step-000000001');
    expect(await store.list()).toEqual(['best', 'step-000000002']);
  });

  it('lists only complete checkpoints: a weights file without its manifest (a crash mid-write) is not one', async () => {
    const store = fileCheckpointStore(dir);
    await store.write(record('step-000000001', 1));
    await fs.writeFile(path.join(dir, 'step-000000002.abc.bin'), 'half');
    await fs.writeFile(path.join(dir, 'step-000000002.json.123.tmp'), '{"kdCh');
    expect(await store.list()).toEqual(['step-000000001']);
  });

  it('gives CHECKPOINT_CORRUPT for garbage JSON and a missing weights file', async () => {
    const store = fileCheckpointStore(dir);
    await store.write(record('a', 1));
    await store.write(record('b', 1));
    await fs.writeFile(path.join(dir, 'a.json'), '{ not json');
    await expect(store.read('a')).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    for (const f of await fs.readdir(dir)) if (f.startsWith('b.') && f.endsWith('.bin')) await fs.rm(path.join(dir, f));
    await expect(store.read('b')).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
  });

  it('refuses bad names and keep values', () => {
    expect(() => fileCheckpointStore(dir, { keep: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    const store = fileCheckpointStore(dir);
    return expect(store.write(record('../x', 1))).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
