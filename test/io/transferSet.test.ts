import { describe, expect, it } from 'vitest';
import { KdDataError } from '../../src/errors.js';
import { parseTransferSetJsonl, transferSetToJsonl, type TransferSetEntry } from '../../src/io/transferSet.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KdDataError);
    return (error as KdDataError).code;
  }
  return undefined;
};

describe('transfer set JSON Lines', () => {
  it('writes one entry per line, id first, and parses back the same entries', () => {
    const entries: TransferSetEntry[] = [
      { id: 0, text: 'a "fine" film\nwith a newline' },
      { id: 1, text: '<mask> dull' },
    ];
    const lines = [...transferSetToJsonl(entries)];
    expect(lines).toEqual([
      '{"id":0,"text":"a \\"fine\\" film\\nwith a newline"}\n',
      '{"id":1,"text":"<mask> dull"}\n',
    ]);
    expect(parseTransferSetJsonl(lines.join(''))).toEqual(entries);
  });

  it('writes pairs as a and b, with string ids', () => {
    const pairs: TransferSetEntry[] = [{ id: 'p0', a: 'a man plays', b: 'a person plays' }];
    const text = [...transferSetToJsonl(pairs)].join('');
    expect(text).toBe('{"id":"p0","a":"a man plays","b":"a person plays"}\n');
    expect(parseTransferSetJsonl(`${text.replace('\n', '\r\n')}\n\n`)).toEqual(pairs);
  });

  it('refuses duplicate ids, mixed or invalid id types, and entries without text', () => {
    expect(codeOf(() => [...transferSetToJsonl([{ id: 1, text: 'a' }, { id: 1, text: 'b' }])])).toBe('DUPLICATE_ID');
    expect(codeOf(() => [...transferSetToJsonl([{ id: 1, text: 'a' }, { id: '2', text: 'b' }])])).toBe('ID_TYPE_MISMATCH');
    expect(codeOf(() => [...transferSetToJsonl([{ id: 2 ** 24, text: 'a' }])])).toBe('ID_TYPE_MISMATCH');
    expect(codeOf(() => [...transferSetToJsonl([{ id: 0, text: 3 } as unknown as TransferSetEntry])])).toBe('CORRUPT_FILE');
    expect(codeOf(() => [...transferSetToJsonl([{ id: 0, a: 'x' } as unknown as TransferSetEntry])])).toBe('CORRUPT_FILE');
    expect(codeOf(() => parseTransferSetJsonl('{"id":0,"text":"a"}\n{"id":0,"text":"b"}'))).toBe('DUPLICATE_ID');
    expect(() => parseTransferSetJsonl('{"id":0,"text":"a"}\n{"id":1,', { source: 't.jsonl' })).toThrow(/t\.jsonl line 2: invalid JSON/);
  });
});
