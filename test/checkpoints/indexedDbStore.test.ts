/**
 * indexedDbCheckpointStore against fake-indexeddb (a pure-JS IndexedDB in
 * memory). The same store runs in Chromium in test/browser/checkpoint.e2e.ts,
 * with a page reload in the middle of a run.
 */
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { indexedDbCheckpointStore } from '../../src/checkpoints/indexedDbStore.js';
import type { CheckpointRecord } from '../../src/checkpoints/store.js';
import { KdConfigError, KdDataError } from '../../src/errors.js';

function record(name: string, values: number[]): CheckpointRecord {
  return { name, manifest: { step: Number(name.slice(5)), nested: { list: [1, 'two', null] } }, weights: new Float32Array(values).buffer };
}

/** Opens the store's database directly, as another writer (or an older kd-ts) could have left it. */
function rawPut(factory: IDBFactory, database: string, key: string, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const open = factory.open(database, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('records');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const transaction = open.result.transaction('records', 'readwrite');
      transaction.objectStore('records').put(value, key);
      transaction.oncomplete = () => {
        open.result.close();
        resolve();
      };
      transaction.onerror = () => reject(transaction.error);
    };
  });
}

describe('indexedDbCheckpointStore', () => {
  it('writes, lists sorted, reads back bit for bit, replaces and removes', async () => {
    const store = indexedDbCheckpointStore('run', { indexedDB: new IDBFactory() });
    expect(store.keep).toBe(2);
    expect(await store.list()).toEqual([]);
    await store.write(record('step-000000200', [3, 4]));
    await store.write(record('step-000000100', [1, Math.PI]));
    await store.write(record('best', [9]));
    expect(await store.list()).toEqual(['best', 'step-000000100', 'step-000000200']);

    const read = await store.read('step-000000100');
    expect(read.name).toBe('step-000000100');
    expect(read.manifest).toEqual({ step: 100, nested: { list: [1, 'two', null] } });
    expect([...new Float32Array(read.weights)]).toEqual([1, Math.fround(Math.PI)]);

    await store.write(record('step-000000100', [5, 6, 7]));
    expect([...new Float32Array((await store.read('step-000000100')).weights)]).toEqual([5, 6, 7]);
    await store.remove('step-000000100');
    await store.remove('step-000000100'); // already gone: no error
    expect(await store.list()).toEqual(['best', 'step-000000200']);
  });

  it('keeps a copy: changing the caller\'s buffer after write changes nothing stored', async () => {
    const store = indexedDbCheckpointStore('copy', { indexedDB: new IDBFactory() });
    const weights = new Float32Array([1, 2]);
    await store.write({ name: 'step-1', manifest: {}, weights: weights.buffer });
    weights[0] = 99;
    expect([...new Float32Array((await store.read('step-1')).weights)]).toEqual([1, 2]);
  });

  it('keeps runs of different names apart, and a second store of the same name sees the first one\'s records', async () => {
    const factory = new IDBFactory();
    await indexedDbCheckpointStore('a', { indexedDB: factory }).write(record('step-1', [1]));
    expect(await indexedDbCheckpointStore('b', { indexedDB: factory }).list()).toEqual([]);
    // A reloaded page opens the store anew.
    const again = indexedDbCheckpointStore('a', { indexedDB: factory, keep: 5 });
    expect(again.keep).toBe(5);
    expect(await again.list()).toEqual(['step-1']);
  });

  it('rejects a missing or partial record with CHECKPOINT_CORRUPT, naming the record', async () => {
    const factory = new IDBFactory();
    const store = indexedDbCheckpointStore('broken', { indexedDB: factory });
    await store.list(); // creates the database
    await expect(store.read('step-404')).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT', name: 'KdDataError' });
    await expect(store.read('step-404')).rejects.toThrow(/step-404.*does not exist/);

    const good = { format: 1, name: 'x', manifest: { a: 1 }, weights: new ArrayBuffer(8), byteLength: 8 };
    const partial: Array<[string, unknown, RegExp]> = [
      ['no-weights', { ...good, weights: undefined }, /has no weights/],
      ['short-weights', { ...good, weights: new ArrayBuffer(4) }, /4 bytes of weights, 8 were written/],
      ['no-manifest', { ...good, manifest: undefined }, /has no manifest/],
      ['not-a-record', 'hello', /not a kd-ts checkpoint record/],
      ['future', { ...good, format: 2 }, /format 2/],
    ];
    // fake-indexeddb's connection from list() stays open; the raw writer opens its own at the same version.
    for (const [key, value] of partial) await rawPut(factory, 'kd-ts-checkpoints:broken', key, value);
    for (const [key, , message] of partial) {
      const error = await store.read(key).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, key).toBeInstanceOf(KdDataError);
      expect(error, key).toMatchObject({ code: 'CHECKPOINT_CORRUPT', message: expect.stringMatching(message) });
    }
    expect(await store.list()).toContain('short-weights'); // listed, but refused on read: kd-ts falls back to an older one
  });

  it('an aborted write leaves the previous record as it was', async () => {
    const factory = new IDBFactory();
    const store = indexedDbCheckpointStore('abort', { indexedDB: factory });
    await store.write(record('step-000000100', [1, 2]));
    // A write the page never finishes (reload, crash): the transaction aborts after its put.
    await new Promise<void>((resolve) => {
      const open = factory.open('kd-ts-checkpoints:abort', 1);
      open.onsuccess = () => {
        const transaction = open.result.transaction('records', 'readwrite');
        transaction.objectStore('records').put({ format: 1, manifest: {}, weights: new ArrayBuffer(0), byteLength: 0 }, 'step-000000100');
        transaction.objectStore('records').put({ format: 1, manifest: {}, weights: new ArrayBuffer(0), byteLength: 0 }, 'step-000000200');
        transaction.abort();
        transaction.onabort = () => {
          open.result.close();
          resolve();
        };
      };
    });
    expect(await store.list()).toEqual(['step-000000100']);
    expect([...new Float32Array((await store.read('step-000000100')).weights)]).toEqual([1, 2]);
  });

  it('refuses bad options and an environment without IndexedDB with typed errors', () => {
    expect(() => indexedDbCheckpointStore('', { indexedDB: new IDBFactory() })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    for (const keep of [0, -1, 1.5, Number.NaN]) {
      expect(() => indexedDbCheckpointStore('x', { keep, indexedDB: new IDBFactory() })).toThrow(KdConfigError);
    }
    // Node has no global indexedDB.
    expect('indexedDB' in globalThis).toBe(false);
    expect(() => indexedDbCheckpointStore('x')).toThrow(expect.objectContaining({ code: 'CHECKPOINT_UNSUPPORTED', message: expect.stringMatching(/fileCheckpointStore/) }));
  });

  it('refuses a manifest IndexedDB cannot clone with a typed error, writing nothing', async () => {
    const store = indexedDbCheckpointStore('clone', { indexedDB: new IDBFactory() });
    await expect(store.write({ name: 'step-1', manifest: { f: () => 1 }, weights: new ArrayBuffer(4) })).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
      message: expect.stringMatching(/plain JSON/),
    });
    expect(await store.list()).toEqual([]);
  });

  it('reports a database that cannot be opened as CHECKPOINT_UNSUPPORTED', async () => {
    const factory = new IDBFactory();
    // A newer version than the store's: open() fails with a VersionError.
    await new Promise<void>((resolve) => {
      const open = factory.open('kd-ts-checkpoints:newer', 7);
      open.onsuccess = () => {
        open.result.close();
        resolve();
      };
    });
    const store = indexedDbCheckpointStore('newer', { indexedDB: factory });
    await expect(store.list()).rejects.toMatchObject({ code: 'CHECKPOINT_UNSUPPORTED', message: expect.stringMatching(/kd-ts-checkpoints:newer/) });
  });
});
