import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeAll, beforeEach, vi } from 'vitest';

// Silence tfjs's "use tfjs-node" banner: tests must not log unexpectedly. PROD
// silences it too, for the wasm tests that turn IS_TEST (and its per-kernel
// data-id check, which stock wasm's fused matMul trips) off.
tf.env().set('IS_TEST', true);
tf.env().set('PROD', true);

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

// A test that logs a warning or an error fails, unless it mocks the console itself.
let warn: ReturnType<typeof vi.spyOn>;
let error: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  warn = vi.spyOn(console, 'warn');
  error = vi.spyOn(console, 'error');
});
afterEach(() => {
  const calls = [...warn.mock.calls, ...error.mock.calls];
  warn.mockRestore();
  error.mockRestore();
  if (calls.length > 0) throw new Error(`unexpected console output: ${JSON.stringify(calls).slice(0, 500)}`);
});
