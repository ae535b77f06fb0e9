import { describe, expect, it } from 'vitest';
import type { TeacherOutputBatch } from '../../src/index.js';
import { alignTeacherOutputs, readJsonlTeacherOutputs } from '../../src/io/index.js';

/** Teacher rows whose values encode the id: row for id k is [k, 2k + 1]. */
function teacher(ids: number[], batchSize = 3, source = 'part-00000.jsonl'): AsyncIterable<TeacherOutputBatch> {
  const text = ids.map((id) => JSON.stringify({ id, logits: [id, 2 * id + 1] })).join('\n') + '\n';
  return readJsonlTeacherOutputs(text, { source, batchSize });
}

async function align(inputIds: number[], teacherIds: number[], options = {}) {
  const inputs = inputIds.map((id) => ({ id, text: `example ${id}` }));
  const out: Array<{ id: number; values: number[]; text: string }> = [];
  for await (const batch of alignTeacherOutputs(inputs, teacher(teacherIds), { batchSize: 2, ...options })) {
    batch.inputs.forEach((input, i) =>
      out.push({ id: batch.ids[i] as number, values: Array.from(batch.logits.subarray(i * 2, i * 2 + 2)), text: input.text }),
    );
  }
  return out;
}

describe('alignTeacherOutputs', () => {
  it('pairs rows by id, in the inputs order, whatever the teacher order', async () => {
    const got = await align([4, 0, 2, 1, 3], [0, 1, 2, 3, 4]);
    expect(got.map((r) => r.id)).toEqual([4, 0, 2, 1, 3]);
    for (const r of got) {
      expect(r.values).toEqual([r.id, 2 * r.id + 1]);
      expect(r.text).toBe(`example ${r.id}`);
    }
  });

  it('names an input id with no teacher output', async () => {
    await expect(align([0, 1, 9], [0, 1])).rejects.toMatchObject({
      code: 'MISSING_ID',
      message: expect.stringContaining('input #2 has id 9'),
    });
  });

  it('names a teacher output with no input, with its file and line', async () => {
    await expect(align([0, 1], [0, 1, 5])).rejects.toMatchObject({
      code: 'EXTRA_ID',
      message: expect.stringContaining('part-00000.jsonl line 3: the teacher output for id 5 matches no input'),
    });
    await expect(align([1], [0, 1])).rejects.toMatchObject({ code: 'EXTRA_ID', message: expect.stringContaining('line 1') });
  });

  it('names a duplicate teacher id and an id type mismatch', async () => {
    await expect(align([9], [0, 1, 0])).rejects.toMatchObject({
      code: 'DUPLICATE_ID',
      message: expect.stringContaining('line 3: id 0 appears twice'),
    });
    const inputs = [{ id: '0' }];
    await expect(
      (async () => {
        for await (const _ of alignTeacherOutputs(inputs, teacher([0]))) void _;
      })(),
    ).rejects.toMatchObject({ code: 'ID_TYPE_MISMATCH' });
  });

  it('fails with OUT_OF_ORDER instead of buffering more than maxPending rows', async () => {
    await expect(align([5, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5], { maxPending: 3 })).rejects.toMatchObject({
      code: 'OUT_OF_ORDER',
      message: expect.stringContaining('input #0 (id 5)'),
    });
    expect((await align([5, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5], { maxPending: 5 })).length).toBe(6);
  });
});
