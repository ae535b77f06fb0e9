import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError, KdConfigError, KdDataError, KdError, KdShapeError, type KdErrorCode } from '../../errors.js';
import type { ModelInputs } from '../../inputs/modelInputs.js';
import type { ExchangeLayout, UpdateSpec } from './sharedUpdate.js';

// Messages between the pool (main thread) and its workers, and the plain
// forms tensors and errors take to cross the thread boundary.

/** A tensor as typed-array data: its buffer can be transferred, not copied. */
export interface TensorData {
  shape: number[];
  dtype: tf.DataType;
  data: Float32Array | Int32Array | Uint8Array;
}

/** {@link ModelInputs} as data, keeping the structure (one tensor, an array, a named map). */
export type InputsData =
  | { kind: 'tensor'; tensor: TensorData }
  | { kind: 'array'; tensors: TensorData[] }
  | { kind: 'map'; tensors: Record<string, TensorData> };

/** A model replicated into a worker: its topology (`model.toJSON(null, false)`) and every weight in `model.weights` order. */
export interface ModelData {
  topology: object;
  weights: TensorData[];
}

/** Sent once per run to every worker. */
export interface BeginMessage {
  type: 'begin';
  backend: string;
  flags: Record<string, boolean>;
  student: ModelData;
  teacher?: ModelData;
  optimizer: { className: string; config: object; state: TensorData[] };
  stepOptions: Record<string, unknown>;
  temperature: number;
  seed?: string;
  /** Barrier counters and the abort flag (Int32Array view). */
  control: SharedArrayBuffer;
  /** The exchange's shared memory (gradient slots, averaged gradient, weights, optimizer state), laid out as `layout` says. */
  memory: WebAssembly.Memory;
  layout: ExchangeLayout;
  /** How the replicas update the weights: a sharded update, or each its own optimizer (`optimizer.state` then holds its state). */
  update: UpdateSpec;
}

/** One shard of one batch. */
export interface StepMessage {
  type: 'step';
  /** Rows in this shard (0: the worker only takes part in the reduction). */
  rows: number;
  /** rows / batch rows: the shard's share of the batch mean. */
  share: number;
  inputs?: InputsData;
  labels?: TensorData;
  teacherInputs?: InputsData;
  teacherLogits?: TensorData;
  /** Top-k teacher outputs, in place of `teacherLogits`. */
  teacherTopK?: { ids: TensorData; logits: TensorData };
  /** Token-level runs: the shard's mask. */
  mask?: TensorData;
}

/** Main thread to worker. */
export type ToWorker = BeginMessage | StepMessage | { type: 'weights' } | { type: 'optimizer' } | { type: 'end' } | { type: 'memory' };

/** A thrown value, made plain for postMessage. */
export interface ErrorData {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  /** Thrown by the teacher (not the student's step). */
  inTeacher?: boolean;
  /** The barrier was aborted because another worker failed first. */
  aborted?: boolean;
}

/** Worker to main thread. */
export type FromWorker =
  | { type: 'spawned' }
  | { type: 'ready' }
  | { type: 'logs'; logs: Record<string, number> }
  | { type: 'weights'; weights: TensorData[] }
  | { type: 'optimizer'; state: TensorData[] }
  | { type: 'ended'; numTensors: number }
  | { type: 'memory'; numTensors: number }
  | { type: 'error'; error: ErrorData };

/** Index of each counter in the control buffer. */
export const CONTROL = { COUNT: 0, GENERATION: 1, ABORT: 2, LENGTH: 4 } as const;

/** A tensor's data; `rows` picks a range of its first dimension. */
export function tensorData(tensor: tf.Tensor, values: TensorData['data'], rows?: [number, number]): TensorData {
  const shape = tensor.shape.slice();
  if (rows === undefined) return { shape, dtype: tensor.dtype, data: values.slice() };
  const stride = shape.slice(1).reduce((a, b) => a * b, 1);
  shape[0] = rows[1] - rows[0];
  return { shape, dtype: tensor.dtype, data: values.slice(rows[0] * stride, rows[1] * stride) };
}

/** The tensors' data, read once each (await), for slicing into shards. */
export async function readInputs(inputs: ModelInputs): Promise<Array<[tf.Tensor, TensorData['data']]>> {
  const tensors = inputs instanceof tf.Tensor ? [inputs] : Array.isArray(inputs) ? inputs : Object.values(inputs);
  return Promise.all(tensors.map(async (t) => [t, (await t.data()) as TensorData['data']] as [tf.Tensor, TensorData['data']]));
}

/** Rows [from, to) of every tensor of `inputs`, keeping the structure; `read` is {@link readInputs}' result. */
export function inputsData(inputs: ModelInputs, read: Array<[tf.Tensor, TensorData['data']]>, rows: [number, number]): InputsData {
  const data = read.map(([t, values]) => tensorData(t, values, rows));
  if (inputs instanceof tf.Tensor) return { kind: 'tensor', tensor: data[0]! };
  if (Array.isArray(inputs)) return { kind: 'array', tensors: data };
  const keys = Object.keys(inputs);
  return { kind: 'map', tensors: Object.fromEntries(keys.map((k, i) => [k, data[i]!])) };
}

/** A tensor from its data. */
export function toTensor(data: TensorData): tf.Tensor {
  return tf.tensor(data.data, data.shape, data.dtype);
}

/** {@link ModelInputs} from their data. */
export function toInputs(data: InputsData): ModelInputs {
  if (data.kind === 'tensor') return toTensor(data.tensor);
  if (data.kind === 'array') return data.tensors.map(toTensor);
  return Object.fromEntries(Object.entries(data.tensors).map(([k, t]) => [k, toTensor(t)]));
}

/** Every transferable buffer inside a message's tensor data. */
export function buffersOf(value: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && !out.includes(value.buffer)) out.push(value.buffer);
  } else if (Array.isArray(value)) {
    for (const v of value) buffersOf(v, out);
  } else if (value !== null && typeof value === 'object' && !(value instanceof SharedArrayBuffer)) {
    for (const v of Object.values(value)) buffersOf(v, out);
  }
  return out;
}

/** A thrown value as plain data. */
export function errorData(error: unknown, extra: Partial<ErrorData> = {}): ErrorData {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      ...(error instanceof KdError ? { code: error.code } : {}),
      ...(error.stack === undefined ? {} : { stack: error.stack }),
      ...extra,
    };
  }
  return { name: 'Error', message: String(error), ...extra };
}

const KD_ERRORS: Record<string, new (code: KdErrorCode, message: string, options?: { cause?: unknown }) => KdError> = {
  KdConfigError,
  KdShapeError,
  KdDataError,
  KdBackendError,
};

/**
 * The error the main thread throws for a worker's error: a kd-ts error keeps
 * its class and code; anything else thrown by the teacher is `TEACHER_FAILED`,
 * by the step `WORKER_FAILED`. The worker's error is the `cause`.
 */
export function workerError(data: ErrorData, worker: number, workers: number): KdError {
  const cause = Object.assign(new Error(data.message), { name: data.name, stack: data.stack });
  const where = `worker ${worker + 1} of ${workers}`;
  const KdClass = KD_ERRORS[data.name];
  if (KdClass !== undefined && data.code !== undefined) {
    return new KdClass(data.code as KdErrorCode, `${data.message} (in ${where})`, { cause });
  }
  if (data.inTeacher) {
    return new KdConfigError(
      'TEACHER_FAILED',
      `the teacher threw in ${where}: ${data.name}: ${data.message}; the step was not applied. ` +
        'Check that the teacher runs on these inputs in a single-process fit, and that custom layers are registered in workerPool({ setup })',
      { cause },
    );
  }
  return new KdBackendError(
    'WORKER_FAILED',
    `${where} failed: ${data.name}: ${data.message}; the step was not applied. ` +
      'Check that the same fit runs without parallel, and that custom layers and kernels are registered in workerPool({ setup })',
    { cause },
  );
}
