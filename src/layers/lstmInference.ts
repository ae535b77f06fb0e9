/**
 * FastLSTM's inference path (no tape: `predict`, `evaluate`, a frozen
 * student): the whole recurrence of a sigmoid-gated LSTM in one call of a
 * WebAssembly SIMD kernel (`lstmInference.wat`), on the wasm backend, for
 * batches of up to 24 rows.
 *
 * On wasm, a step of the tfjs path is ~14 kernel calls, each ~30 µs whatever
 * its size, so at batch 1 the calls are the whole cost (about 0.9 ms per step
 * and direction). Here tfjs computes x·W + b for all steps in one product and
 * the kernel runs every step in its own memory: one copy in, one copy out.
 * Semantics are those of `lstmSequence.ts` (tfjs's LSTMCell and rnn()), the
 * same float32 arithmetic up to the kernel's exponential (relative error
 * below 2e-7) and the order of the sums in h·U.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { LSTM_INFERENCE_WASM_BASE64 } from './lstmInferenceWasm.js';

/** What the kernel needs to know of the layer. */
export interface InferenceOptions {
  units: number;
  returnSequences: boolean;
  goBackwards: boolean;
}

interface Kernel {
  memory: WebAssembly.Memory;
  lstm(
    proj: number, u: number, mask: number, out: number, h: number, c: number, z: number,
    batch: number, steps: number, units: number, padded: number,
    back: number, seq: number, hasMask: number,
  ): void;
}

let kernel: Kernel | null | undefined;

/** The kernel, or null where WebAssembly SIMD is not available (the tfjs path then runs). */
function loadKernel(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const bytes = Uint8Array.from(atob(LSTM_INFERENCE_WASM_BASE64), (ch) => ch.charCodeAt(0));
    kernel = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Kernel;
  } catch {
    kernel = null;
  }
  return kernel;
}

/**
 * Above this many rows the tfjs path wins: its per-step `[B, u]·[u, 4u]`
 * product runs on XNNPACK, 2–3× faster than the kernel's loop, while its
 * ~14 calls per step cost the same whatever B. Measured (one direction, 32
 * steps, 150 units, wasm, 2026-12-04): batch 1 2.1 against 12.5 ms, 8 6.6 /
 * 11.2, 16 11.9 / 15.1, 32 23.2 / 23.3, 64 51.5 / 43.2.
 */
const MAX_ROWS = 24;

/**
 * The kernel's memory never shrinks (WebAssembly memories only grow): calls
 * that would need more than this (e.g. 24 rows of 2,000 steps of 512 units)
 * take the tfjs path instead.
 */
const MAX_BYTES = 64 * 2 ** 20;

/**
 * Whether `lstmInference` runs: on the wasm backend, up to {@link MAX_ROWS}
 * rows and {@link MAX_BYTES} of kernel memory, with a `[batch, steps]` mask
 * or none, where WebAssembly SIMD is available. Not on cpu, whose x·W product
 * (tfjs's JavaScript matMul) takes longer than its own LSTM path's calls
 * (batch 1: 41.7 against 37.4 ms for tfjs-layers' LSTM).
 */
export function canRunLstmInference(x: tf.Tensor3D, units: number, mask: tf.Tensor | null): boolean {
  const [batch, steps] = x.shape;
  if (tf.getBackend() !== 'wasm' || batch > MAX_ROWS || x.dtype !== 'float32') return false;
  if (mask !== null && mask.size !== batch * steps) return false;
  if (memoryLayout(batch, steps, units, mask !== null, true).bytes > MAX_BYTES) return false;
  return loadKernel() !== null;
}

/** Sizes (floats) and byte offsets of proj | u | mask | out | h | c | z in the kernel's memory. */
function memoryLayout(batch: number, steps: number, units: number, masked: boolean, sequences: boolean) {
  // A multiple of 8, so that 4·padded columns come in the kernel's blocks of 32.
  const padded = Math.ceil(units / 8) * 8;
  const width = 4 * padded;
  const sizes = [batch * steps * width, units * width, masked ? batch * steps : 0, sequences ? batch * steps * padded : 0, batch * padded, batch * padded, width];
  const offsets: number[] = [];
  let end = 0;
  for (const size of sizes) {
    offsets.push(end * 4);
    end += Math.ceil(size / 4) * 4;
  }
  return { padded, width, sizes, offsets, bytes: end * 4 };
}

/**
 * The LSTM over a whole sequence, sigmoid gates, forward only (no gradient).
 * Inputs and output as `lstmSequence`.
 */
export function lstmInference(
  x: tf.Tensor3D,
  kernelWeights: tf.Tensor,
  recurrentKernel: tf.Tensor,
  bias: tf.Tensor | null,
  mask: tf.Tensor | null,
  options: InferenceOptions,
): tf.Tensor {
  const wasm = loadKernel()!;
  const { units, returnSequences, goBackwards } = options;
  const [batch, steps, inputDim] = x.shape;
  const { padded, width, sizes, offsets, bytes } = memoryLayout(batch, steps, units, mask !== null, returnSequences);
  // x·W + b and U in the kernel's layout: gate blocks padded to `padded` columns, the cell gate's doubled.
  let proj: Float32Array = new Float32Array(0);
  let u: Float32Array = new Float32Array(0);
  let keep: Float32Array | null = null;
  tf.tidy(() => {
    const w = gateLayout(kernelWeights as tf.Tensor2D, units, padded);
    let projected = tf.matMul(tf.reshape(x, [batch * steps, inputDim]), w);
    if (bias !== null) projected = tf.add(projected, tf.reshape(gateLayout(tf.reshape(bias, [1, 4 * units]), units, padded), [width]));
    proj = projected.dataSync() as Float32Array;
    u = gateLayout(recurrentKernel as tf.Tensor2D, units, padded).dataSync() as Float32Array;
    if (mask !== null) keep = tf.cast(tf.cast(mask, 'bool'), 'float32').dataSync() as Float32Array;
  });
  const needed = bytes - wasm.memory.buffer.byteLength;
  if (needed > 0) wasm.memory.grow(Math.ceil(needed / 65_536));
  const view = (index: number) => new Float32Array(wasm.memory.buffer, offsets[index]!, sizes[index]!);
  view(0).set(proj);
  view(1).set(u);
  if (keep !== null) view(2).set(keep);
  view(4).fill(0);
  view(5).fill(0);
  wasm.lstm(
    offsets[0]!, offsets[1]!, offsets[2]!, offsets[3]!, offsets[4]!, offsets[5]!, offsets[6]!,
    batch, steps, units, padded,
    goBackwards ? 1 : 0, returnSequences ? 1 : 0, keep === null ? 0 : 1,
  );
  // Drop the padded units of every row.
  const source = returnSequences ? view(3) : view(4);
  const rows = returnSequences ? batch * steps : batch;
  const values = new Float32Array(rows * units);
  for (let r = 0; r < rows; r++) values.set(source.subarray(r * padded, r * padded + units), r * units);
  return returnSequences ? tf.tensor3d(values, [batch, steps, units]) : tf.tensor2d(values, [batch, units]);
}

/**
 * `[rows, 4·units]` (gate blocks i, f, c, o) as `[rows, 4·padded]`: each
 * block widened with zero columns, the cell gate's block doubled (tanh(z) =
 * 2σ(2z) − 1 in the kernel).
 */
function gateLayout(m: tf.Tensor2D, units: number, padded: number): tf.Tensor2D {
  const rows = m.shape[0];
  const scale = tf.tensor3d([1, 1, 2, 1], [1, 4, 1]);
  const blocks = tf.mul(tf.reshape(m, [rows, 4, units]), scale);
  const widened = padded === units ? blocks : tf.pad(blocks, [[0, 0], [0, 0], [0, padded - units]]);
  return tf.reshape(widened, [rows, 4 * padded]);
}
