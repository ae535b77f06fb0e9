import { describe, expect, it } from 'vitest';
import { crc32, decodeCheckpoint, encodeCheckpoint } from '../../src/checkpoints/format.js';

const arrays = [
  { group: 'student', name: 'dense/kernel', dtype: 'float32' as const, shape: [2, 2], data: new Float32Array([1.5, -0, Math.fround(0.1), 3]) },
  { group: 'order', name: 'order', dtype: 'int32' as const, shape: [3], data: new Int32Array([2, 0, 1]) },
];

describe('checkpoint format', () => {
  it('round-trips arrays bit for bit and non-finite numbers in the state', () => {
    const record = encodeCheckpoint('step-000000001', arrays, { position: { step: 1 }, best: Infinity, low: -Infinity, nan: NaN });
    const { state, arrays: back } = decodeCheckpoint(record);
    expect(state).toEqual({ position: { step: 1 }, best: Infinity, low: -Infinity, nan: NaN });
    expect(back.map((a) => [a.group, a.name, a.dtype, a.shape])).toEqual(arrays.map((a) => [a.group, a.name, a.dtype, a.shape]));
    expect(Array.from(new Uint32Array(back[0]!.data.buffer))).toEqual(Array.from(new Uint32Array(arrays[0]!.data.buffer)));
    expect(Array.from(back[1]!.data)).toEqual([2, 0, 1]);
  });

  it('computes zlib\'s CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('detects truncated and damaged blobs and foreign manifests (CHECKPOINT_CORRUPT)', () => {
    const record = encodeCheckpoint('a', arrays, {});
    expect(() => decodeCheckpoint({ ...record, weights: record.weights.slice(0, 10) })).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
    const damaged = record.weights.slice(0);
    const view = new Uint8Array(damaged);
    view[5] = view[5]! ^ 1;
    expect(() => decodeCheckpoint({ ...record, weights: damaged })).toThrow(/CRC-32/);
    expect(() => decodeCheckpoint({ ...record, manifest: { hello: 1 } })).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
    expect(() => decodeCheckpoint({ ...record, manifest: { ...record.manifest, version: 99 } })).toThrow(expect.objectContaining({ code: 'CHECKPOINT_UNSUPPORTED' }));
  });
});
