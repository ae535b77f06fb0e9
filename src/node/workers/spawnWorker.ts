import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The worker script's file name in dist/ (tsup.config.ts builds it in both formats). */
export const WORKER_BUILD_NAME = 'node-worker';

/**
 * Starts one worker thread running src/node/workers/worker.ts, whichever way
 * kd-ts was loaded: from the ESM build (dist/node-worker.js), the CJS build
 * (dist/node-worker.cjs), or from the TypeScript sources (tests, `tsx`),
 * where the worker registers tsx's loader before importing the source.
 */
export function spawnWorker(workerData: unknown): Worker {
  const here = currentFile();
  if (here.endsWith('.ts')) {
    const source = pathToFileURL(join(dirname(here), 'worker.ts')).href;
    // tsx/esm/api's ESM build (require.resolve picks its CJS twin).
    const tsx = pathToFileURL(createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(source)}); })`;
    return new Worker(bootstrap, { eval: true, workerData });
  }
  const extension = here.endsWith('.cjs') ? '.cjs' : '.js';
  return new Worker(join(dirname(here), `${WORKER_BUILD_NAME}${extension}`), { workerData });
}

/** This module's file: `__filename` in CommonJS (and under vitest), `import.meta.url` in ESM. */
function currentFile(): string {
  if (typeof __filename === 'string') return __filename;
  return fileURLToPath(import.meta.url);
}
