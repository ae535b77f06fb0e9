/**
 * Faster matrix products for training on tfjs's wasm backend.
 *
 * tfjs-backend-wasm (4.x) runs a product on XNNPACK only when it is a plain
 * 2-D product: no `transposeA`/`transposeB` flag and a batch dimension of 1.
 * Anything else (every weight gradient `xᵀ·dy`, every input gradient `dy·Wᵀ`,
 * every batched product) falls back to a scalar blocked loop in
 * `batch_mat_mul_impl.cc` that is about 13× slower. The kernels registered
 * here rewrite every product into plain 2-D ones, with explicit transposes
 * (the stock `Transpose` kernel) and reshapes, and hand those to the stock
 * kernels, so the arithmetic itself still runs in XNNPACK.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../errors.js';

/**
 * Replaces the wasm backend's `BatchMatMul` and `_FusedMatMul` kernels with
 * versions that route every product through XNNPACK's fast path.
 *
 * Results are those of the stock kernels up to float32 rounding (the sums run
 * in a different order). Transposed 2-D products, such as the two products of
 * every Dense layer's backward pass, run about 10× faster; a training step of
 * an MLP several times faster (see `bench/matmul.ts`). Batched products
 * (`[b, m, k]·[k, n]`, `[k, m]ᵀ·[b, k, n]`, equal batches) become one or a few
 * 2-D products. `_FusedMatMul` keeps its semantics (those of the cpu
 * backend), including cases the stock wasm kernel rejects or gets wrong: a
 * bias of any broadcastable shape, PReLU weights broadcast along other than
 * the trailing axes, and transposed or batched products with a bias or a
 * relu/relu6 (see the notes at the end of this file).
 *
 * Call it once, after importing `@tensorflow/tfjs-backend-wasm`, before or
 * after `tf.setBackend('wasm')`. Calling it again does nothing. Other
 * backends are not touched.
 *
 * @throws {@link KdBackendError} (`BACKEND_UNAVAILABLE`) when the wasm
 *   backend's kernels are not registered: import `@tensorflow/tfjs-backend-wasm` first.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { registerWasmFastMatMul } from 'kd-ts';
 *
 * registerWasmFastMatMul();
 * await tf.setBackend('wasm');
 * const x = tf.randomNormal([128, 784]);
 * const dy = tf.randomNormal([128, 800]);
 * const dW = tf.matMul(x, dy, true, false); // xᵀ·dy, now on XNNPACK
 * console.log(dW.shape); // [784, 800]
 * ```
 */
export function registerWasmFastMatMul(): void {
  const batchMatMul = tf.getKernel(BATCH_MAT_MUL, WASM);
  const fusedMatMul = tf.getKernel(FUSED_MAT_MUL, WASM);
  if (batchMatMul === undefined || fusedMatMul === undefined || tf.getKernel(TRANSPOSE, WASM) === undefined) {
    throw new KdBackendError(
      'BACKEND_UNAVAILABLE',
      "the wasm backend's matMul kernels are not registered: import '@tensorflow/tfjs-backend-wasm' before calling registerWasmFastMatMul()",
    );
  }
  // Already ours (possibly registered by another copy of kd-ts, ESM next to CJS): nothing to do.
  if (stateOf(batchMatMul) !== undefined) return;
  const state: KernelState = { stock: { batchMatMul, fusedMatMul }, rhsRows: new WeakMap() };
  replaceKernel(batchMatMul, markAsFast(fastBatchMatMul(state), state));
  replaceKernel(fusedMatMul, markAsFast(fastFusedMatMul(state), state));
}

/**
 * Puts back the wasm backend's stock `BatchMatMul` and `_FusedMatMul`
 * kernels, undoing {@link registerWasmFastMatMul}; for benchmarks and tests.
 * Does nothing when the fast kernels are not registered.
 *
 * @example
 * ```ts
 * import { registerWasmFastMatMul, unregisterWasmFastMatMul } from 'kd-ts';
 *
 * registerWasmFastMatMul();
 * // ... train ...
 * unregisterWasmFastMatMul(); // back to tfjs's own kernels
 * ```
 */
export function unregisterWasmFastMatMul(): void {
  const current = tf.getKernel(BATCH_MAT_MUL, WASM);
  const state = current === undefined ? undefined : stateOf(current);
  if (state === undefined) return;
  for (const config of [state.stock.batchMatMul, state.stock.fusedMatMul]) {
    if (tf.getKernel(config.kernelName, WASM) !== undefined) tf.unregisterKernel(config.kernelName, WASM);
    tf.registerKernel(config);
  }
}

const WASM = 'wasm';
const BATCH_MAT_MUL = 'BatchMatMul';
const FUSED_MAT_MUL = '_FusedMatMul';
const TRANSPOSE = 'Transpose';
/** `Symbol.for`, not `Symbol`: two copies of kd-ts (ESM and CJS) must recognise each other's kernels. */
const STATE = Symbol.for('kd-ts.wasmFastMatMul.state');

/** What the fast kernels share, attached to their kernelFuncs. */
interface KernelState {
  /** The configs the fast kernels replaced: they delegate to them, and unregister restores them. */
  stock: { batchMatMul: tf.KernelConfig; fusedMatMul: tf.KernelConfig };
  /** Rows of each buffer handed to XNNPACK as right operand (see {@link Scope.rightOperand}). */
  rhsRows: WeakMap<tf.DataId, number>;
}

type FastKernelFunc = tf.KernelFunc & { [STATE]?: KernelState };

function stateOf(config: tf.KernelConfig): KernelState | undefined {
  return (config.kernelFunc as FastKernelFunc)[STATE];
}

function markAsFast(kernelFunc: tf.KernelFunc, state: KernelState): tf.KernelFunc {
  Object.defineProperty(kernelFunc, STATE, { value: state });
  return kernelFunc;
}

/**
 * Registers `kernelFunc` in place of `stockConfig`. The stock setup function
 * goes along: it binds the C++ entry points that the stock kernelFunc (which
 * ours calls) needs, and runs only when the backend initialises, which may
 * come after this registration.
 */
function replaceKernel(stockConfig: tf.KernelConfig, kernelFunc: tf.KernelFunc): void {
  tf.unregisterKernel(stockConfig.kernelName, WASM);
  tf.registerKernel({ ...stockConfig, kernelFunc });
}

// ---------------------------------------------------------------------------
// The wasm backend, typed structurally: kd-ts must not import it.

/** What the wasm backend keeps per data id (`BackendWasm.dataIdMap` entries). */
interface WasmTensorData {
  /** The id the C++ side knows the tensor by. */
  id: number;
  /** The shape the buffer was created with, which stock `_FusedMatMul` reads for its bias. */
  shape: number[];
}

/** The members of tfjs-backend-wasm's `BackendWasm` that these kernels use. */
interface WasmBackendLike {
  dataIdMap: { get(dataId: tf.DataId): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}

function wasmBackend(backend: {}): WasmBackendLike {
  const candidate = backend as Partial<WasmBackendLike>;
  const isWasm =
    typeof candidate.makeOutput === 'function' &&
    typeof candidate.typedArrayFromHeap === 'function' &&
    candidate.dataIdMap !== undefined;
  if (!isWasm) {
    throw new KdBackendError('BACKEND_UNAVAILABLE', 'the fast wasm matMul kernels ran on a backend that is not tfjs-backend-wasm');
  }
  return backend as WasmBackendLike;
}

function runStock(name: string, args: KernelArgs): tf.TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (kernel === undefined) {
    throw new KdBackendError('BACKEND_UNAVAILABLE', `the wasm kernel ${name} is not registered: import '@tensorflow/tfjs-backend-wasm'`);
  }
  return kernel.kernelFunc(args) as tf.TensorInfo;
}

// ---------------------------------------------------------------------------
// The kernels.

function fastBatchMatMul(state: KernelState): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const geometry = describeProduct(a, b, transposeA, transposeB);
    if (geometry === undefined) return state.stock.batchMatMul.kernelFunc(args);
    const scope = new Scope(wasmBackend(args.backend), state);
    return scope.run(() => multiply(scope, geometry));
  };
}

function fastFusedMatMul(state: KernelState): tf.KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as tf._FusedMatMulInputs;
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as unknown as tf._FusedMatMulAttrs;
    const geometry = describeProduct(a, b, transposeA, transposeB);
    if (geometry === undefined || !FUSABLE.has(activation)) return state.stock.fusedMatMul.kernelFunc(args);
    const scope = new Scope(wasmBackend(args.backend), state);
    const epilogue: Epilogue = { bias, activation, preluWeights: preluActivationWeights, leakyreluAlpha: leakyreluAlpha || 0 };
    return scope.run(() => {
      if (canFuseEpilogue(scope.backend, geometry, epilogue)) {
        const { lhs, rhs } = rowOperands(scope, geometry);
        const right = scope.rightOperand(rhs);
        const out = state.stock.fusedMatMul.kernelFunc({
          inputs: { a: view(lhs, [1, ...lhs.shape]), b: view(right, [1, ...right.shape]), ...definedInputs(epilogue) },
          backend: scope.backend,
          attrs: { transposeA: false, transposeB: false, activation, leakyreluAlpha: epilogue.leakyreluAlpha },
        }) as tf.TensorInfo;
        return view(out, geometry.outShape);
      }
      return applyEpilogue(scope, multiply(scope, geometry), epilogue);
    });
  };
}

/** The activations the stock wasm `_FusedMatMul` knows; others go to it for its error. */
const FUSABLE = new Set<string>(['linear', 'relu', 'relu6', 'elu', 'leakyrelu', 'prelu', 'sigmoid']);

/** A product `op(a)·op(b)` described as `batch` matrix products `[m, k]·[k, n]`. */
interface ProductGeometry {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  m: number;
  k: number;
  n: number;
  /** Number of matrices in `a` and in `b` (their batch dimensions flattened). */
  batchA: number;
  batchB: number;
  /** Number of products: max(batchA, batchB). */
  batch: number;
  outShape: number[];
}

/**
 * The geometry of a product, or undefined when the stock kernel should take
 * it: other dtypes, mismatched inner dimensions or batch shapes (the stock
 * kernel throws tfjs's own error), and batch broadcasting that is not
 * "equal, or one side is a single matrix".
 */
function describeProduct(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): ProductGeometry | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const [aRows, aCols] = a.shape.slice(-2) as [number, number];
  const [bRows, bCols] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [kB, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  if (k !== kB) return undefined;
  const aBatchShape = a.shape.slice(0, -2);
  const bBatchShape = b.shape.slice(0, -2);
  let outBatchShape: number[];
  try {
    outBatchShape = tf.broadcast_util.assertAndGetBroadcastShape(aBatchShape, bBatchShape);
  } catch {
    return undefined;
  }
  const batchA = tf.util.sizeFromShape(aBatchShape);
  const batchB = tf.util.sizeFromShape(bBatchShape);
  const batch = tf.util.sizeFromShape(outBatchShape);
  const simpleBroadcast = batchA === batchB || batchA === 1 || batchB === 1;
  if (!simpleBroadcast || batch !== Math.max(batchA, batchB)) return undefined;
  return { a, b, transposeA, transposeB, m, k, n, batchA, batchB, batch, outShape: [...outBatchShape, m, n] };
}

/**
 * Below this many multiply-adds per matrix of a batch with distinct left and
 * right matrices, the stock scalar loop beats one XNNPACK call per matrix,
 * whose fixed cost (three buffers, an XNNPACK operator created and packed)
 * is tens of microseconds. Measured, batch 64: at 16³ the stock loop was
 * faster, at 24³ (13,824) one call per matrix was 1.6× faster, at 64³ 10×.
 */
const PER_MATRIX_MIN_MACS = 16_384;

/** `op(a)·op(b)` with every product on XNNPACK; returns a buffer the scope does not own. */
function multiply(scope: Scope, g: ProductGeometry): tf.TensorInfo {
  const outSize = tf.util.sizeFromShape(g.outShape);
  if (outSize === 0 || g.k === 0) {
    const out = scope.backend.makeOutput(g.outShape, 'float32');
    if (outSize > 0) scope.backend.typedArrayFromHeap(out).fill(0);
    return out;
  }
  if (g.batchB === 1) {
    if (g.batch === 1 && g.transposeB && flipIsCheaper(g)) return flippedProduct(scope, g);
    const { lhs, rhs } = rowOperands(scope, g);
    return view(product(scope, lhs, rhs), g.outShape);
  }
  if (g.batchA === 1) return sharedLeftProduct(scope, g);
  if (g.m * g.k * g.n < PER_MATRIX_MIN_MACS) {
    return view(scope.stockProduct(g.a, g.b, g.transposeA, g.transposeB), g.outShape);
  }
  return perMatrixProduct(scope, g);
}

/**
 * With a single right matrix, the batch of left matrices stacks into one:
 * `[batch·m, k]·[k, n]`, each operand transposed first where flagged.
 */
function rowOperands(scope: Scope, g: ProductGeometry): { lhs: tf.TensorInfo; rhs: tf.TensorInfo } {
  const lhs = g.transposeA ? scope.transposeLastTwo(view(g.a, [g.batchA, g.k, g.m])) : g.a;
  const rhs = g.transposeB ? scope.transposeLastTwo(view(g.b, [g.n, g.k])) : g.b;
  return { lhs: view(lhs, [g.batchA * g.m, g.k]), rhs: view(rhs, [g.k, g.n]) };
}

/**
 * Whether `op(a)·bᵀ` is cheaper as `(b·op(a)ᵀ)ᵀ`. XNNPACK repacks the right
 * operand whenever it is a tensor it has not seen (see the notes at the end of
 * this file), so a right operand that is a fresh transpose costs one pass to
 * transpose and one to pack. The flipped form has `b` on the left as it is,
 * packs `op(a)ᵀ` and transposes the output. Costs in elements moved.
 */
function flipIsCheaper(g: ProductGeometry): boolean {
  const direct = (g.transposeA ? g.m * g.k : 0) + 2 * g.k * g.n;
  const flipped = (g.transposeA ? 0 : g.m * g.k) + g.m * g.k + g.m * g.n;
  return flipped < direct;
}

/** `op(a)·bᵀ` computed as `(b·op(a)ᵀ)ᵀ`. */
function flippedProduct(scope: Scope, g: ProductGeometry): tf.TensorInfo {
  const lhs = view(g.b, [g.n, g.k]);
  const rhs = g.transposeA ? view(g.a, [g.k, g.m]) : scope.transposeLastTwo(view(g.a, [g.m, g.k]));
  const outT = scope.own(product(scope, lhs, view(rhs, [g.k, g.m])));
  return view(scope.disown(scope.transposeLastTwo(outT)), g.outShape);
}

/**
 * One left matrix, a batch of right ones: `Cᵢᵀ = op(bᵢ)ᵀ·op(a)ᵀ` for all i
 * is a single product `[batch·n, k]·[k, m]`, whose `[batch, n, m]` result
 * is then transposed per matrix.
 */
function sharedLeftProduct(scope: Scope, g: ProductGeometry): tf.TensorInfo {
  const lhs = g.transposeB ? g.b : scope.transposeLastTwo(view(g.b, [g.batch, g.k, g.n]));
  const rhs = g.transposeA ? view(g.a, [g.k, g.m]) : scope.transposeLastTwo(view(g.a, [g.m, g.k]));
  const outT = scope.own(product(scope, view(lhs, [g.batch * g.n, g.k]), view(rhs, [g.k, g.m])));
  return view(scope.disown(scope.transposeLastTwo(view(outT, [g.batch, g.n, g.m]))), g.outShape);
}

/**
 * Distinct left and right matrices: one 2-D product per matrix, on copies of
 * the matrices (the C++ side addresses tensors by id, not by offset), written
 * into one output.
 */
function perMatrixProduct(scope: Scope, g: ProductGeometry): tf.TensorInfo {
  const lhs = g.transposeA ? scope.transposeLastTwo(view(g.a, [g.batch, g.k, g.m])) : g.a;
  const rhs = g.transposeB ? scope.transposeLastTwo(view(g.b, [g.batch, g.n, g.k])) : g.b;
  const out = scope.backend.makeOutput(g.outShape, 'float32');
  try {
    for (let i = 0; i < g.batch; i++) {
      // Each iteration frees its buffers at once: the batch never holds more than one set.
      const inner = new Scope(scope.backend, scope.state);
      inner.run(() => {
        const lhsI = inner.copyMatrix(lhs, i, g.m, g.k);
        const rhsI = inner.copyMatrix(rhs, i, g.k, g.n);
        const outI = inner.own(product(inner, lhsI, rhsI));
        const size = g.m * g.n;
        scope.backend.typedArrayFromHeap(out).set(scope.backend.typedArrayFromHeap(outI), i * size);
        return outI;
      }, { keepResult: false });
    }
  } catch (error) {
    scope.backend.disposeData(out.dataId);
    throw error;
  }
  return out;
}

/** A plain 2-D product `[m, k]·[k, n]` by the stock kernel: the XNNPACK path. */
function product(scope: Scope, lhs: tf.TensorInfo, rhs: tf.TensorInfo): tf.TensorInfo {
  return scope.stockProduct(lhs, scope.rightOperand(rhs), false, false);
}

// ---------------------------------------------------------------------------
// Bias and activation of _FusedMatMul.

interface Epilogue {
  bias: tf.TensorInfo | undefined;
  activation: tf._FusedMatMulAttrs['activation'];
  preluWeights: tf.TensorInfo | undefined;
  leakyreluAlpha: number;
}

function definedInputs(e: Epilogue): tf.NamedTensorInfoMap {
  const inputs: tf.NamedTensorInfoMap = {};
  if (e.bias !== undefined) inputs.bias = e.bias;
  if (e.preluWeights !== undefined) inputs.preluActivationWeights = e.preluWeights;
  return inputs;
}

/**
 * Whether the stock fused kernel can add the bias and apply the activation
 * itself, on a `[rows, k]·[k, n]` product. Its C++ side hands the bias to
 * XNNPACK as one value per output column, so the bias must be stored as a
 * rank-1 buffer of n values (it checks the stored rank); and it applies PReLU
 * with weights repeating over whole trailing blocks of the output.
 */
function canFuseEpilogue(backend: WasmBackendLike, g: ProductGeometry, e: Epilogue): boolean {
  if (g.batchB !== 1 || g.k === 0 || tf.util.sizeFromShape(g.outShape) === 0) return false;
  if (e.bias !== undefined) {
    const stored = backend.dataIdMap.get(e.bias.dataId);
    if (stored === undefined || stored.shape.length !== 1 || stored.shape[0] !== g.n) return false;
    if (!isTrailingBlock(e.bias.shape, g.outShape)) return false; // e.g. a reshape to [n, 1]
  }
  if (e.activation === 'prelu') {
    return e.preluWeights !== undefined && isTrailingBlock(e.preluWeights.shape, g.outShape);
  }
  return true;
}

/** Whether weights of `shape` broadcast over `outShape` as one block repeated over the leading axes. */
function isTrailingBlock(shape: readonly number[], outShape: readonly number[]): boolean {
  const firstNotOne = shape.findIndex((d) => d !== 1);
  if (firstNotOne === -1) return true; // a single value
  const block = shape.slice(firstNotOne);
  const tail = outShape.slice(outShape.length - block.length);
  return block.length <= outShape.length && block.every((d, i) => d === tail[i]);
}

/** Adds the bias and applies the activation with the stock elementwise kernels. */
function applyEpilogue(scope: Scope, product: tf.TensorInfo, e: Epilogue): tf.TensorInfo {
  let y = scope.own(product);
  const step = (name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}) =>
    scope.own(runStock(name, { inputs, backend: scope.backend, attrs }));
  if (e.bias !== undefined) y = step('Add', { a: y, b: e.bias });
  switch (e.activation) {
    case 'linear':
      break;
    case 'relu':
      y = step('Relu', { x: y });
      break;
    case 'relu6':
      y = step('Relu6', { x: y });
      break;
    case 'elu':
      y = step('Elu', { x: y });
      break;
    case 'sigmoid':
      y = step('Sigmoid', { x: y });
      break;
    case 'leakyrelu':
      y = step('LeakyRelu', { x: y }, { alpha: e.leakyreluAlpha });
      break;
    case 'prelu': {
      const alpha = e.preluWeights!;
      if (isTrailingBlock(alpha.shape, y.shape)) {
        y = step('Prelu', { x: y, alpha });
      } else {
        // The stock Prelu repeats its weights over trailing blocks only.
        // max(y, 0) + alpha·min(y, 0) is exact: one of the two terms is 0.
        const positive = step('Relu', { x: y });
        const negative = step('Sub', { a: y, b: positive });
        y = step('Add', { a: positive, b: step('Multiply', { a: negative, b: alpha }) });
      }
      break;
    }
  }
  return scope.disown(y);
}

// ---------------------------------------------------------------------------
// Buffers.

/** The same buffer seen with another shape (no copy, no reference taken). */
function view(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * The intermediate buffers of one kernel call. `run` frees them all when the
 * call ends, normally or by an exception, except the buffer of the result.
 * Helpers return buffers the scope does not own, unless they say otherwise.
 */
class Scope {
  private owned: tf.TensorInfo[] = [];

  constructor(
    readonly backend: WasmBackendLike,
    readonly state: KernelState,
  ) {}

  /** The stock `BatchMatMul` (the registered one is ours and would recurse). */
  stockProduct(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): tf.TensorInfo {
    const args = { inputs: { a, b }, backend: this.backend, attrs: { transposeA, transposeB } };
    return this.state.stock.batchMatMul.kernelFunc(args) as tf.TensorInfo;
  }

  /**
   * `rhs`, or a copy of it when its buffer went to XNNPACK before as a
   * matrix with another number of rows. The stock kernel caches XNNPACK's
   * operator (with `rhs` packed in it) by data id alone, and `tf.reshape`
   * keeps the data id: without the copy, the reshaped weights would be
   * multiplied with the operator packed for the old shape, giving wrong
   * values (and reading past the buffer).
   */
  rightOperand(rhs: tf.TensorInfo): tf.TensorInfo {
    const rows = rhs.shape[0]!;
    const seen = this.state.rhsRows.get(rhs.dataId);
    if (seen === undefined) this.state.rhsRows.set(rhs.dataId, rows);
    if (seen === undefined || seen === rows) return rhs;
    const copy = this.own(this.backend.makeOutput(rhs.shape, 'float32'));
    this.backend.typedArrayFromHeap(copy).set(this.backend.typedArrayFromHeap(rhs));
    return copy;
  }

  run(body: () => tf.TensorInfo, { keepResult = true } = {}): tf.TensorInfo {
    let result: tf.TensorInfo | undefined;
    try {
      result = body();
      return result;
    } finally {
      const keep = keepResult ? result?.dataId : undefined;
      for (const info of this.owned) if (info.dataId !== keep) this.backend.disposeData(info.dataId);
      this.owned.length = 0;
    }
  }

  own(info: tf.TensorInfo): tf.TensorInfo {
    this.owned.push(info);
    return info;
  }

  /** Hands `info`'s buffer over to the caller: the scope will not free it. */
  disown(info: tf.TensorInfo): tf.TensorInfo {
    this.owned = this.owned.filter((o) => o.dataId !== info.dataId);
    return info;
  }

  /**
   * Swaps the last two axes of `x` (rank 2 or 3), into a buffer the scope
   * owns. When one of the two has size 1 the memory order does not change,
   * and a view of `x` is returned.
   */
  transposeLastTwo(x: tf.TensorInfo): tf.TensorInfo {
    const shape = x.shape;
    const rank = shape.length;
    const [rows, cols] = shape.slice(-2) as [number, number];
    const outShape = [...shape.slice(0, -2), cols, rows];
    if (rows === 1 || cols === 1) return view(x, outShape);
    const perm = rank === 2 ? [1, 0] : [0, 2, 1];
    return this.own(runStock(TRANSPOSE, { inputs: { x }, backend: this.backend, attrs: { perm } }));
  }

  /** A copy, owned, of matrix `index` of a `[batch, rows, cols]` buffer (batch 1 broadcasts). */
  copyMatrix(x: tf.TensorInfo, index: number, rows: number, cols: number): tf.TensorInfo {
    const size = rows * cols;
    const source = tf.util.sizeFromShape(x.shape) === size ? 0 : index * size;
    const out = this.own(this.backend.makeOutput([rows, cols], 'float32'));
    // Typed arrays are taken after makeOutput: an allocation can grow (and replace) the wasm heap.
    const from = this.backend.typedArrayFromHeap(view(x, [tf.util.sizeFromShape(x.shape)]));
    this.backend.typedArrayFromHeap(out).set(from.subarray(source, source + size));
    return out;
  }
}

// ---------------------------------------------------------------------------
// Notes: what the stock wasm kernels do, measured with tfjs-backend-wasm
// 4.22.0 (SIMD, one thread) in Node 20 on a shared 2-core AMD EPYC VM.
//
// XNNPACK path (batch_mat_mul_impl.cc). A product goes to XNNPACK only when
// both operands are single matrices and no transpose flag is set; it is run
// as a "fully connected" operator whose weights are the right operand. The
// operator packs a copy of those weights when it is created (a layout pass
// over k·n values) and is cached under (right operand's data id, bias's data
// id, activation). It is freed when the right operand's tensor is disposed.
// Data ids are never reused, so every new tensor on the right is a miss:
// about 1.5–2 ms for a 784×800 right operand against 4.5–6 ms for the whole
// 128×784·784×800 product. A student's weights are new tensors after every
// optimizer step, so each forward product pays the packing once per step;
// that is correct, not avoidable: a packed copy of old weights is stale. The
// teacher's weights never change and stay packed. What can be avoided is
// packing a right operand that only exists because of the rewrite: `dy·Wᵀ`
// with an explicit transpose creates and packs a fresh Wᵀ (a transpose pass
// and a packing pass over W every step), whereas `(W·dyᵀ)ᵀ` keeps W on the
// left and packs the small dyᵀ (see flipIsCheaper), saving about 1.2 ms per
// 784×800 layer per step. The cache is keyed by data id alone, hence
// Scope.rightOperand for reshaped tensors.
//
// The "tf.tidy anomaly" (one product measured at 33 ms in a tidy, 6 ms when
// disposed by hand) is warm-up, not tidy: whichever of the two runs first in
// the process takes 30–45 ms, the other 6 ms, in either order. With V8's
// wasm tier-up forced at start (--no-liftoff --no-wasm-lazy-compilation) the
// first product took 17 ms; after also touching 12 MB of the wasm heap
// beforehand, 7 ms: the rest is the VM faulting in fresh heap pages and the
// first operator's packing. tf.tidy itself adds nothing measurable; a right
// operand created inside a tidy is a cache miss exactly as it is outside one.
//
// Fallback loop. Everything else (transpose flags, batches) runs a scalar
// blocked loop, 10–15× slower. With _FusedMatMul it is also wrong: it adds
// the bias and clamps (relu, relu6) once per 48-long block of k, and indexes
// a rank-1 bias by min(row·n + column, n − 1), so rows after the first get the
// last bias value. The fused kernel here never sends work there; the stock
// per-matrix loop is used only for unfused batches of small matrices.
