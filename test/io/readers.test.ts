import * as arrow from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { KdDataError, KdShapeError, type ExampleId, type TeacherOutputBatch } from '../../src/index.js';
import {
  checkTeacherOutputs,
  encodeArrowTeacherOutputs,
  encodeIdList,
  encodeJsonlTeacherOutputs,
  encodeNpyTeacherOutputs,
  parseIdList,
  readArrowTeacherOutputs,
  readJsonlTeacherOutputs,
  readNpyTeacherOutputs,
} from '../../src/io/index.js';
import { npyHeader } from '../../src/io/npy.js';

async function drain<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function rows(batches: AsyncIterable<TeacherOutputBatch>) {
  const ids: ExampleId[] = [];
  const values: number[] = [];
  for await (const b of batches) {
    ids.push(...b.ids);
    values.push(...b.logits);
  }
  return { ids, values: Float32Array.from(values) };
}

async function bytesOf(chunks: AsyncIterable<Uint8Array | string>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(typeof c === 'string' ? new TextEncoder().encode(c) : c.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Values that stress a text round trip: -0, subnormals, max float, 0.1, 1/3. */
const tricky = new Float32Array([-0, 1e-45, 3.4028234663852886e38, 0.1, 1 / 3, -2.5e-38, 123456.789, -1]);
const trickyBatch = (ids: ExampleId[]): TeacherOutputBatch => ({ ids, logits: tricky, numClasses: 4 });
const sameBits = (a: Float32Array, b: Float32Array) =>
  expect(Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))).toEqual(
    Array.from(new Uint32Array(b.buffer, b.byteOffset, b.length)),
  );

describe('in-memory round trips are bit-identical', () => {
  it('JSONL', async () => {
    let text = '';
    for await (const chunk of encodeJsonlTeacherOutputs([trickyBatch(['a', 'b'])])) text += chunk;
    const back = await rows(readJsonlTeacherOutputs(text));
    expect(back.ids).toEqual(['a', 'b']);
    sameBits(back.values, tricky);
  });

  it('NPY', async () => {
    const bytes = await bytesOf(encodeNpyTeacherOutputs([trickyBatch([3, 4])], { rows: 2, numClasses: 4 }));
    const back = await rows(readNpyTeacherOutputs(bytes, parseIdList(encodeIdList([3, 4]))));
    expect(back.ids).toEqual([3, 4]);
    sameBits(back.values, tricky);
  });

  it('Arrow, file and stream formats', async () => {
    for (const format of ['file', 'stream'] as const) {
      const bytes = await bytesOf(encodeArrowTeacherOutputs([trickyBatch([1, 2]), trickyBatch([5, 6])], { format }));
      const back = await rows(readArrowTeacherOutputs(bytes));
      expect(back.ids).toEqual([1, 2, 5, 6]);
      sameBits(back.values, Float32Array.from([...tricky, ...tricky]));
      // Readable by apache-arrow itself with the column types pyarrow would see.
      const table = arrow.tableFromIPC(bytes);
      expect(String(table.schema.fields[1]!.type)).toBe('FixedSizeList[4]<Float32>');
    }
  });
});

describe('JSONL reader', () => {
  const read = (text: string, options = {}) => drain(readJsonlTeacherOutputs(text, { source: 't.jsonl', ...options }));

  it('streams across chunk boundaries, CRLF and blank lines, and multi-byte characters split in two', async () => {
    const text = '{"id":"é","logits":[1,2]}\r\n\n{"id":"ü","logits":[3,4]}';
    const bytes = new TextEncoder().encode(text);
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
    const back = await rows(readJsonlTeacherOutputs(chunks, { batchSize: 1 }));
    expect(back.ids).toEqual(['é', 'ü']);
    expect(Array.from(back.values)).toEqual([1, 2, 3, 4]);
  });

  it('names the line for invalid JSON, and says the last line may be truncated', async () => {
    await expect(read('{"id":1,"logits":[1,2]}\n{"id":2,"logits":[1,\n')).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringMatching(/t\.jsonl line 2 \(id 2\): invalid JSON/),
    });
    await expect(read('{"id":1,"logits":[1,2]}\n{"id":2,"logits":[1,')).rejects.toThrow(/line 2 .*truncated/);
  });

  it('names line and id for NaN/Infinity (Python json), null values and values beyond float32', async () => {
    await expect(read('{"id":1,"logits":[1,2]}\n{"id": 7, "logits": [NaN, 1]}\n')).rejects.toMatchObject({
      code: 'NON_FINITE_TEACHER_OUTPUT',
      message: expect.stringContaining('t.jsonl line 2 (id 7)'),
    });
    await expect(read('{"id":"x","logits":[1,null]}\n')).rejects.toMatchObject({
      code: 'NON_FINITE_TEACHER_OUTPUT',
      message: expect.stringContaining('line 1 (id "x")'),
    });
    await expect(read('{"id":3,"logits":[1e39,0]}\n')).rejects.toMatchObject({ code: 'NON_FINITE_TEACHER_OUTPUT' });
  });

  it('names line and id for a class-count mismatch', async () => {
    const error = await read('{"id":1,"logits":[1,2]}\n{"id":9,"logits":[1,2,3]}\n').catch((e) => e);
    expect(error).toBeInstanceOf(KdShapeError);
    expect(error).toMatchObject({ code: 'CLASS_COUNT_MISMATCH' });
    expect(error.message).toContain('t.jsonl line 2 (id 9)');
  });

  it('rejects missing ids, floats, big integers and mixed id types, naming the line', async () => {
    await expect(read('{"logits":[1]}\n')).rejects.toMatchObject({ code: 'MISSING_ID', message: expect.stringContaining('line 1') });
    await expect(read('{"id":1.5,"logits":[1]}\n')).rejects.toMatchObject({ code: 'ID_TYPE_MISMATCH' });
    await expect(read('{"id":16777216,"logits":[1]}\n')).rejects.toMatchObject({
      code: 'ID_TYPE_MISMATCH',
      message: expect.stringContaining('2^24'),
    });
    await expect(read('{"id":1,"logits":[1]}\n{"id":"1","logits":[1]}\n')).rejects.toMatchObject({
      code: 'ID_TYPE_MISMATCH',
      message: expect.stringMatching(/line 2: id "1" is a string but the ids before it are numbers \(first at t\.jsonl line 1\)/),
    });
  });

  it('reads another field name', async () => {
    const back = await rows(readJsonlTeacherOutputs('{"id":0,"probs":[0.25,0.75]}\n', { field: 'probs' }));
    expect(Array.from(back.values)).toEqual([0.25, 0.75]);
    await expect(read('{"id":0,"probs":[0.25,0.75]}\n')).rejects.toThrow(/"logits" is missing/);
  });
});

describe('NPY reader', () => {
  const npy = (rowsCount: number, C: number, values: number[]) => {
    const header = npyHeader(rowsCount, C);
    const data = new Uint8Array(Float32Array.from(values).buffer);
    const out = new Uint8Array(header.length + data.length);
    out.set(header);
    out.set(data, header.length);
    return out;
  };
  const read = (bytes: Uint8Array, ids: ExampleId[]) =>
    drain(readNpyTeacherOutputs(bytes, ids, { source: 't.npy', idsSource: 't.ids.json' }));

  it('reports a truncated file: the header says N rows but the data is short', async () => {
    const full = npy(3, 2, [1, 2, 3, 4, 5, 6]);
    await expect(read(full.subarray(0, full.length - 5), [0, 1, 2])).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringMatching(/t\.npy's header says 3 rows of 2 <f4 values but the data stops after 2 full rows \(5 bytes short\)/),
    });
    await expect(read(full.subarray(0, 20), [0, 1, 2])).rejects.toThrow(/ends inside its header/);
  });

  it('reports extra data, a missing magic, a big-endian or integer array, and Fortran order', async () => {
    const full = npy(1, 2, [1, 2]);
    const longer = new Uint8Array(full.length + 4);
    longer.set(full);
    await expect(read(longer, [0])).rejects.toThrow(/more data than its header says/);
    await expect(read(new TextEncoder().encode('{"id": 1}'), [0])).rejects.toThrow(/not an NPY file/);
    const swap = (from: string, to: string) => {
      const copy = full.slice();
      const text = new TextDecoder('latin1').decode(copy);
      const at = text.indexOf(from);
      for (let i = 0; i < to.length; i++) copy[at + i] = to.charCodeAt(i);
      return copy;
    };
    await expect(read(swap("'<f4'", "'>f4'"), [0])).rejects.toThrow(/big-endian/);
    await expect(read(swap("'<f4'", "'<i4'"), [0])).rejects.toThrow(/dtype i4 is not a float/);
    const square = npy(2, 2, [1, 2, 3, 4]);
    const fortran = square.slice();
    const at = new TextDecoder('latin1').decode(fortran).indexOf('False');
    'True '.split('').forEach((ch, i) => (fortran[at + i] = ch.charCodeAt(0)));
    await expect(read(fortran, [0, 1])).rejects.toThrow(/Fortran order/);
  });

  it('names row and id for NaN, and checks the id count', async () => {
    await expect(read(npy(2, 2, [1, 2, 3, NaN]), ['a', 'b'])).rejects.toMatchObject({
      code: 'NON_FINITE_TEACHER_OUTPUT',
      message: expect.stringContaining('t.npy row 1 (id "b")'),
    });
    await expect(read(npy(2, 2, [1, 2, 3, 4]), ['a'])).rejects.toMatchObject({
      code: 'LENGTH_MISMATCH',
      message: expect.stringContaining('t.ids.json has 1 ids but t.npy has 2 rows'),
    });
    await expect(read(npy(2, 2, [1, 2, 3, 4]), ['a', 2])).rejects.toMatchObject({
      code: 'ID_TYPE_MISMATCH',
      message: expect.stringContaining('t.ids.json entry 1'),
    });
  });
});

describe('id lists', () => {
  it('reads JSON arrays and lines, integers when every line is one', () => {
    expect(parseIdList('["a", "b"]')).toEqual(['a', 'b']);
    expect(parseIdList('1\r\n2\r\n')).toEqual([1, 2]);
    expect(parseIdList('1\n02\n')).toEqual(['1', '02']);
    expect(parseIdList('1\n2\n', { idType: 'string' })).toEqual(['1', '2']);
  });

  it('names the entry or line of a bad id', () => {
    expect(() => parseIdList('[1, 2.5]', { source: 'ids.json' })).toThrow(/ids\.json entry 1: id 2\.5 is not a valid id/);
    expect(() => parseIdList('[1, "a"]', { source: 'ids.json' })).toThrow(KdDataError);
    expect(() => parseIdList('1\n\n2\n', { source: 'ids.txt' })).toThrow(/ids\.txt line 2 is empty/);
    expect(() => parseIdList('1\n16777216\n', { source: 'ids.txt', idType: 'number' })).toThrow(/ids\.txt line 2/);
    expect(() => parseIdList('[1, 2', { source: 'ids.json' })).toThrow(/ids\.json: invalid JSON/);
  });
});

describe('Arrow reader', () => {
  const table = (ids: arrow.Vector, logits: arrow.Vector) => new arrow.Table({ id: ids, logits });
  const list = (rowsList: Array<number[] | null>) =>
    arrow.vectorFromArray(rowsList, new arrow.List(new arrow.Field('item', new arrow.Float32(), true)));
  const read = (bytes: Uint8Array | AsyncIterable<Uint8Array>) => drain(readArrowTeacherOutputs(bytes, { source: 't.arrow' }));

  it('reads a stream given in small chunks, one batch per record batch', async () => {
    const bytes = await bytesOf(encodeArrowTeacherOutputs([trickyBatch(['a', 'b']), trickyBatch(['c', 'd'])], { format: 'stream' }));
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += 13) yield bytes.subarray(i, i + 13);
    }
    const batches = await drain(readArrowTeacherOutputs(chunks()));
    expect(batches.map((b) => b.ids)).toEqual([['a', 'b'], ['c', 'd']]);
  });

  it('reports a missing magic, a truncated file and a truncated stream', async () => {
    const file = await bytesOf(encodeArrowTeacherOutputs([trickyBatch([1, 2])], { format: 'file' }));
    const stream = await bytesOf(encodeArrowTeacherOutputs([trickyBatch([1, 2])], { format: 'stream' }));
    await expect(read(new TextEncoder().encode('not arrow at all'))).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining('t.arrow: the Arrow magic is missing'),
    });
    await expect(read(file.subarray(0, file.length - 10))).rejects.toThrow(/t\.arrow: the ARROW1 magic at the end/);
    // Cut exactly before the end-of-stream marker: Arrow alone would read this as complete.
    await expect(read(stream.subarray(0, stream.length - 8))).rejects.toThrow(/end-of-stream marker is missing/);
    async function* cut() {
      yield stream.subarray(0, stream.length - 40);
    }
    await expect(read(cut())).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining('t.arrow') });
  });

  it('names row and id for NaN, null values, uneven rows, null ids and float ids', async () => {
    const ids = arrow.vectorFromArray(['a', 'b'], new arrow.Utf8());
    await expect(read(arrow.tableToIPC(table(ids, list([[1, 2], [3, NaN]]))))).rejects.toMatchObject({
      code: 'NON_FINITE_TEACHER_OUTPUT',
      message: expect.stringContaining('t.arrow row 1 (id "b")'),
    });
    await expect(read(arrow.tableToIPC(table(ids, list([[1, 2], null]))))).rejects.toThrow(/row 1 \(id "b"\): the outputs are null/);
    await expect(read(arrow.tableToIPC(table(ids, list([[1, 2], [3, null as unknown as number]]))))).rejects.toThrow(
      /row 1 \(id "b"\): class 1 is null/,
    );
    await expect(read(arrow.tableToIPC(table(ids, list([[1, 2], [3, 4, 5]]))))).rejects.toMatchObject({
      code: 'CLASS_COUNT_MISMATCH',
      message: expect.stringContaining('row 1 (id "b")'),
    });
    const nullIds = arrow.vectorFromArray(['a', null], new arrow.Utf8());
    await expect(read(arrow.tableToIPC(table(nullIds, list([[1, 2], [3, 4]]))))).rejects.toMatchObject({
      code: 'MISSING_ID',
      message: expect.stringContaining('t.arrow row 1'),
    });
    const floatIds = arrow.vectorFromArray([1.5, 2], new arrow.Float64());
    await expect(read(arrow.tableToIPC(table(floatIds, list([[1, 2], [3, 4]]))))).rejects.toMatchObject({ code: 'ID_TYPE_MISMATCH' });
    const bigIds = arrow.vectorFromArray([1n, 2n ** 40n], new arrow.Int64());
    await expect(read(arrow.tableToIPC(table(bigIds, list([[1, 2], [3, 4]]))))).rejects.toMatchObject({
      code: 'ID_TYPE_MISMATCH',
      message: expect.stringContaining('t.arrow row 1'),
    });
  });

  it('names a missing column', async () => {
    const t = new arrow.Table({ key: arrow.vectorFromArray(['a'], new arrow.Utf8()), logits: list([[1]]) });
    await expect(read(arrow.tableToIPC(t))).rejects.toThrow(/t\.arrow has no column "id" \(columns: key, logits\)/);
  });
});

describe('checkTeacherOutputs (several shards as one stream)', () => {
  it('names the shard of a class-count or id-type change', async () => {
    const a = readJsonlTeacherOutputs('{"id":1,"logits":[1,2]}\n', { source: 'part-0' });
    const b = readJsonlTeacherOutputs('{"id":2,"logits":[1,2,3]}\n', { source: 'part-1' });
    async function* both() {
      yield* a;
      yield* b;
    }
    await expect(drain(checkTeacherOutputs(both()))).rejects.toMatchObject({
      code: 'CLASS_COUNT_MISMATCH',
      message: expect.stringContaining('part-1 line 1'),
    });
    const c = readJsonlTeacherOutputs('{"id":"x","logits":[1,2]}\n', { source: 'part-2' });
    async function* mixed() {
      yield* readJsonlTeacherOutputs('{"id":1,"logits":[1,2]}\n', { source: 'part-0' });
      yield* c;
    }
    await expect(drain(checkTeacherOutputs(mixed()))).rejects.toMatchObject({ code: 'ID_TYPE_MISMATCH' });
  });
});
