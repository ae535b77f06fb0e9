/**
 * Input checks shared by kd-ts's wasm kernels: each throws a
 * {@link KdBackendError} (`UNSUPPORTED_KERNEL_INPUT`) naming the kernel.
 *
 * @packageDocumentation
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KdBackendError } from '../../../errors.js';

export function requireInputs<K extends string>(
  inputs: tf.NamedTensorInfoMap,
  names: readonly K[],
  kernelName: string,
): Record<K, tf.TensorInfo> {
  const found = {} as Record<K, tf.TensorInfo>;
  for (const name of names) {
    const input = inputs[name];
    if (input === undefined) throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${kernelName}: input ${name} is missing`);
    found[name] = input;
  }
  return found;
}

export function requireAttrs<Attrs>(attrs: Attrs | undefined, kernelName: string): Attrs {
  if (attrs === undefined) throw new KdBackendError('UNSUPPORTED_KERNEL_INPUT', `${kernelName}: attributes are missing`);
  return attrs;
}

export function requireFloat32(kernelName: string, inputs: Record<string, tf.TensorInfo>): void {
  for (const [name, input] of Object.entries(inputs)) {
    if (input.dtype !== 'float32') {
      throw new KdBackendError(
        'UNSUPPORTED_KERNEL_INPUT',
        `${kernelName} on wasm (kd-ts) supports float32 only, but ${name} is ${input.dtype}: cast it with tf.cast(${name}, 'float32')`,
      );
    }
  }
}

export function requireRank4(kernelName: string, inputs: Record<string, tf.TensorInfo>): void {
  for (const [name, input] of Object.entries(inputs)) {
    if (input.shape.length !== 4) {
      throw new KdBackendError(
        'UNSUPPORTED_KERNEL_INPUT',
        `${kernelName}: ${name} must be rank 4, got shape [${input.shape}]`,
      );
    }
  }
}

export function requireFilterChannels(kernelName: string, filterShape: number[], inChannels: number): void {
  if (filterShape[2] !== inChannels) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${kernelName}: the filter [${filterShape}] takes ${filterShape[2]} input channels but the input has ${inChannels}`,
    );
  }
}

export function requireShape(kernelName: string, name: string, actual: number[], expected: number[]): void {
  if (actual.length !== expected.length || actual.some((size, axis) => size !== expected[axis])) {
    throw new KdBackendError(
      'UNSUPPORTED_KERNEL_INPUT',
      `${kernelName}: ${name} has shape [${actual}] but the convolution gives [${expected}]: check strides, pad and filterShape`,
    );
  }
}
