/**
 * Vite config of the browser demo: `npx vite examples/browser` (dev server)
 * or `npx vite build examples/browser` (static files in examples/browser/dist).
 *
 * `kd-ts` and its subpaths resolve to the BUILT package (dist/, via
 * package.json's `exports`), as they would from node_modules in a user's app: run
 * `npm run build` first. The build step (prepare.ts) runs before Vite starts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');

export default defineConfig({
  root: HERE,
  // Relative URLs: the built page works from any folder it is served from.
  base: './',
  resolve: { alias: packageAliases() },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2000 },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
  plugins: [prepareStep()],
});

/**
 * The files `import ... from 'kd-ts'` and `'kd-ts/<subpath>'` mean for a
 * bundler: the `import` condition of each entry of the package's `exports`.
 */
function packageAliases(): Array<{ find: RegExp; replacement: string }> {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { import: { default: string } }>;
  };
  return Object.entries(pkg.exports).flatMap(([subpath, target]) => {
    if (typeof target === 'string') return []; // ./package.json
    const entry = path.join(REPO, target.import.default);
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first, the demo imports the built package`);
    const name = subpath === '.' ? 'kd-ts' : `kd-ts/${subpath.slice(2)}`;
    return [{ find: new RegExp(`^${name}$`), replacement: entry }];
  });
}

/** Runs prepare.ts (data subset, pretrained teacher, .wasm files) once, before serving or building. */
function prepareStep(): Plugin {
  let done = false;
  return {
    name: 'kd-ts-demo-prepare',
    buildStart() {
      if (done) return;
      done = true;
      // A child process: the step trains with tfjs in Node, which has no place in Vite's own process.
      execFileSync(path.join(REPO, 'node_modules/.bin/tsx'), [path.join(HERE, 'prepare.ts')], { stdio: 'inherit', cwd: REPO });
    },
  };
}
