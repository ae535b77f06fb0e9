/**
 * Starts the tfjs backend the user picked. Each backend package is imported
 * on demand, so a page that trains on wasm never downloads the webgl or
 * webgpu code.
 */
import { pickTrainingBackend, type BackendChoice } from 'kd-ts';

/** Backends the demo offers. */
export type DemoBackend = 'webgl' | 'wasm' | 'cpu' | 'webgpu';

/** Every backend, in the order of the menu. */
export const DEMO_BACKENDS: DemoBackend[] = ['webgl', 'wasm', 'cpu', 'webgpu'];

/**
 * Registers and activates a backend. On wasm, kd-ts's `pickTrainingBackend`
 * calls `enableWasmTraining()`, which adds the kernels stock wasm lacks for
 * training and its fast matrix products.
 *
 * @param name - The backend to start.
 * @param base - The page's base URL; the .wasm files are under `wasm/`.
 * @returns What kd-ts chose and added.
 * @throws `KdBackendError` (code `BACKEND_UNAVAILABLE`) when the backend does not start here
 *   (webgl without a GPU or SwiftShader, webgpu without `navigator.gpu`).
 */
export async function startBackend(name: DemoBackend, base: string): Promise<BackendChoice> {
  switch (name) {
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // The binaries are served next to the page (copied there by prepare.ts);
      // without this the backend looks for them beside its own script.
      wasm.setWasmPaths(new URL('wasm/', base).href);
      break;
    }
    case 'webgl':
      await import('@tensorflow/tfjs-backend-webgl');
      break;
    case 'webgpu':
      await import('@tensorflow/tfjs-backend-webgpu');
      break;
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      break;
  }
  return pickTrainingBackend({ prefer: [name] });
}

/** Whether this browser exposes WebGPU at all (the menu greys it out otherwise). */
export function hasWebGpu(): boolean {
  return typeof navigator !== 'undefined' && 'gpu' in navigator;
}
