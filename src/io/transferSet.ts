/**
 * The transfer set as JSON Lines: the sentences (or sentence pairs) a teacher
 * that runs elsewhere (a Python BERT) scores, each with the id its logits come
 * back under. Browser-safe; `kd-ts/node` writes and reads files.
 *
 * @packageDocumentation
 */
import { KdDataError } from '../errors.js';
import { IdChecker, formatId, type ExampleId } from './teacherOutputs.js';

/** One example of a transfer set: one text, or a sentence pair `a`, `b`. */
export type TransferSetEntry = { id: ExampleId; text: string } | { id: ExampleId; a: string; b: string };

/**
 * Encodes a transfer set as JSON Lines, one `{"id": ..., "text": "..."}` (or
 * `{"id": ..., "a": "...", "b": "..."}`) per line, the id first. Ids follow the
 * teacher-output readers' rules (unique; strings, or integers in `[0, 2^24)`;
 * one type throughout), checked here so the scores can be read back by id.
 *
 * @param entries - The examples, e.g. `texts.map((text, id) => ({ id, text }))`.
 * @returns A generator of lines, each ending in `\n` (join them, or write them as they come).
 * @throws {@link KdDataError} `DUPLICATE_ID`, `ID_TYPE_MISMATCH`, or `CORRUPT_FILE` for an entry
 *   without a string `text` (or `a` and `b`); each names the entry's position.
 *
 * @example
 * ```ts
 * import { augment } from 'kd-ts';
 * import { transferSetToJsonl } from 'kd-ts/io';
 * import { whitespaceTokenize } from 'kd-ts/text';
 * const train = ['hide new secretions from the parental units ', 'contains no wit , only labored gags '];
 * const texts = [...train.map((s) => s.trim()), ...(await augment(train, { tokenizer: whitespaceTokenize }))];
 * const jsonl = [...transferSetToJsonl(texts.map((text, id) => ({ id, text })))].join('');
 * // {"id":0,"text":"hide new secretions from the parental units"}\n...
 * ```
 */
export function transferSetToJsonl(entries: Iterable<TransferSetEntry>): Generator<string> {
  return jsonlLines(entries);
}

function* jsonlLines(entries: Iterable<TransferSetEntry>): Generator<string> {
  const ids = new IdChecker();
  const seen = new Set<ExampleId>();
  let index = 0;
  for (const entry of entries) {
    const where = () => `transfer set entry ${index}`;
    const id = ids.check(entry?.id, where);
    if (seen.has(id)) {
      throw new KdDataError('DUPLICATE_ID', `${where()}: id ${formatId(id)} is used twice: give every example its own id`);
    }
    seen.add(id);
    yield `${JSON.stringify(toRecord(entry, id, where))}\n`;
    index++;
  }
}

/**
 * Parses a transfer set written by {@link transferSetToJsonl} (or by anything
 * that writes the same lines: blank lines and `\r\n` are accepted).
 *
 * @param text - The JSON Lines text.
 * @param options - `source`: a name for messages (the file name).
 * @returns The entries, in file order.
 * @throws {@link KdDataError} `CORRUPT_FILE` for a line that is not an entry, `DUPLICATE_ID`,
 *   `ID_TYPE_MISMATCH`; each names the source and the line.
 *
 * @example
 * ```ts
 * import { parseTransferSetJsonl } from 'kd-ts/io';
 * const entries = parseTransferSetJsonl('{"id":0,"text":"a fine film"}\n{"id":1,"text":"dull"}\n');
 * const textById = new Map(entries.map((e) => [e.id, 'text' in e ? e.text : `${e.a} ||| ${e.b}`]));
 * ```
 */
export function parseTransferSetJsonl(text: string, options: { source?: string } = {}): TransferSetEntry[] {
  const source = options.source ?? 'transfer set';
  const ids = new IdChecker();
  const seen = new Map<ExampleId, number>();
  const entries: TransferSetEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const where = () => `${source} line ${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new KdDataError('CORRUPT_FILE', `${where()}: invalid JSON (${(error as Error).message}): write one entry per line`, {
        cause: error,
      });
    }
    const id = ids.check((record as { id?: unknown } | null)?.id, where);
    const first = seen.get(id);
    if (first !== undefined) {
      throw new KdDataError('DUPLICATE_ID', `${where()}: id ${formatId(id)} was already used on line ${first}: ids must be unique`);
    }
    seen.set(id, i + 1);
    entries.push(toRecord(record as TransferSetEntry, id, where));
  });
  return entries;
}

/** The entry as written: id first, then `text` or `a`, `b`; anything else is refused. */
function toRecord(entry: TransferSetEntry, id: ExampleId, where: () => string): TransferSetEntry {
  const fields = entry as Partial<{ text: unknown; a: unknown; b: unknown }>;
  if (typeof fields.text === 'string' && fields.a === undefined && fields.b === undefined) return { id, text: fields.text };
  if (typeof fields.a === 'string' && typeof fields.b === 'string' && fields.text === undefined) {
    return { id, a: fields.a, b: fields.b };
  }
  throw new KdDataError(
    'CORRUPT_FILE',
    `${where()} (id ${formatId(id)}): an entry needs a string "text", or strings "a" and "b" for a sentence pair, not both`,
  );
}
