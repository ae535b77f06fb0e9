/**
 * Vite config of the checkpoint test page (test/browser/checkpoint.e2e.ts
 * builds it). The page imports kd-ts's sources, not the built package: this
 * test checks the IndexedDB store and the resume, demo.e2e.ts checks the
 * package as a bundler sees it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '../../../src');

export default defineConfig({
  root: HERE,
  base: './',
  resolve: {
    alias: [
      { find: /^kd-ts$/, replacement: path.join(SRC, 'index.ts') },
      { find: /^kd-ts\/(distill|losses|teachers)$/, replacement: `${SRC}/$1/index.ts` },
    ],
  },
  build: { outDir: path.resolve(HERE, '../../../.tmp/browser/checkpoint-page'), emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4000 },
});
