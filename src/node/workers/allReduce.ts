import * as tf from '@tensorflow/tfjs-core';
import { CONTROL } from './protocol.js';
import {
  applyUpdate,
  chunkOf,
  floats,
  regions,
  updateKernels,
  type ExchangeLayout,
  type UpdateKernels,
  type UpdateSpec,
} from './sharedUpdate.js';

/** Thrown in a worker whose barrier was aborted because another worker (or the main thread) gave up. */
export class BarrierAborted extends Error {
  constructor() {
    super('another worker failed: this step was abandoned');
    this.name = 'BarrierAborted';
  }
}

/**
 * One worker's side of the synchronous exchange over the pool's shared memory
 * (layout in sharedUpdate.ts). Each step:
 *
 * 1. the worker copies its gradients (its shard's mean) into its slot and
 *    records its share of the batch; barrier;
 * 2. it sums chunk i of every slot, weighted by the shares, in slot order
 *    (the same bits on every run, whichever worker sums), into the averaged
 *    gradient; with clipNorm, the chunks' squared norms are added up after a
 *    barrier, and each chunk scaled;
 * 3. sharded optimizers: it updates chunk i of the weights (and of the
 *    optimizer's state) with the kernels; barrier; every worker copies the
 *    whole weights region into its variables.
 *    Replicated optimizers: barrier; every worker reads the whole averaged
 *    gradient and applies it with its own optimizer.
 *
 * No worker writes the next step's slot before all have passed the last
 * barrier, so one set of regions suffices.
 */
export class SharedExchange {
  private readonly control: Int32Array;
  private readonly kernels: UpdateKernels;
  private readonly norms: Float64Array;
  private readonly shares: Float64Array;

  constructor(
    control: SharedArrayBuffer,
    readonly memory: WebAssembly.Memory,
    readonly layout: ExchangeLayout,
    readonly index: number,
  ) {
    this.control = new Int32Array(control);
    this.kernels = updateKernels(memory);
    this.norms = new Float64Array(memory.buffer, regions.norms(layout), layout.workers);
    this.shares = new Float64Array(memory.buffer, regions.shares(layout), layout.workers);
  }

  /**
   * Steps 1 and 2: this worker's gradients in, its chunk of the averaged
   * (and clipped) gradient out. Returns after the barrier that follows the
   * sum only when `waitForAll` (the replicated path reads every chunk).
   *
   * @param parts - This worker's gradients in variable order (undefined: zeros).
   * @param share - This worker's share of the batch mean (0: no rows).
   */
  reduce(parts: Array<tf.Tensor | undefined>, sizes: readonly number[], share: number, clipNorm: number | undefined): void {
    const { layout, index, kernels } = this;
    const slot = floats(this.memory, regions.slot(layout, index), layout.size);
    let offset = 0;
    parts.forEach((part, i) => {
      const n = sizes[i]!;
      if (part === undefined || share === 0) slot.fill(0, offset, offset + n);
      else readInto(part, slot, offset);
      offset += n;
    });
    this.shares[index] = share;
    this.barrier();
    const [from, to] = chunkOf(layout, index);
    const n = to - from;
    const grad = regions.grad(layout) + from * 4;
    let first = 1;
    for (let w = 0; w < layout.workers; w++) {
      const s = this.shares[w]!;
      if (s === 0) continue;
      kernels.addScaled(grad, regions.slot(layout, w) + from * 4, n, s, first);
      first = 0;
    }
    if (first === 1 && n > 0) floats(this.memory, grad, n).fill(0);
    if (clipNorm !== undefined) {
      this.norms[index] = n === 0 ? 0 : kernels.sumSquares(grad, n);
      this.barrier();
      let squares = 0;
      for (let w = 0; w < layout.workers; w++) squares += this.norms[w]!;
      const norm = Math.sqrt(squares);
      // tf.clipByGlobalNorm's rule: scale by clipNorm / max(norm, clipNorm); a NaN norm makes every value NaN, as it does there.
      if (!(norm <= clipNorm) && n > 0) kernels.scale(grad, n, clipNorm / norm);
    }
  }

  /** Step 3, sharded: updates this worker's chunk, then waits for the others' and returns the weights region. */
  update(spec: Exclude<UpdateSpec, { kind: 'replicated' }>, learningRate: number): Float32Array {
    applyUpdate(this.kernels, this.layout, this.index, spec, learningRate);
    this.barrier();
    return floats(this.memory, regions.weights(this.layout), this.layout.size);
  }

  /** Step 3, replicated: waits for every chunk and returns the averaged gradient (a view: copy what you keep). */
  averaged(): Float32Array {
    this.barrier();
    return floats(this.memory, regions.grad(this.layout), this.layout.size);
  }

  /** Marks the run as failed and wakes every waiting worker. */
  abort(): void {
    Atomics.store(this.control, CONTROL.ABORT, 1);
    Atomics.notify(this.control, CONTROL.GENERATION);
  }

  private barrier(): void {
    const control = this.control;
    const generation = Atomics.load(control, CONTROL.GENERATION);
    if (Atomics.load(control, CONTROL.ABORT) !== 0) throw new BarrierAborted();
    if (Atomics.add(control, CONTROL.COUNT, 1) === this.layout.workers - 1) {
      Atomics.store(control, CONTROL.COUNT, 0);
      Atomics.add(control, CONTROL.GENERATION, 1);
      Atomics.notify(control, CONTROL.GENERATION);
      return;
    }
    while (Atomics.load(control, CONTROL.GENERATION) === generation) {
      if (Atomics.load(control, CONTROL.ABORT) !== 0) throw new BarrierAborted();
      // A timeout too, so an abort set without a notify is still seen.
      Atomics.wait(control, CONTROL.GENERATION, generation, 200);
    }
  }
}

/**
 * The optimizer a replica's training step sees: `applyGradients` hands this
 * replica's gradients to the {@link SharedExchange} and waits for every
 * replica; then either every replica copies the weights the sharded update
 * wrote (Adam, Momentum, SGD), or applies the averaged gradient with the real
 * optimizer (any other class). Every replica takes the same step. Optional
 * global-norm clipping acts on the averaged gradient, as it would on a single
 * process's gradient.
 */
export class AllReduceOptimizer extends tf.Optimizer {
  /** Not registered: it never leaves the worker. */
  static className = 'KdAllReduceOptimizer';
  /** This replica's share of the current batch (rows / batch rows). */
  share = 1;
  private readonly sizes: number[];
  /** The learning rate of a sharded update (a replicated one reads and sets the real optimizer's). */
  private rate: number;

  /**
   * @param inner - The real optimizer, for a `replicated` update only: a sharded update needs
   *   nothing of it but its config (the kernels hold the state), so none is built.
   * @param config - The user's optimizer's config (`learningRate`, betas...).
   */
  constructor(
    readonly inner: tf.Optimizer | undefined,
    private readonly config: tf.serialization.ConfigDict,
    private readonly variables: readonly tf.Variable[],
    private readonly exchange: SharedExchange,
    private readonly spec: UpdateSpec,
    private readonly clipNorm?: number,
  ) {
    super();
    this.sizes = variables.map((v) => v.size);
    this.rate = Number(config.learningRate);
  }

  override applyGradients(gradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    const map: tf.NamedTensorMap = Array.isArray(gradients)
      ? Object.fromEntries(gradients.map((g) => [g.name, g.tensor]))
      : gradients;
    this.reduceAndApply(this.variables.map((v) => map[v.name]), this.share);
  }

  /** Takes part in a step with no rows of its own (a batch smaller than the pool). */
  applyNothing(): void {
    this.reduceAndApply(this.variables.map(() => undefined), 0);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.inner?.getConfig() ?? this.config;
  }

  /**
   * The learning rate, which kd-ts's step reads for its `learningRate` log
   * and sets for `compile({ learningRate })`; undefined when the real
   * optimizer keeps none.
   */
  get learningRate(): number | undefined {
    if (this.inner === undefined) return this.rate;
    const value = (this.inner as unknown as { learningRate?: unknown }).learningRate;
    return typeof value === 'number' ? value : undefined;
  }

  set learningRate(value: number | undefined) {
    if (value !== undefined) this.setLearningRate(value);
  }

  /** Sets the learning rate (on a replicated optimizer through its own `setLearningRate` where it has one: SGD, Momentum). */
  setLearningRate(value: number): void {
    if (this.inner === undefined) {
      this.rate = value;
      return;
    }
    const inner = this.inner as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
    if (typeof inner.setLearningRate === 'function') inner.setLearningRate(value);
    else inner.learningRate = value;
  }

  override dispose(): void {
    this.inner?.dispose();
    super.dispose();
  }

  private reduceAndApply(parts: Array<tf.Tensor | undefined>, share: number): void {
    const { exchange, spec, variables, sizes } = this;
    exchange.reduce(parts, sizes, share, this.clipNorm);
    if (spec.kind === 'replicated') {
      this.applyReplicated(exchange.averaged());
      return;
    }
    const weights = exchange.update(spec, this.rate);
    spec.iterations++;
    // The cpu backend keeps the array a tensor is made from; wasm copies it into its heap.
    const copy = tf.getBackend() !== 'wasm';
    let offset = 0;
    variables.forEach((v, i) => {
      const values = weights.subarray(offset, offset + sizes[i]!);
      const fresh = tf.tensor(copy ? values.slice() : values, v.shape, 'float32');
      v.assign(fresh);
      fresh.dispose();
      offset += sizes[i]!;
    });
  }

  private applyReplicated(averaged: Float32Array): void {
    const named: tf.NamedTensorMap = {};
    let offset = 0;
    this.variables.forEach((v, i) => {
      // A copy: the shared sum is rewritten at the next step, and the cpu backend keeps the arrays it is given.
      named[v.name] = tf.tensor(averaged.slice(offset, offset + this.sizes[i]!), v.shape, 'float32');
      offset += this.sizes[i]!;
    });
    try {
      this.inner!.applyGradients(named);
    } finally {
      tf.dispose(Object.values(named));
    }
  }
}

/** What tfjs-backend-wasm offers to read a tensor's heap memory without a copy (typed structurally). */
interface HeapBackend {
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/** Copies a float32 tensor's values into `target` at `offset`: straight from the wasm heap when the backend is wasm. */
function readInto(tensor: tf.Tensor, target: Float32Array, offset: number): void {
  const backend = tf.engine().backend as Partial<HeapBackend>;
  if (tf.getBackend() === 'wasm' && typeof backend.typedArrayFromHeap === 'function' && tensor.dtype === 'float32') {
    target.set(backend.typedArrayFromHeap(tensor) as Float32Array, offset);
  } else {
    target.set(tensor.dataSync() as Float32Array, offset);
  }
}
