import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { readTeacherCache } from '../../src/node/readTeacherFiles.js';
import { readTransferSet, writeTransferSet } from '../../src/node/transferSet.js';

const dir = mkdtempSync(join(tmpdir(), 'kd-transfer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeTransferSet / readTransferSet', () => {
  it('writes atomically and reads back', async () => {
    const file = join(dir, 'sub', 'transfer.jsonl');
    const entries = Array.from({ length: 5000 }, (_, id) => ({ id, text: `sentence ${id}` }));
    expect(await writeTransferSet(file, entries)).toBe(5000);
    expect(await readTransferSet(file)).toEqual(entries);
    await expect(writeTransferSet(join(dir, 'bad.jsonl'), [{ id: 0, text: 'a' }, { id: 0, text: 'b' }])).rejects.toThrow(/used twice/);
    expect(existsSync(join(dir, 'bad.jsonl'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  // The path of a user with a Python teacher: export, score in Python (stdlib json, lines in another
  // order), read the logits back by id. Skipped where /usr/bin/python3 is missing.
  it.skipIf(!existsSync('/usr/bin/python3'))('round-trips through a Python scorer by id', async () => {
    const transfer = join(dir, 'rt.jsonl');
    const scores = join(dir, 'rt-teacher.jsonl');
    const texts = ['a fine film', 'dull', 'a <mask> and witty movie', 'gags'];
    await writeTransferSet(transfer, texts.map((text, id) => ({ id: `s${id}`, text })));
    const script = [
      'import json, sys',
      'rows = [json.loads(line) for line in open(sys.argv[1])]',
      'with open(sys.argv[2], "w") as f:',
      '    for row in reversed(rows):  # any order: kd-ts matches by id',
      '        n = len(row["text"].split())',
      '        f.write(json.dumps({"id": row["id"], "logits": [float(n), -float(n)]}) + "\\n")',
    ].join('\n');
    execFileSync('/usr/bin/python3', ['-c', script, transfer, scores]);
    expect(readFileSync(scores, 'utf8').split('\n')[0]).toContain('"s3"');
    const cache = await readTeacherCache(scores);
    const logits = cache.get(['s0', 's1', 's2', 's3']);
    expect(logits.arraySync()).toEqual([[3, -3], [1, -1], [5, -5], [1, -1]]);
    tf.dispose(logits);
  });
});
