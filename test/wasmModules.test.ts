import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileWat, WAT_MODULES } from '../scripts/compileWat.js';
import { UPDATE_WASM_BASE64 } from '../src/node/workers/updateWasm.js';
import { LSTM_INFERENCE_WASM_BASE64 } from '../src/layers/lstmInferenceWasm.js';

const COMMITTED: Record<string, string> = { UPDATE_WASM_BASE64, LSTM_INFERENCE_WASM_BASE64 };

describe("kd-ts's WebAssembly modules", () => {
  it.each(WAT_MODULES.map((m) => [basename(m.wat), m] as const))(
    '%s is what its TypeScript file holds: the committed bytes are the compiled source (run npm run build:wasm after editing it)',
    async (_, { wat, constant }) => {
      const bytes = await compileWat(basename(wat), await readFile(new URL(`../${wat}`, import.meta.url), 'utf8'));
      expect(Buffer.from(bytes).toString('base64')).toBe(COMMITTED[constant]);
    },
  );
});
