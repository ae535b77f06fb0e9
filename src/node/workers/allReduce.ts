import * as tf from '@tensorflow/tfjs-core';
import { CONTROL } from './protocol.js';

/** Thrown in a worker whose barrier was aborted because another worker (or the main thread) gave up. */
export class BarrierAborted extends Error {
  constructor() {
    super('another worker failed: this step was abandoned');
    this.name = 'BarrierAborted';
  }
}

/**
 * Synchronous gradient averaging over shared memory, one instance per worker.
 *
 * Layout of the gradient buffer: one slot of `size` floats per worker, then
 * the reduced sum. Each step: every worker writes its weighted gradients into
 * its slot; barrier; worker i sums chunk i of every slot (in slot order, so
 * the sum is the same bits whichever worker reads it) into the sum; barrier;
 * every worker reads the whole sum. No worker can write the next step's slot
 * before everyone has passed the second barrier, so one set of slots suffices.
 */
export class SharedGradients {
  private readonly control: Int32Array;
  private readonly buffer: Float32Array;

  /**
   * @param control - The shared control buffer ({@link CONTROL} layout).
   * @param gradients - Shared buffer of `(workers + 1) * size` floats.
   * @param index - This worker's index.
   * @param workers - Number of workers.
   * @param size - Floats per gradient (all trainable variables, in order).
   */
  constructor(
    control: SharedArrayBuffer,
    gradients: SharedArrayBuffer,
    readonly index: number,
    readonly workers: number,
    readonly size: number,
  ) {
    this.control = new Int32Array(control);
    this.buffer = new Float32Array(gradients);
  }

  /**
   * Sums every worker's contribution.
   *
   * @param parts - This worker's gradients in variable order (undefined: zeros).
   * @param weight - Multiplies this worker's gradients (its share of the batch).
   * @returns The sum: a view on shared memory, valid until this worker's next call (copy what you keep).
   */
  allReduce(parts: Array<Float32Array | undefined>, sizes: readonly number[], weight: number): Float32Array {
    const { buffer, size, workers, index } = this;
    const slot = buffer.subarray(index * size, (index + 1) * size);
    let offset = 0;
    parts.forEach((part, i) => {
      const n = sizes[i]!;
      if (part === undefined) slot.fill(0, offset, offset + n);
      else if (weight === 1) slot.set(part, offset);
      else for (let j = 0; j < n; j++) slot[offset + j] = part[j]! * weight;
      offset += n;
    });
    this.barrier();
    // Row by row over the slots (slot 0 + slot 1 + ...): the same order, hence the same bits, on every run.
    const chunk = Math.ceil(size / workers);
    const from = Math.min(size, index * chunk);
    const to = Math.min(size, from + chunk);
    const sum = buffer.subarray(workers * size + from, workers * size + to);
    sum.set(buffer.subarray(from, to));
    for (let w = 1; w < workers; w++) {
      const other = buffer.subarray(w * size + from, w * size + to);
      for (let j = 0; j < other.length; j++) sum[j] = sum[j]! + other[j]!;
    }
    this.barrier();
    return buffer.subarray(workers * size, (workers + 1) * size);
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
    if (Atomics.add(control, CONTROL.COUNT, 1) === this.workers - 1) {
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
 * replica's gradients to {@link SharedGradients}, waits for every replica,
 * and applies the sum (the full batch's mean gradient) with the real
 * optimizer, so every replica takes the same step. Optional global-norm
 * clipping acts on the sum, as it would on a single process's gradient.
 */
export class AllReduceOptimizer extends tf.Optimizer {
  /** Not registered: it never leaves the worker. */
  static className = 'KdAllReduceOptimizer';
  /** This replica's share of the current batch (rows / batch rows). */
  share = 1;

  constructor(
    readonly inner: tf.Optimizer,
    private readonly variables: readonly tf.Variable[],
    private readonly reducer: SharedGradients,
    private readonly clipNorm?: number,
  ) {
    super();
  }

  override applyGradients(gradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    const map: tf.NamedTensorMap = Array.isArray(gradients)
      ? Object.fromEntries(gradients.map((g) => [g.name, g.tensor]))
      : gradients;
    this.reduceAndApply(this.variables.map((v) => map[v.name]?.dataSync() as Float32Array | undefined), this.share);
  }

  /** Takes part in a step with no rows of its own (a batch smaller than the pool). */
  applyNothing(): void {
    this.reduceAndApply(this.variables.map(() => undefined), 0);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.inner.getConfig();
  }

  /**
   * The real optimizer's learning rate, which kd-ts's step reads for its
   * `learningRate` log and sets for `compile({ learningRate })`; undefined
   * when the real optimizer keeps none.
   */
  get learningRate(): number | undefined {
    const value = (this.inner as unknown as { learningRate?: unknown }).learningRate;
    return typeof value === 'number' ? value : undefined;
  }

  set learningRate(value: number | undefined) {
    if (value !== undefined) this.setLearningRate(value);
  }

  /** Sets the real optimizer's learning rate (through its own `setLearningRate` where it has one: SGD, Momentum). */
  setLearningRate(value: number): void {
    const inner = this.inner as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
    if (typeof inner.setLearningRate === 'function') inner.setLearningRate(value);
    else inner.learningRate = value;
  }

  override dispose(): void {
    this.inner.dispose();
    super.dispose();
  }

  private reduceAndApply(parts: Array<Float32Array | undefined>, share: number): void {
    const sizes = this.variables.map((v) => v.size);
    // A copy: the shared sum is rewritten at the next step, and the cpu backend keeps the arrays it is given.
    const sum = this.reducer.allReduce(parts, sizes, share).slice();
    if (this.clipNorm !== undefined) clipByGlobalNorm(sum, this.clipNorm);
    const named: tf.NamedTensorMap = {};
    let offset = 0;
    this.variables.forEach((v, i) => {
      named[v.name] = tf.tensor(sum.subarray(offset, offset + sizes[i]!), v.shape, 'float32');
      offset += sizes[i]!;
    });
    try {
      this.inner.applyGradients(named);
    } finally {
      tf.dispose(Object.values(named));
    }
  }
}

/** Scales `values` in place so their L2 norm is at most `clipNorm` (tf.clip_by_global_norm). */
function clipByGlobalNorm(values: Float32Array, clipNorm: number): void {
  let squares = 0;
  for (let j = 0; j < values.length; j++) squares += values[j]! * values[j]!;
  const norm = Math.sqrt(squares);
  if (norm <= clipNorm) return;
  const scale = clipNorm / norm;
  for (let j = 0; j < values.length; j++) values[j] = values[j]! * scale;
}
