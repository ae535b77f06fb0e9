/**
 * kd-ts/backend: choosing a tfjs backend for training, and the kernels kd-ts
 * adds or replaces for it (gradients stock wasm lacks, a fast Embedding
 * gradient on cpu, faster wasm matrix products and slices). Most programs need
 * only
 * {@link pickTrainingBackend}, or {@link enableWasmTraining} on wasm.
 *
 * @module kd-ts/backend
 */
export {
  pickTrainingBackend,
  type BackendChoice,
  type PickBackendOptions,
  type TrainingBackendName,
} from './pickBackend.js';
export { enableWasmTraining } from './wasm.js';
export { registerWasmTrainingKernels } from './wasmTrainingKernels.js';
export { registerCpuTrainingKernels } from './cpuTrainingKernels.js';
export { registerWasmFastMatMul } from './wasmFastMatMul.js';
export { registerWasmFastSlice } from './wasmSlice.js';
