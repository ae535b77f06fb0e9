import wabtModule from 'wabt';

/** update.wat's text compiled to a binary module by wabt (the features it uses: SIMD, threads). */
export async function compileUpdateWat(text: string): Promise<Uint8Array> {
  const wabt = await wabtModule();
  const parsed = wabt.parseWat('update.wat', text, { simd: true, threads: true });
  try {
    parsed.resolveNames();
    // wabt's typings leave out validate's features, which its code reads: without them a shared memory is refused.
    (parsed as unknown as { validate(features: object): void }).validate({ simd: true, threads: true });
    return parsed.toBinary({ log: false, write_debug_names: false }).buffer;
  } finally {
    parsed.destroy();
  }
}
