import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-web';
import { expect } from 'vitest';

// The ONNX models of test/teachers/fixtures/onnx (made by make_models.py) and
// their PyTorch logits, for the onnxTeacher tests.

export const ONNX_FIXTURES = join(import.meta.dirname, 'fixtures', 'onnx');

// One wasm thread: the test machines have 2 cores, shared with vitest's other worker.
ort.env.wasm.numThreads = 1;

/** A session of `<name>.onnx` on onnxruntime-web's wasm backend. */
export function loadSession(name: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(readFileSync(join(ONNX_FIXTURES, `${name}.onnx`)));
}

interface FixtureTensor {
  dtype: 'float32' | 'int64' | 'int32' | 'bool';
  shape: number[];
  data: number[];
}

export interface OnnxFixture {
  inputs: Record<string, FixtureTensor>;
  logits: { shape: [number, number]; data: number[] };
}

export function readFixture(name: string): OnnxFixture {
  return JSON.parse(readFileSync(join(ONNX_FIXTURES, `${name}.json`), 'utf8')) as OnnxFixture;
}

/** The fixture's inputs as tfjs tensors: int64 ids as int32 (tfjs has no int64), bool as bool. */
export function fixtureInputs(fixture: OnnxFixture): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(fixture.inputs)) {
    const dtype = t.dtype === 'int64' ? 'int32' : t.dtype;
    out[name] = tf.tensor(dtype === 'bool' ? t.data.map((v) => v !== 0) : t.data, t.shape, dtype);
  }
  return out;
}

/** The largest |a − b| between a tensor and the fixture's float64 logits. */
export async function maxDifference(actual: tf.Tensor, expected: OnnxFixture['logits']): Promise<number> {
  expect(actual.shape).toEqual(expected.shape);
  const values = await actual.data();
  return Math.max(...expected.data.map((v, i) => Math.abs(values[i]! - v)));
}

/**
 * Wraps a session to count what it runs (calls and rows fed), keeping its
 * names and metadata: a structural session, as kd-ts sees one.
 */
export function countingSession(session: ort.InferenceSession) {
  const counts = { runs: 0, rows: 0 };
  return {
    counts,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: session.inputMetadata,
    run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]) {
      counts.runs++;
      counts.rows += Object.values(feeds)[0]!.dims[0]!;
      return fetches === undefined ? session.run(feeds) : session.run(feeds, fetches);
    },
  };
}
