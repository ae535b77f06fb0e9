/**
 * The one place kd-ts puts kernels into tfjs's kernel registry, and takes
 * them out again. Every `register*` function of kd-ts/backend hands its list
 * of {@link KdKernelConfig}s to {@link registerKdKernels}; nothing else calls
 * `tf.registerKernel`.
 *
 * A registered kernelFunc carries a mark under a global symbol: which kernel
 * it is and which stock config it replaced. The mark makes registration
 * idempotent, even across two copies of kd-ts in one process (ESM next to
 * CJS), and lets {@link restoreStockKernels} put the stock kernel back.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';

/** The arguments tfjs hands a kernelFunc, with the kernel's attributes typed. */
export interface KernelArgs<Attrs = tf.NamedAttrMap> {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: Attrs;
}

/**
 * A kd-ts kernel. `stock` is the kernelFunc it replaced, for the inputs it
 * hands back (undefined for an `'add'` kernel, or when the backend had none).
 */
export type KdKernelFunc<Attrs = never> = (
  args: KernelArgs<Attrs>,
  stock: tf.KernelFunc | undefined,
) => tf.TensorInfo | tf.TensorInfo[];

/** One kernel kd-ts registers, as tfjs's `KernelConfig` plus how it meets the stock kernel. */
export interface KdKernelConfig {
  kernelName: string;
  backendName: string;
  /**
   * `'add'`: a kernel the backend lacks; registered only where the backend
   * has none (a later tfjs that has one keeps its own). `'replace'`: put in
   * place of the stock kernel, whose config (setupFunc included: it binds the
   * C++ entry point the stock kernelFunc needs) is kept for delegation and
   * for {@link restoreStockKernels}.
   */
  mode: 'add' | 'replace';
  kernelFunc: KdKernelFunc;
}

/**
 * Registers `kernels`, each unless it is kd-ts's already. Idempotent.
 *
 * @param kernels - The kernels, in the order their names are returned.
 * @returns The names of those that are kd-ts's after the call (registered
 *   now or earlier), in the order given; an `'add'` kernel the backend
 *   already has is left alone and not returned.
 */
export function registerKdKernels(kernels: readonly KdKernelConfig[]): string[] {
  const ours: string[] = [];
  for (const kernel of kernels) {
    const { kernelName, backendName } = kernel;
    const existing = tf.getKernel(kernelName, backendName);
    if (existing !== undefined && markOf(existing, kernelName) !== undefined) {
      ours.push(kernelName);
      continue;
    }
    if (kernel.mode === 'add' && existing !== undefined) continue;
    const stock = kernel.mode === 'replace' ? existing : undefined;
    // Unregister first: registering over a kernel logs a warning.
    if (existing !== undefined) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({ ...stock, kernelName, backendName, kernelFunc: marked(kernel, stock) });
    ours.push(kernelName);
  }
  return ours;
}

/**
 * Takes kd-ts's kernels among `kernels` out of the registry and puts back the
 * stock configs they replaced. Kernels that are not kd-ts's are left alone.
 *
 * @param kernels - The kernels to take out.
 */
export function restoreStockKernels(kernels: readonly KdKernelConfig[]): void {
  for (const { kernelName, backendName } of kernels) {
    const current = tf.getKernel(kernelName, backendName);
    const mark = current === undefined ? undefined : markOf(current, kernelName);
    if (mark === undefined) continue;
    tf.unregisterKernel(kernelName, backendName);
    if (mark.stock !== undefined) tf.registerKernel(mark.stock);
  }
}

/**
 * The stock kernelFunc of `kernelName`: the one kd-ts's kernel replaced, or
 * the registered one when kd-ts has not replaced it (undefined when none).
 *
 * @param kernelName - A tfjs kernel name.
 * @param backendName - A backend name.
 * @returns The stock kernelFunc, if any.
 */
export function stockKernelFunc(kernelName: string, backendName: string): tf.KernelFunc | undefined {
  const current = tf.getKernel(kernelName, backendName);
  if (current === undefined) return undefined;
  const mark = markOf(current, kernelName);
  return mark === undefined ? current.kernelFunc : mark.stock?.kernelFunc;
}

/** `Symbol.for`, not `Symbol`: two copies of kd-ts (ESM and CJS) must recognize each other's kernels. */
const KD_KERNEL = Symbol.for('kd-ts.kernel');

interface KernelMark {
  kernelName: string;
  stock: tf.KernelConfig | undefined;
}

type MarkedKernelFunc = tf.KernelFunc & { [KD_KERNEL]?: KernelMark };

function markOf(config: tf.KernelConfig, kernelName: string): KernelMark | undefined {
  const mark = (config.kernelFunc as MarkedKernelFunc)[KD_KERNEL];
  return mark?.kernelName === kernelName ? mark : undefined;
}

/** A fresh kernelFunc per registration: its mark holds the stock config it replaced. */
function marked(kernel: KdKernelConfig, stock: tf.KernelConfig | undefined): tf.KernelFunc {
  const stockFunc = stock?.kernelFunc;
  const kernelFunc = ((args: KernelArgs<never>) => kernel.kernelFunc(args, stockFunc)) as MarkedKernelFunc;
  const mark: KernelMark = { kernelName: kernel.kernelName, stock };
  Object.defineProperty(kernelFunc, KD_KERNEL, { value: mark });
  return kernelFunc;
}
