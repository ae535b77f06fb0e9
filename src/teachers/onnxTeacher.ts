import * as tf from '@tensorflow/tfjs-core';
import { KdConfigError, KdDataError, KdShapeError } from '../errors.js';
import { countRows, type ModelInputs } from '../inputs/modelInputs.js';
import { checkedOutputSpec } from './outputSpec.js';
import type { Teacher, TeacherContext, TeacherOutputs, TeacherOutputSpec } from './teacher.js';

// kd-ts never imports onnxruntime: the session, its tensors and its metadata
// are typed by the few members used here, which onnxruntime-web's and
// onnxruntime-node's `InferenceSession` both have.

/** An onnxruntime tensor, as far as kd-ts reads one (`ort.Tensor` fits). */
export interface OnnxTensorLike {
  /** Element type: `'float32'`, `'int64'`, ... */
  readonly type: string;
  /** Shape. */
  readonly dims: readonly number[];
  /** Values, row-major (`Float32Array`, `BigInt64Array`, ...). */
  readonly data: unknown;
  /** Frees what the runtime holds for the tensor (GPU buffers); absent or a no-op for CPU tensors. */
  dispose?(): void;
}

/** What onnxruntime (1.22 and later) says of a model input or output. */
export interface OnnxValueMetadata {
  /** The input's or output's name. */
  readonly name: string;
  /** False for sequences and maps, which onnxTeacher does not feed. */
  readonly isTensor?: boolean;
  /** Element type, e.g. `'float32'`, `'int64'`. */
  readonly type?: string;
  /** Dimensions: numbers where the model fixes them, names (`'batch'`) where it does not. */
  readonly shape?: ReadonlyArray<number | string>;
}

/**
 * The parts of an onnxruntime `InferenceSession` (onnxruntime-web or
 * onnxruntime-node) that {@link onnxTeacher} uses.
 */
export interface OnnxSessionLike {
  /** The model's input names, in the model's order. */
  readonly inputNames: readonly string[];
  /** The model's output names. */
  readonly outputNames: readonly string[];
  /** Types and shapes of the inputs (onnxruntime 1.22 and later); without them kd-ts checks less before running. */
  readonly inputMetadata?: readonly OnnxValueMetadata[];
  /**
   * Runs the model.
   *
   * @param feeds - One tensor per input name.
   * @param fetches - The outputs to compute (kd-ts asks for the logits only).
   * @returns The outputs by name.
   */
  run(feeds: Record<string, OnnxTensorLike>, fetches: readonly string[]): Promise<Record<string, OnnxTensorLike>>;
}

/** Element types {@link onnxTeacher} feeds, from tfjs `float32`, `int32` and `bool` tensors. */
export type OnnxInputType = 'float32' | 'int32' | 'int64' | 'bool';

/** A constructor like `ort.Tensor`: `new Tensor(type, data, dims)`. */
export type OnnxTensorConstructor = new (type: OnnxInputType, data: OnnxInputData, dims: readonly number[]) => OnnxTensorLike;

/** The typed arrays {@link onnxTeacher} builds its feeds from. */
export type OnnxInputData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

/** Options of {@link onnxTeacher}. */
export interface OnnxTeacherOptions {
  /**
   * The model inputs that a tensor or an array of tensors feeds, in order
   * (default: all of the model's inputs, in the model's order). A map of
   * tensors is matched by name instead.
   */
  inputNames?: readonly string[];
  /** The output holding the logits (default: the only output, else the one named `logits`). */
  outputName?: string;
  /** What the output is: `'logits'` (default), `'probs'`, or a full `TeacherOutputSpec`. */
  outputs?: TeacherOutputs | TeacherOutputSpec;
  /**
   * Rows per `session.run` for a model with a free batch dimension (default:
   * the whole batch in one run). A model exported with a fixed batch size is
   * always fed chunks of exactly that size.
   */
  batchSize?: number;
  /**
   * The batch size the model was exported with, for sessions that do not
   * report input shapes (onnxruntime before 1.22). Read from the model otherwise.
   */
  fixedBatchSize?: number;
  /**
   * Builds the feeds (`ort.Tensor`). By default kd-ts passes plain
   * `{ type, data, dims, location: 'cpu' }` objects, which onnxruntime-web and
   * onnxruntime-node accept; pass `ort.Tensor` for a runtime that wants instances.
   */
  Tensor?: OnnxTensorConstructor;
}

/** A {@link Teacher} running an onnxruntime session; see {@link onnxTeacher}. */
export interface OnnxTeacher extends Teacher {
  /** The model's logits (or probabilities) for a batch: a new float32 `[rows, classes]` tensor the caller owns. */
  predict(inputs: ModelInputs, context?: TeacherContext): Promise<tf.Tensor2D>;
  /** The session it runs. */
  readonly session: OnnxSessionLike;
  /** How many times it has called `session.run` (one per chunk of a batch). */
  readonly runs: number;
}

/**
 * Makes an onnxruntime `InferenceSession` a teacher: any model exported to
 * ONNX (PyTorch's `torch.onnx.export`, tf2onnx, skl2onnx, Hugging Face
 * Optimum) teaches a tfjs student with no Python at training time.
 *
 * Each batch's tfjs tensors are read (asynchronously) and fed as onnxruntime
 * tensors: `float32` as float32, `int32` as int32 or, for models that read
 * int64 (token ids), as `BigInt64Array`, `bool` as bool. `x` may be one
 * tensor, an array in the order of `inputNames`, or a map by input name, as
 * in `Distiller.fit`. A model exported with a fixed batch size (the default
 * of `torch.onnx.export` without `dynamic_axes`) is fed chunks of that size,
 * the last one padded with copies of its last row (whose outputs are
 * dropped). The output is checked (shape `[rows, classes]`, finite values)
 * and returned as a float32 tfjs tensor the caller owns; no tfjs tensor is
 * left behind on any path, errors included, and every onnxruntime output is
 * disposed.
 *
 * kd-ts does not import onnxruntime: install `onnxruntime-web` (browsers and
 * Node, WebAssembly) or `onnxruntime-node` yourself and pass the session.
 *
 * @param session - An `InferenceSession` from onnxruntime-web or onnxruntime-node (typed structurally).
 * @param options - See {@link OnnxTeacherOptions}.
 * @returns An {@link OnnxTeacher}: use it wherever kd-ts takes a teacher
 *   (`Distiller`, `EnsembleTeacher`, `cachedTeacher`, `computeTeacherLogits`, `TeacherCache.fromTeacher`).
 * @throws {@link KdConfigError} `INVALID_TEACHER` when `inputNames` or `outputName` name nothing the model
 *   has, or the model has several outputs and none is named; `INVALID_OPTION` for a bad `batchSize`.
 * @throws (from `predict`) {@link KdShapeError} `MISSING_INPUT`, `RANK_MISMATCH`, `INPUT_SHAPE_MISMATCH`,
 *   `BATCH_SIZE_MISMATCH`, `INPUT_DTYPE_MISMATCH`; {@link KdConfigError} `TEACHER_FAILED` (onnxruntime's
 *   error is the `cause`); {@link KdDataError} `NON_FINITE_TEACHER_OUTPUT`. Every message lists the
 *   model's inputs with their types and shapes.
 *
 * @example
 * ```ts
 * import * as ort from 'onnxruntime-web';
 * import * as tf from '@tensorflow/tfjs-core';
 * import { computeTeacherLogits } from 'kd-ts';
 * import { onnxTeacher } from 'kd-ts/teachers';
 *
 * // A PyTorch model exported with torch.onnx.export(model, x, 'teacher.onnx', input_names=['features'])
 * const session = await ort.InferenceSession.create('teacher.onnx');
 * const teacher = onnxTeacher(session, { outputName: 'logits' });
 * const logits = await computeTeacherLogits(teacher, tf.randomNormal([100, 8]));
 * console.log(logits.shape); // [100, classes]
 * ```
 */
export function onnxTeacher(session: OnnxSessionLike, options: OnnxTeacherOptions = {}): OnnxTeacher {
  return new OnnxSessionTeacher(session, options);
}

/** What the model says of one input, as far as it says anything. */
interface InputSpec {
  name: string;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

class OnnxSessionTeacher implements OnnxTeacher {
  readonly outputs: TeacherOutputSpec;
  runs = 0;
  private readonly feedNames: readonly string[];
  private readonly outputName: string;
  private readonly specs: Map<string, InputSpec>;
  private readonly maxRows: number | undefined;
  private readonly fixedRows: number | undefined;

  constructor(
    readonly session: OnnxSessionLike,
    private readonly options: OnnxTeacherOptions,
  ) {
    if (session === null || typeof session !== 'object' || typeof session.run !== 'function' || !Array.isArray(session.inputNames)) {
      throw new KdConfigError(
        'INVALID_TEACHER',
        'onnxTeacher takes an onnxruntime InferenceSession: `await ort.InferenceSession.create(modelPath)` from onnxruntime-web or onnxruntime-node',
      );
    }
    this.outputs = checkedOutputSpec(options.outputs);
    this.specs = new Map(
      session.inputNames.map((name) => {
        const meta = session.inputMetadata?.find((m) => m.name === name);
        return [name, { name, ...(meta?.type === undefined ? {} : { type: meta.type }), ...(meta?.shape === undefined ? {} : { shape: meta.shape }) }];
      }),
    );
    this.feedNames = options.inputNames ?? session.inputNames;
    for (const name of this.feedNames) {
      if (!this.specs.has(name)) {
        throw new KdConfigError('INVALID_TEACHER', `inputNames names "${name}", which the model does not have: ${this.describeInputs()}`);
      }
    }
    this.outputName = pickOutput(session.outputNames, options.outputName);
    if (options.batchSize !== undefined) this.maxRows = positive(options.batchSize, 'batchSize');
    this.fixedRows = options.fixedBatchSize === undefined ? this.fixedBatchFromModel() : positive(options.fixedBatchSize, 'fixedBatchSize');
  }

  async predict(inputs: ModelInputs): Promise<tf.Tensor2D> {
    const feeds = this.matchInputs(inputs);
    for (const [name, tensor] of feeds) this.checkInput(name, tensor);
    const rows = countRows([['x', inputs]]);
    // Read every input once (asynchronously: no webgl stall), then cut chunks from the arrays.
    const arrays = await Promise.all([...feeds].map(async ([name, tensor]) => ({ name, tensor, data: await convert(tensor, this.typeOf(name, tensor)) })));
    const chunk = this.fixedRows ?? this.maxRows ?? rows;
    let classes: number | undefined;
    let logits: Float32Array | undefined;
    for (let start = 0; start < rows; start += chunk) {
      const real = Math.min(chunk, rows - start);
      const size = this.fixedRows ?? real;
      const run: Record<string, OnnxTensorLike> = {};
      for (const { name, tensor, data } of arrays) {
        const perRow = tensor.size / rows;
        const dims = [size, ...tensor.shape.slice(1)];
        run[name] = this.makeTensor(this.typeOf(name, tensor), chunkOf(data, start, real, size, perRow), dims);
      }
      const out = await this.run(run);
      try {
        const values = this.readOutput(out, size, real, start);
        classes ??= values.length / real;
        if (values.length !== real * classes) {
          throw new KdShapeError(
            'CLASS_COUNT_MISMATCH',
            `the model's output "${this.outputName}" had ${classes} classes, then ${values.length / real}: it must return the same classes for every batch`,
          );
        }
        logits ??= new Float32Array(rows * classes);
        logits.set(values, start * classes);
      } finally {
        for (const value of Object.values(out)) value?.dispose?.();
      }
    }
    return tf.tensor2d(logits!, [rows, classes!], 'float32');
  }

  /** Pairs each model input with its tensor, whatever form `x` takes. */
  private matchInputs(inputs: ModelInputs): Map<string, tf.Tensor> {
    const feeds = new Map<string, tf.Tensor>();
    if (inputs instanceof tf.Tensor || Array.isArray(inputs)) {
      const list = inputs instanceof tf.Tensor ? [inputs] : inputs;
      if (list.length !== this.feedNames.length) {
        throw new KdShapeError(
          'MISSING_INPUT',
          `got ${list.length} input tensor(s) for ${this.feedNames.length} model input(s) (${this.feedNames.join(', ')}): ` +
            `pass ${this.feedNames.length === 1 ? 'one tensor' : 'an array in that order, or a map by name'}. ${this.describeInputs()}`,
        );
      }
      list.forEach((tensor, i) => feeds.set(this.feedNames[i]!, tensor));
    } else if (inputs !== null && typeof inputs === 'object') {
      for (const [name, tensor] of Object.entries(inputs)) {
        if (!this.specs.has(name)) {
          throw new KdShapeError('MISSING_INPUT', `the model has no input named "${name}". ${this.describeInputs()}`);
        }
        feeds.set(name, tensor);
      }
    }
    for (const name of this.session.inputNames) {
      if (!feeds.has(name)) {
        throw new KdShapeError(
          'MISSING_INPUT',
          `the model needs the input "${name}", which was not given: feed every input. ${this.describeInputs()}`,
        );
      }
    }
    return feeds;
  }

  private checkInput(name: string, tensor: tf.Tensor): void {
    if (!(tensor instanceof tf.Tensor)) {
      throw new KdShapeError('MISSING_INPUT', `the input "${name}" must be a tfjs tensor. ${this.describeInputs()}`);
    }
    const spec = this.specs.get(name)!;
    this.typeOf(name, tensor);
    if (spec.shape === undefined) return;
    if (tensor.rank !== spec.shape.length) {
      throw new KdShapeError(
        'RANK_MISMATCH',
        `the input "${name}" has shape [${tensor.shape.join(', ')}] (rank ${tensor.rank}) but the model reads rank ${spec.shape.length}. ` +
          this.describeInputs(),
      );
    }
    spec.shape.forEach((dim, axis) => {
      if (axis > 0 && typeof dim === 'number' && dim >= 0 && tensor.shape[axis] !== dim) {
        throw new KdShapeError(
          'INPUT_SHAPE_MISMATCH',
          `the input "${name}" has shape [${tensor.shape.join(', ')}] but the model reads [${formatShape(spec.shape!)}] ` +
            `(axis ${axis} must be ${dim}). ${this.describeInputs()}`,
        );
      }
    });
  }

  /** The onnxruntime type to feed `tensor` as: the model's type when it says, else the tfjs dtype's. */
  private typeOf(name: string, tensor: tf.Tensor): OnnxInputType {
    const wanted = this.specs.get(name)!.type;
    const accepted: Record<string, OnnxInputType[]> = { float32: ['float32'], int32: ['int32', 'int64'], bool: ['bool'] };
    const fits = accepted[tensor.dtype] ?? [];
    if (wanted === undefined && fits[0] !== undefined) return fits[0];
    if (wanted !== undefined && (fits as string[]).includes(wanted)) return wanted as OnnxInputType;
    const fix =
      wanted === undefined || !['float32', 'int32', 'int64', 'bool'].includes(wanted)
        ? `onnxTeacher feeds float32, int32, int64 and bool inputs: wrap the session in a function teacher for ${wanted ?? tensor.dtype}`
        : `cast it first: tf.cast(x, '${wanted === 'int64' ? 'int32' : wanted}')${wanted === 'int64' ? ' (int64 ids are fed from int32 tensors)' : ''}`;
    throw new KdShapeError(
      'INPUT_DTYPE_MISMATCH',
      `the input "${name}" is a ${tensor.dtype} tensor but the model reads ${wanted ?? 'another type'}: ${fix}. ${this.describeInputs()}`,
    );
  }

  private makeTensor(type: OnnxInputType, data: OnnxInputData, dims: number[]): OnnxTensorLike {
    if (this.options.Tensor !== undefined) return new this.options.Tensor(type, data, dims);
    return { type, data, dims, location: 'cpu' } as OnnxTensorLike;
  }

  private async run(feeds: Record<string, OnnxTensorLike>): Promise<Record<string, OnnxTensorLike>> {
    this.runs++;
    try {
      return await this.session.run(feeds, [this.outputName]);
    } catch (error) {
      throw new KdConfigError(
        'TEACHER_FAILED',
        `onnxruntime failed to run the teacher: ${error instanceof Error ? error.message : String(error)}. ` +
          `Fed ${Object.entries(feeds).map(([name, t]) => `${name}: ${t.type} [${t.dims.join(', ')}]`).join(', ')}. ${this.describeInputs()}`,
        { cause: error },
      );
    }
  }

  /** The first `real` rows of the output as float32, checked. */
  private readOutput(out: Record<string, OnnxTensorLike>, size: number, real: number, start: number): Float32Array {
    const value = out[this.outputName];
    if (value === undefined) {
      throw new KdConfigError('INVALID_TEACHER', `onnxruntime returned no output "${this.outputName}" (got ${Object.keys(out).join(', ') || 'none'})`);
    }
    if (value.dims.length !== 2 || value.dims[0] !== size) {
      throw new KdShapeError(
        'BATCH_SIZE_MISMATCH',
        `the model's output "${this.outputName}" has shape [${value.dims.join(', ')}] for ${size} rows: a teacher returns [rows, classes]; ` +
          'pick another output with outputName, or wrap the session in a function teacher that reshapes it',
      );
    }
    if (value.type !== 'float32' && value.type !== 'float64') {
      throw new KdConfigError(
        'INVALID_TEACHER',
        `the model's output "${this.outputName}" is ${value.type}: a teacher returns float32 (or float64) logits or probabilities`,
      );
    }
    const classes = value.dims[1]!;
    const data = value.data as Float32Array | Float64Array;
    const values = data instanceof Float32Array ? data.slice(0, real * classes) : Float32Array.from(data.subarray(0, real * classes));
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        throw new KdDataError(
          'NON_FINITE_TEACHER_OUTPUT',
          `the model's output "${this.outputName}" is ${values[i]} at batch row ${start + Math.floor(i / classes)}, class ${i % classes}: ` +
            'check the inputs of that row (ids in range, no NaN features) and the exported model',
        );
      }
    }
    return values;
  }

  private fixedBatchFromModel(): number | undefined {
    const sizes = this.session.inputNames
      .map((name) => this.specs.get(name)?.shape?.[0])
      .filter((dim): dim is number => typeof dim === 'number' && dim > 0);
    return sizes[0];
  }

  /** "Model inputs: token_ids (int64 [batch, 6]), features (float32 [batch, 4])". */
  private describeInputs(): string {
    const parts = [...this.specs.values()].map(
      (spec) => `${spec.name} (${spec.type ?? 'type unknown'}${spec.shape === undefined ? '' : ` [${formatShape(spec.shape)}]`})`,
    );
    return `Model inputs: ${parts.join(', ')}.`;
  }
}

function pickOutput(names: readonly string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (names.includes(wanted)) return wanted;
    throw new KdConfigError('INVALID_TEACHER', `outputName is "${wanted}" but the model's outputs are ${names.join(', ')}: pass one of those`);
  }
  if (names.length === 1) return names[0]!;
  if (names.includes('logits')) return 'logits';
  throw new KdConfigError(
    'INVALID_TEACHER',
    `the model has ${names.length} outputs (${names.join(', ')}): pass outputName to say which one holds the logits`,
  );
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new KdConfigError('INVALID_OPTION', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function formatShape(shape: ReadonlyArray<number | string>): string {
  return shape.map((dim) => (typeof dim === 'number' && dim < 0 ? '?' : String(dim))).join(', ');
}

/** The tensor's values in the typed array onnxruntime wants for `type`. */
async function convert(tensor: tf.Tensor, type: OnnxInputType): Promise<OnnxInputData> {
  const values = await tensor.data();
  switch (type) {
    case 'float32':
      return values as Float32Array;
    case 'int32':
      return values as Int32Array;
    case 'int64':
      return BigInt64Array.from(values as Int32Array, (v) => BigInt(v));
    case 'bool':
      return values as Uint8Array;
  }
}

/**
 * Rows `[start, start + rows)` of a row-major array with `perRow` values a row,
 * padded to `padded` rows with copies of its last row: a fixed-batch model
 * gets valid inputs (ids in range, a non-empty mask) in the rows it pads.
 */
function chunkOf<T extends OnnxInputData>(data: T, start: number, rows: number, padded: number, perRow: number): T {
  const view = data.subarray(start * perRow, (start + rows) * perRow) as T;
  if (padded === rows) return view;
  const out = new (data.constructor as new (n: number) => T)(padded * perRow);
  const last = data.subarray((start + rows - 1) * perRow, (start + rows) * perRow);
  (out as Float32Array).set(view as unknown as Float32Array);
  for (let row = rows; row < padded; row++) (out as Float32Array).set(last as unknown as Float32Array, row * perRow);
  return out;
}
