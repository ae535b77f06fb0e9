/**
 * Reads the numpy-written fixtures (fixtures/make_fixtures.py) and checks
 * every value bit for bit against numpy's own float32 values. Arrow fixtures
 * are built here with apache-arrow from the same values (pyarrow is not
 * available where the fixtures are generated).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import type { TeacherOutputBatch } from '../../src/index.js';
import { npyHeader } from '../../src/io/npy.js';
import {
  parseIdList,
  readArrowTeacherOutputs,
  readJsonlTeacherOutputs,
  readNpyTeacherOutputs,
} from '../../src/io/index.js';

const dir = join(__dirname, 'fixtures');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
  numClasses: number;
  idsInt: number[];
  idsStr: string[];
  f32Bits: number[];
  f64AsF32Bits: number[];
  f64: number[];
  f16AsF32Bits: number[];
};
const bytes = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
const text = (name: string) => readFileSync(join(dir, name), 'utf8');

async function collect(batches: AsyncIterable<TeacherOutputBatch>) {
  const ids: Array<string | number> = [];
  const values: number[] = [];
  let numClasses = 0;
  for await (const batch of batches) {
    ids.push(...batch.ids);
    values.push(...batch.logits);
    numClasses = batch.numClasses;
  }
  return { ids, bits: Array.from(new Uint32Array(Float32Array.from(values).buffer)), numClasses };
}

/** Float32 from numpy's bit patterns. */
const f32 = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

describe('numpy fixtures', () => {
  it('JSONL with int ids reads numpy float32 values bit for bit (-0, subnormal, max float)', async () => {
    const got = await collect(readJsonlTeacherOutputs(bytes('teacher_int.jsonl'), { source: 'teacher_int.jsonl', batchSize: 4 }));
    expect(got.ids).toEqual(expected.idsInt);
    expect(got.numClasses).toBe(expected.numClasses);
    expect(got.bits).toEqual(expected.f32Bits);
    expect(Object.is(f32(got.bits)[0], -0)).toBe(true);
  });

  it('JSONL with string ids (UTF-8, quotes, tabs) reads the same values', async () => {
    const got = await collect(readJsonlTeacherOutputs(text('teacher_str.jsonl')));
    expect(got.ids).toEqual(expected.idsStr);
    expect(got.bits).toEqual(expected.f32Bits);
  });

  it('NPY float32 with a JSON id list', async () => {
    const ids = parseIdList(text('teacher_f32.ids.json'));
    const got = await collect(readNpyTeacherOutputs(bytes('teacher_f32.npy'), ids, { batchSize: 4 }));
    expect(got.ids).toEqual(expected.idsStr);
    expect(got.bits).toEqual(expected.f32Bits);
  });

  it('NPY float64 rounds to float32 exactly as numpy astype(float32) does; ids one per line', async () => {
    const ids = parseIdList(text('teacher_f64.ids.txt'));
    expect(ids).toEqual(expected.idsInt);
    const got = await collect(readNpyTeacherOutputs(bytes('teacher_f64.npy'), ids));
    expect(got.bits).toEqual(expected.f64AsF32Bits);
  });

  it('NPY float16 widens to float32 exactly', async () => {
    const got = await collect(readNpyTeacherOutputs(bytes('teacher_f16.npy'), parseIdList(text('teacher_f16.ids.json'))));
    expect(got.bits).toEqual(expected.f16AsF32Bits);
  });

  it('reads the NPY file in 1-byte chunks the same', async () => {
    const all = bytes('teacher_f32.npy');
    const chunks = Array.from(all, (b) => Uint8Array.of(b));
    const got = await collect(readNpyTeacherOutputs(chunks, expected.idsStr, { batchSize: 5 }));
    expect(got.bits).toEqual(expected.f32Bits);
  });

  it('writes the same NPY header as numpy', () => {
    expect(Array.from(npyHeader(6, 4))).toEqual(Array.from(bytes('teacher_f32.npy').subarray(0, 128)));
  });

  it('Arrow (built with apache-arrow from the numpy values): FixedSizeList<float32>, List<float64>, int64 ids', async () => {
    const C = expected.numClasses;
    const n = expected.idsInt.length;
    const values32 = f32(expected.f32Bits);
    const fixed = arrow.makeData({
      type: new arrow.FixedSizeList(C, new arrow.Field('item', new arrow.Float32())),
      length: n,
      nullCount: 0,
      child: arrow.makeData({ type: new arrow.Float32(), length: n * C, data: values32 }),
    });
    const table32 = new arrow.Table({
      id: arrow.vectorFromArray(expected.idsStr, new arrow.Utf8()),
      logits: arrow.makeVector(fixed),
    });
    for (const format of ['file', 'stream'] as const) {
      const got = await collect(readArrowTeacherOutputs(arrow.tableToIPC(table32, format)));
      expect(got.ids).toEqual(expected.idsStr);
      expect(got.bits).toEqual(expected.f32Bits);
    }
    // pyarrow's default for Python ints is int64 and for nested lists List<double>.
    const rows = Array.from({ length: n }, (_, r) => expected.f64.slice(r * C, (r + 1) * C));
    const table64 = new arrow.Table({
      id: arrow.vectorFromArray(expected.idsInt.map(BigInt), new arrow.Int64()),
      logits: arrow.vectorFromArray(rows, new arrow.List(new arrow.Field('item', new arrow.Float64()))),
    });
    const got = await collect(readArrowTeacherOutputs(arrow.tableToIPC(table64, 'file')));
    expect(got.ids).toEqual(expected.idsInt);
    expect(got.bits).toEqual(expected.f64AsF32Bits);
  });
});
