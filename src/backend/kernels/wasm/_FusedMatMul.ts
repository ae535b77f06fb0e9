/**
 * `_FusedMatMul` for wasm with every product on XNNPACK's fast path, in place
 * of the stock kernel. It keeps the semantics of the cpu backend, including
 * cases the stock wasm kernel rejects or gets wrong: a bias of any
 * broadcastable shape, PReLU weights broadcast along other than the trailing
 * axes, and transposed or batched products with a bias or a relu/relu6 (see
 * the notes at the end of `matMulProducts.ts`).
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { stockKernelFunc, type KdKernelConfig, type KernelArgs } from '../registry.js';
import { requireStock } from './BatchMatMul.js';
import { WASM } from './heap.js';
import { describeProduct, multiply, rowOperands, type ProductGeometry } from './matMulProducts.js';
import { runStock, Scope, view, wasmBackend, type WasmBackendWithData } from './matMulScope.js';

/** Replaces the stock wasm `_FusedMatMul`, which it delegates to for what it does not take. */
export const fusedMatMulConfig: KdKernelConfig = {
  kernelName: tf._FusedMatMul,
  backendName: WASM,
  mode: 'replace',
  kernelFunc: fastFusedMatMul,
};

function fastFusedMatMul(args: KernelArgs<tf._FusedMatMulAttrs>, stock: tf.KernelFunc | undefined): tf.TensorInfo | tf.TensorInfo[] {
  const stockFusedMatMul = requireStock(stock, tf._FusedMatMul);
  const { a, b, bias, preluActivationWeights } = args.inputs as tf._FusedMatMulInputs;
  const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs!;
  const geometry = describeProduct(a, b, transposeA, transposeB);
  if (geometry === undefined || !FUSABLE.has(activation)) return stockFusedMatMul(args as Parameters<tf.KernelFunc>[0]);
  const scope = new Scope(wasmBackend(args.backend), requireStock(stockKernelFunc(tf.BatchMatMul, WASM), tf.BatchMatMul));
  const epilogue: Epilogue = { bias, activation, preluWeights: preluActivationWeights, leakyreluAlpha: leakyreluAlpha || 0 };
  return scope.run(() => {
    if (canFuseEpilogue(scope.backend, geometry, epilogue)) {
      const { lhs, rhs } = rowOperands(scope, geometry);
      const right = scope.rightOperand(rhs);
      const out = stockFusedMatMul({
        inputs: { a: view(lhs, [1, ...lhs.shape]), b: view(right, [1, ...right.shape]), ...definedInputs(epilogue) },
        backend: scope.backend,
        attrs: { transposeA: false, transposeB: false, activation, leakyreluAlpha: epilogue.leakyreluAlpha },
      }) as tf.TensorInfo;
      return view(out, geometry.outShape);
    }
    return applyEpilogue(scope, multiply(scope, geometry), epilogue);
  });
}

/** The activations the stock wasm `_FusedMatMul` knows; others go to it for its error. */
const FUSABLE = new Set<string>(['linear', 'relu', 'relu6', 'elu', 'leakyrelu', 'prelu', 'sigmoid']);


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
function canFuseEpilogue(backend: WasmBackendWithData, g: ProductGeometry, e: Epilogue): boolean {
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

