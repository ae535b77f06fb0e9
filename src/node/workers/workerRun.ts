import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { KdConfigError, type KdBackendError } from '../../errors.js';
import type { ParallelBatch, ParallelRun, ParallelRunSpec } from '../../distill/parallel.js';
import type { StepLogs } from '../../distill/trainStep.js';
import { SCHEDULED_LOG_KEYS } from '../../distill/epochLoop.js';
import type { ModelInputs } from '../../inputs/modelInputs.js';
import {
  CONTROL,
  inputsData,
  readInputs,
  tensorData,
  type BeginMessage,
  type FromWorker,
  type ModelData,
  type StepMessage,
  type TensorData,
} from './protocol.js';
import type { Thread } from './workerPool.js';
import {
  exchangeLayout,
  exchangeMemory,
  floats,
  regions,
  stateRegions,
  updateSpecOf,
  type ExchangeLayout,
  type UpdateSpec,
} from './sharedUpdate.js';

/** tfjs flags the workers copy from the main thread (the console banner and checks follow them). */
const COPIED_FLAGS = ['PROD', 'IS_TEST', 'DEBUG'];

/** One `fit` on a worker pool: the main thread's side of {@link ParallelRun}. */
export class WorkerRun implements ParallelRun {
  readonly replicatesTeacher: boolean;
  private readonly control = new SharedArrayBuffer(CONTROL.LENGTH * 4);
  private failure?: unknown;
  private ended = false;
  private update: UpdateSpec = { kind: 'replicated' };
  private layout?: ExchangeLayout;
  private memory?: WebAssembly.Memory;
  /** Steps every replica took in this run (the optimizer's iterations since the start). */
  private steps = 0;

  constructor(
    private readonly threads: Thread[],
    private readonly spec: ParallelRunSpec,
    replicateTeacher: boolean,
    private readonly onEnd: () => void,
  ) {
    this.replicatesTeacher = replicateTeacher;
  }

  /** Sends the replicas' models, optimizer and settings; resolves when every worker is ready. */
  async start(): Promise<void> {
    const { spec } = this;
    const variables = spec.student.trainableWeights.map((w) => w.read());
    const size = variables.reduce((n, v) => n + v.size, 0);
    const optimizerState = await spec.optimizer.getWeights();
    try {
      await this.sendBegin(variables, size, optimizerState);
    } finally {
      // Only the step count is a fresh tensor; the rest are the optimizer's own variables.
      optimizerState[0]?.tensor.dispose();
    }
  }

  /** Lays out and fills the shared memory, then sends every worker its `begin`. */
  private async sendBegin(variables: tf.Tensor[], size: number, optimizerState: Array<{ name: string; tensor: tf.Tensor }>): Promise<void> {
    const { spec } = this;
    const iterations = optimizerState.length === 0 ? 0 : (await optimizerState[0]!.tensor.data())[0]!;
    this.update = updateSpecOf(spec.optimizer, iterations);
    this.layout = exchangeLayout(this.threads.length, size, this.update.kind === 'replicated' ? undefined : stateRegions(this.update));
    this.memory = exchangeMemory(this.layout);
    const flags: Record<string, boolean> = {};
    for (const flag of COPIED_FLAGS) flags[flag] = tf.env().getBool(flag);
    const message: Omit<BeginMessage, 'student' | 'teacher' | 'optimizer'> & Partial<BeginMessage> = {
      type: 'begin',
      backend: tf.getBackend(),
      flags,
      stepOptions: spec.stepOptions as Record<string, unknown>,
      temperature: spec.temperature,
      ...(spec.seed === undefined ? {} : { seed: String(spec.seed) }),
      control: this.control,
      memory: this.memory,
      layout: this.layout,
      update: this.update,
    };
    const sharded = this.update.kind !== 'replicated';
    if (sharded) {
      // The weights and the optimizer's state live in the shared memory; each worker updates its chunk.
      writeFlat(this.memory, regions.weights(this.layout), variables.map((v) => v.dataSync() as Float32Array));
      writeState(this.memory, this.layout, this.update, optimizerState.slice(1).map((w) => w.tensor), variables);
    }
    const optimizer = {
      className: spec.optimizer.getClassName(),
      config: spec.optimizer.getConfig(),
      state: sharded ? [] : optimizerState.map((w) => dataOf(w.tensor)),
    };
    const student = modelData(spec.student);
    const teacher = this.replicatesTeacher ? modelData(spec.teacherModel!) : undefined;
    // Each worker gets its own copy of the weights (the buffers are transferred, not shared).
    await this.all(() => ({
      ...message,
      student: copyModel(student),
      ...(teacher === undefined ? {} : { teacher: copyModel(teacher) }),
      optimizer: { ...optimizer, state: optimizer.state.map(copyData) },
    }) as BeginMessage);
  }

  async step(batch: ParallelBatch): Promise<StepLogs> {
    const rows = batch.inputs instanceof tf.Tensor ? batch.inputs.shape[0]! : firstRows(batch.inputs);
    const shards = splitRows(rows, this.threads.length);
    const inputs = await readInputs(batch.inputs);
    const labels = batch.labels === undefined ? undefined : await readInputs(batch.labels);
    const teacherInputs = batch.teacherInputs === undefined || !this.replicatesTeacher ? undefined : await readInputs(batch.teacherInputs);
    const outputs = batch.teacherLogits;
    const teacherLogits = outputs === undefined || !(outputs instanceof tf.Tensor) ? undefined : await readInputs(outputs);
    const topK = outputs === undefined || outputs instanceof tf.Tensor ? undefined : { ids: await readInputs(outputs.ids), logits: await readInputs(outputs.logits) };
    const mask = batch.mask === undefined ? undefined : await readInputs(batch.mask);
    const weights = shardWeights(shards, mask?.[0]);
    const replies = await this.all((i) => {
      const range = shards[i]!;
      const count = weights.examples[i]! === 0 ? 0 : range[1] - range[0];
      const message: StepMessage = { type: 'step', rows: count, share: weights.examples[i]! / weights.totalExamples };
      if (count === 0) return message;
      message.inputs = inputsData(batch.inputs, inputs, range);
      if (labels !== undefined) message.labels = shard(labels, range);
      if (teacherInputs !== undefined) message.teacherInputs = inputsData(batch.teacherInputs!, teacherInputs, range);
      if (teacherLogits !== undefined) message.teacherLogits = shard(teacherLogits, range);
      if (topK !== undefined) message.teacherTopK = { ids: shard(topK.ids, range), logits: shard(topK.logits, range) };
      if (mask !== undefined) message.mask = shard(mask, range);
      return message;
    });
    this.steps++;
    return combineLogs(
      replies.map((r) => (r.type === 'logs' ? r.logs : {})),
      weights.examples,
      weights.tokens,
    );
  }

  async pullWeights(): Promise<void> {
    const { student } = this.spec;
    if (this.update.kind !== 'replicated' && student.nonTrainableWeights.length === 0) {
      // Every replica holds the shared memory's weights region: read it here, without a round trip.
      const weights = floats(this.memory!, regions.weights(this.layout!), this.layout!.size);
      let offset = 0;
      for (const w of student.trainableWeights) {
        const shape = w.shape as number[];
        const n = tf.util.sizeFromShape(shape);
        const fresh = tf.tensor(weights.slice(offset, offset + n), shape, 'float32');
        w.write(fresh);
        fresh.dispose();
        offset += n;
      }
      return;
    }
    const reply = await this.threads[0]!.request({ type: 'weights' });
    if (reply.type !== 'weights') return;
    setWeights(this.spec.student, reply.weights);
  }

  async end(options: { failed?: boolean } = {}): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      if (!options.failed && this.failure === undefined) await this.pullOptimizerState();
      await Promise.all(this.threads.filter((t) => t.failure === undefined).map((t) => t.request({ type: 'end' }).catch(() => undefined)));
    } finally {
      this.onEnd();
    }
  }

  /**
   * Gives the user's optimizer the replicas' state (Adam's moments, its step
   * count), so a later fit continues from it: read from the shared memory for
   * a sharded update, asked from worker 0 otherwise.
   */
  private async pullOptimizerState(): Promise<void> {
    let state: Array<{ name: string; tensor: tf.Tensor }>;
    if (this.update.kind === 'replicated') {
      const reply = await this.threads[0]!.request({ type: 'optimizer' });
      if (reply.type !== 'optimizer' || reply.state.length === 0) return;
      state = reply.state.map((s, i) => ({ name: `state_${i}`, tensor: tf.tensor(s.data, s.shape, s.dtype) }));
    } else {
      const iterations = this.update.iterations + this.steps;
      const shapes = this.spec.student.trainableWeights.map((w) => w.shape as number[]);
      state = [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }];
      for (let r = 0; r < stateRegions(this.update); r++) {
        const base = r === 0 ? regions.first(this.layout!) : regions.second(this.layout!);
        let offset = 0;
        for (const [i, shape] of shapes.entries()) {
          const n = tf.util.sizeFromShape(shape);
          state.push({ name: `state_${r}_${i}`, tensor: tf.tensor(floats(this.memory!, base + offset * 4, n).slice(), shape, 'float32') });
          offset += n;
        }
      }
    }
    // tfjs optimizers' setWeights replaces their variables without disposing the old ones.
    const previous = await this.spec.optimizer.getWeights();
    await this.spec.optimizer.setWeights(state);
    tf.dispose([...state, ...previous].map((s) => s.tensor));
  }

  /** Stops the run after a crash: workers waiting at the barrier give up. */
  abort(failure: KdBackendError): void {
    this.failure = failure;
    const control = new Int32Array(this.control);
    Atomics.store(control, CONTROL.ABORT, 1);
    Atomics.notify(control, CONTROL.GENERATION);
  }

  /**
   * Sends each worker its message and waits for every reply. When some fail,
   * throws the first real failure (not a worker that only gave up at the
   * barrier because of it).
   */
  private async all(messageFor: (index: number) => Parameters<Thread['request']>[0]): Promise<FromWorker[]> {
    const settled = await Promise.allSettled(this.threads.map((t, i) => t.request(messageFor(i))));
    const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as unknown);
    if (failures.length > 0) {
      const real = failures.find((e) => !isAborted(e)) ?? failures[0];
      this.failure ??= real;
      throw this.failure;
    }
    return settled.map((s) => (s as PromiseFulfilledResult<FromWorker>).value);
  }
}

/** Contiguous row ranges, one per worker, sizes differing by one at most. */
export function splitRows(rows: number, workers: number): Array<[number, number]> {
  const base = Math.floor(rows / workers);
  const extra = rows % workers;
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < workers; i++) {
    const count = base + (i < extra ? 1 : 0);
    ranges.push([start, start + count]);
    start += count;
  }
  return ranges;
}

/** Logs that count unmasked tokens, not examples, in a token-level run. */
const PER_TOKEN_LOG_KEYS: ReadonlySet<string> = new Set(['acc', 'agreement']);

/**
 * Example-weighted mean of the shards' logs (shards without rows left out);
 * with `tokens` (a token-level run with a mask), accuracy and agreement are
 * weighted by each shard's unmasked tokens instead; the step's settings as they are.
 */
export function combineLogs(logs: Array<Record<string, number>>, rows: number[], tokens?: number[]): StepLogs {
  const total = rows.reduce((a, b) => a + b, 0);
  const tokenTotal = tokens?.reduce((a, b) => a + b, 0) ?? 0;
  const out: Record<string, number> = {};
  logs.forEach((shardLogs, i) => {
    if (rows[i] === 0) return;
    for (const [key, value] of Object.entries(shardLogs)) {
      // A setting (temperature, learningRate...) is the same in every shard: kept as is, not re-rounded by a mean.
      if (SCHEDULED_LOG_KEYS.has(key)) out[key] = value;
      else if (tokens !== undefined && tokenTotal > 0 && PER_TOKEN_LOG_KEYS.has(key)) out[key] = (out[key] ?? 0) + (value * tokens[i]!) / tokenTotal;
      else out[key] = (out[key] ?? 0) + (value * rows[i]!) / total;
    }
  });
  return out as StepLogs;
}

/**
 * What each shard weighs in the batch's mean. Without a mask: its rows.
 * With a token mask, as the token-level loss reduces: the loss is a mean over
 * the examples that have an unmasked token (so a shard weighs its count of
 * those, and a shard without any takes no rows), accuracy and agreement a
 * mean over unmasked tokens. A batch masked everywhere keeps the row weights,
 * so the workers report the single process's error.
 */
export function shardWeights(
  shards: Array<[number, number]>,
  mask?: [tf.Tensor, TensorData['data']],
): { examples: number[]; totalExamples: number; tokens?: number[] } {
  const rows = shards.map(([from, to]) => to - from);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  if (mask === undefined) return { examples: rows, totalExamples: sum(rows) };
  const [tensor, values] = mask;
  const stride = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  const examples: number[] = [];
  const tokens: number[] = [];
  for (const [from, to] of shards) {
    let withTokens = 0;
    let count = 0;
    for (let row = from; row < to; row++) {
      let inRow = 0;
      for (let j = row * stride; j < (row + 1) * stride; j++) inRow += Number(values[j]!);
      if (inRow > 0) withTokens++;
      count += inRow;
    }
    examples.push(withTokens);
    tokens.push(count);
  }
  if (sum(examples) === 0) return { examples: rows, totalExamples: sum(rows), tokens };
  return { examples, totalExamples: sum(examples), tokens };
}

function isAborted(error: unknown): boolean {
  const cause = (error as { cause?: { name?: string } })?.cause;
  return cause?.name === 'BarrierAborted';
}

function firstRows(inputs: ModelInputs): number {
  const first = Array.isArray(inputs) ? inputs[0] : Object.values(inputs as tf.NamedTensorMap)[0];
  return first?.shape[0] ?? 0;
}

function shard(read: Array<[tf.Tensor, TensorData['data']]>, range: [number, number]): TensorData {
  const [tensor, values] = read[0]!;
  return tensorData(tensor, values, range);
}

function dataOf(tensor: tf.Tensor): TensorData {
  return { shape: tensor.shape.slice(), dtype: tensor.dtype, data: (tensor.dataSync() as TensorData['data']).slice() };
}

function copyData(data: TensorData): TensorData {
  return { ...data, data: data.data.slice() };
}

function modelData(model: tfl.LayersModel): ModelData {
  return { topology: model.toJSON(null, false) as object, weights: model.weights.map((w) => dataOf(w.read())) };
}

function copyModel(model: ModelData): ModelData {
  return { topology: model.topology, weights: model.weights.map(copyData) };
}

function setWeights(model: tfl.LayersModel, weights: TensorData[]): void {
  const tensors = weights.map((w) => tf.tensor(w.data, w.shape, w.dtype));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/** Writes `parts` one after another from byte `offset` of the shared memory. */
function writeFlat(memory: WebAssembly.Memory, offset: number, parts: Float32Array[]): void {
  let at = offset;
  for (const part of parts) {
    floats(memory, at, part.length).set(part);
    at += part.length * 4;
  }
}

/**
 * Writes the optimizer's state variables (tfjs's `getWeights()` order, the
 * step count left out: Adam's first moments then its second moments,
 * Momentum's accumulations) into the shared memory's state regions. A fresh
 * optimizer has none: the regions keep their zeros, as tfjs starts them.
 *
 * @throws {@link KdConfigError} `INVALID_OPTION` when the state does not match the student's trainable weights.
 */
function writeState(memory: WebAssembly.Memory, layout: ExchangeLayout, update: UpdateSpec, state: tf.Tensor[], variables: tf.Tensor[]): void {
  if (state.length === 0) return;
  const perRegion = variables.length;
  const fits = state.length === perRegion * stateRegions(update) && state.every((s, i) => s.size === variables[i % perRegion]!.size);
  if (!fits) {
    throw new KdConfigError(
      'INVALID_OPTION',
      `the optimizer holds state for ${state.length} variables that do not match the student's ${perRegion} trainable weights ` +
        '(was it used to train another model?): compile the Distiller with a fresh optimizer',
    );
  }
  for (let r = 0; r < stateRegions(update); r++) {
    const base = r === 0 ? regions.first(layout) : regions.second(layout);
    writeFlat(memory, base, state.slice(r * perRegion, (r + 1) * perRegion).map((s) => s.dataSync() as Float32Array));
  }
}