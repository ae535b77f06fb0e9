import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import type { TransformersEncoding, TransformersModelLike, TransformersTensorLike } from '../../src/teachers/index.js';

// The tiny BERT of examples/onnx-teacher (train_tiny_bert.py) without
// transformers.js: its ONNX graph on onnxruntime-web, and a stand-in
// tokenizer that looks each sentence's ids up in the fixture (the Python
// tokenizer's; the opt-in suite checks that transformers.js's are the same).

export const TINY_BERT = join(import.meta.dirname, '..', '..', 'examples', 'onnx-teacher', 'tiny-bert-sst2');

ort.env.wasm.numThreads = 1;

export interface TinyBertFixture {
  sentences: string[];
  inputIds: number[][];
  logits: number[][];
  devAccuracy: number;
}

export function readTinyBertFixture(): TinyBertFixture {
  return JSON.parse(readFileSync(join(TINY_BERT, 'fixture.json'), 'utf8')) as TinyBertFixture;
}

/** A transformers.js-like int64 tensor that counts its disposals. */
export function int64Tensor(rows: number[][], width: number, disposed: { count: number }): TransformersTensorLike {
  const data = new BigInt64Array(rows.length * width);
  rows.forEach((row, r) => row.forEach((v, c) => (data[r * width + c] = BigInt(v))));
  return { type: 'int64', dims: [rows.length, width], data, dispose: () => void disposed.count++ };
}

/** Tokenizes like transformers.js with `padding: true`: ids padded with 0 to the batch's longest, mask, segment ids. */
export function fixtureTokenizer(fixture: TinyBertFixture) {
  const idsOf = new Map(fixture.sentences.map((s, i) => [s, fixture.inputIds[i]!]));
  const calls: string[][] = [];
  const disposed = { count: 0 };
  let paddedTokens = 0;
  const tokenizer = (texts: string[]): TransformersEncoding => {
    calls.push([...texts]);
    const ids = texts.map((t) => {
      const found = idsOf.get(t);
      if (found === undefined) throw new Error(`the stand-in tokenizer knows no sentence ${JSON.stringify(t)}`);
      return found;
    });
    const width = Math.max(...ids.map((row) => row.length));
    paddedTokens += width * ids.length;
    const pad = (row: number[], value: (v: number) => number) => [...row.map(value), ...new Array<number>(width - row.length).fill(0)];
    return {
      input_ids: int64Tensor(ids.map((row) => pad(row, (v) => v)), width, disposed),
      attention_mask: int64Tensor(ids.map((row) => pad(row, () => 1)), width, disposed),
      token_type_ids: int64Tensor(ids.map((row) => pad(row, () => 0)), width, disposed),
    };
  };
  return { tokenizer, calls, disposed, paddedTokens: () => paddedTokens };
}

/** The ONNX graph as a transformers.js-like model: `model(encoding)` resolves to `{ logits }`. */
export async function onnxModel(): Promise<{ model: TransformersModelLike; session: ort.InferenceSession; calls: { count: number } }> {
  const session = await ort.InferenceSession.create(readFileSync(join(TINY_BERT, 'onnx', 'model.onnx')));
  const calls = { count: 0 };
  const model: TransformersModelLike = async (encoding) => {
    calls.count++;
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const t = encoding[name]!;
      feeds[name] = new ort.Tensor('int64', t.data as BigInt64Array, [...t.dims]);
    }
    const out = await session.run(feeds);
    return { logits: out.logits! };
  };
  return { model, session, calls };
}
