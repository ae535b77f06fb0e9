import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { KdBackendError } from '../../errors.js';
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

/** tfjs flags the workers copy from the main thread (the console banner and checks follow them). */
const COPIED_FLAGS = ['PROD', 'IS_TEST', 'DEBUG'];

/** One `fit` on a worker pool: the main thread's side of {@link ParallelRun}. */
export class WorkerRun implements ParallelRun {
  readonly replicatesTeacher: boolean;
  private readonly control = new SharedArrayBuffer(CONTROL.LENGTH * 4);
  private failure?: unknown;
  private ended = false;

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
    const size = spec.student.trainableWeights.reduce((n, w) => n + w.read().size, 0);
    const optimizerState = await spec.optimizer.getWeights();
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
      gradients: new SharedArrayBuffer((this.threads.length + 1) * size * 4),
    };
    const optimizer = {
      className: spec.optimizer.getClassName(),
      config: spec.optimizer.getConfig(),
      state: optimizerState.map((w) => dataOf(w.tensor)),
    };
    // Only the step count is a fresh tensor; the rest are the optimizer's own variables.
    optimizerState[0]?.tensor.dispose();
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
    return combineLogs(
      replies.map((r) => (r.type === 'logs' ? r.logs : {})),
      weights.examples,
      weights.tokens,
    );
  }

  async pullWeights(): Promise<void> {
    const reply = await this.threads[0]!.request({ type: 'weights' });
    if (reply.type !== 'weights') return;
    setWeights(this.spec.student, reply.weights);
  }

  async end(options: { failed?: boolean } = {}): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      if (!options.failed && this.failure === undefined) {
        // The optimizer's state (Adam's moments, its step count) comes back, so a later fit continues from it.
        const reply = await this.threads[0]!.request({ type: 'optimizer' });
        if (reply.type === 'optimizer' && reply.state.length > 0) {
          const state = reply.state.map((s, i) => ({ name: `state_${i}`, tensor: tf.tensor(s.data, s.shape, s.dtype) }));
          // tfjs optimizers' setWeights replaces their variables without disposing the old ones.
          const previous = await this.spec.optimizer.getWeights();
          await this.spec.optimizer.setWeights(state);
          tf.dispose([...state, ...previous].map((s) => s.tensor));
        }
      }
      await Promise.all(this.threads.filter((t) => t.failure === undefined).map((t) => t.request({ type: 'end' }).catch(() => undefined)));
    } finally {
      this.onEnd();
    }
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

