import wabtModule from 'wabt';

/** The WebAssembly text files of kd-ts, and the TypeScript files their bytes are committed in. */
export const WAT_MODULES = [
  { wat: 'src/node/workers/update.wat', out: 'src/node/workers/updateWasm.ts', constant: 'UPDATE_WASM_BASE64' },
  { wat: 'src/layers/lstmInference.wat', out: 'src/layers/lstmInferenceWasm.ts', constant: 'LSTM_INFERENCE_WASM_BASE64' },
] as const;

/** A .wat file's text compiled to a binary module by wabt (the features kd-ts's modules use: SIMD, threads, bulk memory). */
export async function compileWat(name: string, text: string): Promise<Uint8Array> {
  const wabt = await wabtModule();
  const features = { simd: true, threads: true, bulk_memory: true };
  const parsed = wabt.parseWat(name, text, features);
  try {
    parsed.resolveNames();
    // wabt's typings leave out validate's features, which its code reads: without them a shared memory is refused.
    (parsed as unknown as { validate(features: object): void }).validate(features);
    return parsed.toBinary({ log: false, write_debug_names: false }).buffer;
  } finally {
    parsed.destroy();
  }
}
