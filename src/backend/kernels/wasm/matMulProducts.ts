/**
 * Every matrix product rewritten into plain 2-D ones, the only products
 * tfjs-backend-wasm (4.x) runs on XNNPACK: no `transposeA`/`transposeB` flag
 * and a batch dimension of 1. Anything else (every weight gradient `xᵀ·dy`,
 * every input gradient `dy·Wᵀ`, every batched product) falls back to a scalar
 * blocked loop in `batch_mat_mul_impl.cc` that is about 13× slower. Explicit
 * transposes (the stock `Transpose` kernel) and reshapes feed the stock
 * `BatchMatMul`, so the arithmetic itself still runs in XNNPACK. Used by the
 * `BatchMatMul` and `_FusedMatMul` kernels; see the notes at the end.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { Scope, view } from './matMulScope.js';

/** A product `op(a)·op(b)` described as `batch` matrix products `[m, k]·[k, n]`. */
export interface ProductGeometry {
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
export function describeProduct(
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
export function multiply(scope: Scope, g: ProductGeometry): tf.TensorInfo {
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
export function rowOperands(scope: Scope, g: ProductGeometry): { lhs: tf.TensorInfo; rhs: tf.TensorInfo } {
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
      const inner = new Scope(scope.backend, scope.stockBatchMatMul);
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
