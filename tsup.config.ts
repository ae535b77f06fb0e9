import { defineConfig } from 'tsup';

/** One entry per public subpath; package.json's `exports` maps `kd-ts/<name>` to `dist/<name>.*`. */
export const ENTRIES = {
  index: 'src/index.ts',
  losses: 'src/losses/index.ts',
  teachers: 'src/teachers/index.ts',
  distill: 'src/distill/index.ts',
  io: 'src/io/index.ts',
  text: 'src/text/index.ts',
  backend: 'src/backend/index.ts',
  layers: 'src/layers/index.ts',
  node: 'src/node/index.ts',
} as const;

export default defineConfig({
  // The worker thread script of kd-ts/node's workerPool (src/node/workers/spawnWorker.ts finds it beside the chunks): not a public entry.
  entry: { ...ENTRIES, 'node-worker': 'src/node/workers/worker.ts' },
  format: ['esm', 'cjs'],
  // Shared chunks in both formats: a class re-exported by two entries (KdError,
  // Distiller, ...) is one class, so `instanceof` holds across entries in CJS too.
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  // spawnWorker.ts finds the worker script beside itself: through __filename in CJS, import.meta.url in ESM.
  // import.meta is a syntax error in CJS, so the (unreached) reference is blanked there; tsup's shims
  // would put Node's path/url imports into the browser-safe chunks.
  esbuildOptions(options, context) {
    if (context.format === 'cjs') options.define = { ...options.define, 'import.meta.url': 'undefined' };
  },
  target: 'es2022',
  // tfjs stays a peer: one copy of tfjs-core in the app, never bundled into ours.
  external: [/^@tensorflow\//],
});
