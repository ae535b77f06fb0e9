import type * as tf from '@tensorflow/tfjs-core';
import { KdConfigError } from '../../errors.js';
import { UPDATE_WASM_BASE64 } from './updateWasm.js';

// The memory the replicas of a workerPool run share, its layout, and the
// WebAssembly kernels (update.wat) that reduce the gradients and update the
// weights in it. The main thread lays out and fills the memory; each worker
// reduces and updates its own chunk of every region.

/**
 * Where things are in the shared memory, in float32 elements. Every region is
 * `padded` long (the trainable values rounded up to a multiple of 4, so the
 * SIMD kernels need no tail loop); the padding holds zeros and stays zero.
 *
 * | region | holds |
 * |---|---|
 * | slot w (w = 0 … workers − 1) | worker w's gradient of its shard (its batch mean) |
 * | grad | the batch mean gradient: Σ share_w · slot w, each worker its chunk |
 * | weights | sharded updates only: the trainable weights, every variable flattened in `trainableWeights` order |
 * | first | Adam's first moment, or Momentum's accumulation |
 * | second | Adam's second moment |
 *
 * then `workers` float64 partial squared norms and `workers` float64 shares.
 * A replicated update has no weights or state regions, SGD no state, Momentum
 * no second moment.
 */
export interface ExchangeLayout {
  workers: number;
  /** Trainable values of the student. */
  size: number;
  /** `size` rounded up to a multiple of 4. */
  padded: number;
  /** Elements of each worker's chunk (a multiple of 4; the last chunks may be shorter or empty). */
  chunk: number;
  /** Regions of `padded` floats: the slots and the averaged gradient, then the weights and state regions a sharded update uses. */
  regions: number;
  /** Bytes of memory needed. */
  bytes: number;
}

/**
 * The layout for `workers` replicas of a student with `size` trainable
 * values, with room for the weights and `state` optimizer-state regions when
 * the update is sharded (`state` undefined: replicated, no such regions).
 */
export function exchangeLayout(workers: number, size: number, state?: number): ExchangeLayout {
  const padded = Math.ceil(size / 4) * 4;
  const chunk = Math.ceil(padded / workers / 4) * 4;
  const count = workers + 1 + (state === undefined ? 0 : 1 + state);
  return { workers, size, padded, chunk, regions: count, bytes: count * padded * 4 + 16 * workers };
}

/** Byte offsets of the regions of {@link ExchangeLayout} (weights, first, second: sharded layouts only). */
export const regions = {
  slot: (l: ExchangeLayout, worker: number) => worker * l.padded * 4,
  grad: (l: ExchangeLayout) => l.workers * l.padded * 4,
  weights: (l: ExchangeLayout) => (l.workers + 1) * l.padded * 4,
  first: (l: ExchangeLayout) => (l.workers + 2) * l.padded * 4,
  second: (l: ExchangeLayout) => (l.workers + 3) * l.padded * 4,
  norms: (l: ExchangeLayout) => l.regions * l.padded * 4,
  shares: (l: ExchangeLayout) => l.regions * l.padded * 4 + 8 * l.workers,
};

/** Worker `index`'s chunk of every region: elements [from, to). */
export function chunkOf(layout: ExchangeLayout, index: number): [number, number] {
  const from = Math.min(layout.padded, index * layout.chunk);
  return [from, Math.min(layout.padded, from + layout.chunk)];
}

/** A float32 view of `length` elements at byte `offset` of the memory. */
export function floats(memory: WebAssembly.Memory, offset: number, length: number): Float32Array {
  return new Float32Array(memory.buffer, offset, length);
}

/** WebAssembly's 32-bit memories stop at 65,536 pages of 64 KiB. */
const MAX_PAGES = 65_536;

/**
 * The shared memory of a run, zero-filled.
 *
 * @throws {@link KdConfigError} `INVALID_OPTION` when it would pass WebAssembly's 4 GiB.
 */
export function exchangeMemory(layout: ExchangeLayout): WebAssembly.Memory {
  const pages = Math.ceil(layout.bytes / 65_536);
  if (pages > MAX_PAGES) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `a student of ${layout.size.toLocaleString('en-US')} trainable values needs ${(layout.bytes / 2 ** 30).toFixed(1)} GiB of shared memory ` +
        `with ${layout.workers} workers (${layout.regions} copies of its values), above WebAssembly's 4 GiB: use fewer workers, or train without parallel`,
    );
  }
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

/** The kernels of update.wat; pointers are byte offsets into the shared memory, `n` a multiple of 4. */
export interface UpdateKernels {
  addScaled(dst: number, src: number, n: number, s: number, first: number): void;
  sumSquares(p: number, n: number): number;
  scale(p: number, n: number, s: number): void;
  sgd(w: number, g: number, n: number, c: number): void;
  momentum(w: number, g: number, acc: number, n: number, c: number, m: number, nesterov: number): void;
  adam(
    w: number, g: number, m: number, v: number, n: number,
    c: number, b1: number, b2: number, oneMinusB1: number, oneMinusB2: number,
    oneMinusAccB1: number, oneMinusAccB2: number, eps: number,
  ): void;
}

let compiled: WebAssembly.Module | undefined;

/** update.wat's kernels, working on `memory`. */
export function updateKernels(memory: WebAssembly.Memory): UpdateKernels {
  compiled ??= new WebAssembly.Module(Buffer.from(UPDATE_WASM_BASE64, 'base64'));
  return new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as UpdateKernels;
}

/**
 * How the replicas update the weights. `adam`, `momentum` and `sgd` (tfjs's
 * `Adam`, `Momentum` and `SGD` optimizers) are sharded: each worker updates
 * its chunk of the weights with the kernels and the others read it from the
 * shared memory, so the update costs each worker 1/workers of it. Any other
 * optimizer is `replicated`: every worker applies the whole averaged gradient
 * with its own copy of the optimizer.
 */
export type UpdateSpec =
  | { kind: 'adam'; iterations: number; beta1: number; beta2: number; epsilon: number }
  | { kind: 'momentum'; iterations: number; momentum: number; useNesterov: boolean }
  | { kind: 'sgd'; iterations: number }
  | { kind: 'replicated' };

/** The sharded update for `optimizer`, or `replicated` when its class has none. */
export function updateSpecOf(optimizer: tf.Optimizer, iterations: number): UpdateSpec {
  const config = optimizer.getConfig() as Record<string, unknown>;
  switch (optimizer.getClassName()) {
    case 'Adam':
      return { kind: 'adam', iterations, beta1: Number(config.beta1), beta2: Number(config.beta2), epsilon: Number(config.epsilon) };
    case 'Momentum':
      return { kind: 'momentum', iterations, momentum: Number(config.momentum), useNesterov: config.useNesterov === true };
    case 'SGD':
      return { kind: 'sgd', iterations };
    default:
      return { kind: 'replicated' };
  }
}

/** The optimizer's state variables per trainable variable kept in the shared memory: regions `first`, then `second`. */
export function stateRegions(spec: UpdateSpec): number {
  return spec.kind === 'adam' ? 2 : spec.kind === 'momentum' ? 1 : 0;
}

/**
 * Updates this worker's chunk of the weights from its chunk of the averaged
 * gradient, as the tfjs optimizer of the spec's class would (float32, the
 * same operations in the same order). Adam's bias corrections are taken
 * from the step count as `1 − β^(t+1)` in float64, where tfjs multiplies a
 * float32 accumulator by float32 β each step: the two drift apart slowly (for
 * β₂ = 0.999, about 4e-6 of the step's size after 1,000 steps).
 */
export function applyUpdate(
  kernels: UpdateKernels,
  layout: ExchangeLayout,
  index: number,
  spec: Exclude<UpdateSpec, { kind: 'replicated' }>,
  learningRate: number,
): void {
  const [from, to] = chunkOf(layout, index);
  const n = to - from;
  if (n === 0) return;
  const at = (region: number) => region + from * 4;
  const c = -learningRate;
  if (spec.kind === 'sgd') {
    kernels.sgd(at(regions.weights(layout)), at(regions.grad(layout)), n, c);
  } else if (spec.kind === 'momentum') {
    kernels.momentum(at(regions.weights(layout)), at(regions.grad(layout)), at(regions.first(layout)), n, c, spec.momentum, spec.useNesterov ? 1 : 0);
  } else {
    const accB1 = Math.fround(spec.beta1 ** (spec.iterations + 1));
    const accB2 = Math.fround(spec.beta2 ** (spec.iterations + 1));
    kernels.adam(
      at(regions.weights(layout)), at(regions.grad(layout)), at(regions.first(layout)), at(regions.second(layout)), n,
      c, spec.beta1, spec.beta2, Math.fround(1 - spec.beta1), Math.fround(1 - spec.beta2),
      Math.fround(1 - accB1), Math.fround(1 - accB2), spec.epsilon,
    );
  }
}
