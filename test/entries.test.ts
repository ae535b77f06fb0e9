import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ENTRIES } from '../tsup.config.js';

// The front door (docs/architecture.md, issue 16): `kd-ts` holds what a
// typical program imports, at most 45 runtime values; every src/<folder>/index.ts
// is the subpath entry `kd-ts/<folder>`, published by package.json's exports
// map, built by tsup, documented by TypeDoc and resolved by tsconfig's paths.

const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const MAX_ROOT_VALUES = 45;

/** Subpath entries: the folders of src/ with an index.ts. */
const SUBPATHS = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(ROOT, 'src', d.name, 'index.ts')))
  .map((d) => d.name)
  .sort();

const readJson = (file: string): any => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));
const pkg = readJson('package.json');
const typedoc = readJson('typedoc.json');
const tsconfig = ts.parseConfigFileTextToJson('tsconfig.json', readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')).config;

/** Names an entry file exports, values and types (`export { a, type B } from`, `export type { C } from`). */
function exportedNames(file: string): { values: string[]; types: string[] } {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const values: string[] = [];
  const types: string[] = [];
  for (const m of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
    for (const part of (m[2] ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
      const isType = m[1] !== undefined || part.startsWith('type ');
      const name = part.replace(/^type\s+/, '').split(/\s+as\s+/).pop()!;
      (isType ? types : values).push(name);
    }
  }
  return { values, types };
}

const entryFiles = ['src/index.ts', ...SUBPATHS.map((s) => `src/${s}/index.ts`)];

describe('front door: the root entry', () => {
  it(`exports at most ${MAX_ROOT_VALUES} runtime values`, async () => {
    const root = await import('../src/index.js');
    const values = Object.keys(root).sort();
    expect(values.length, `kd-ts exports ${values.length} values: ${values.join(', ')}`).toBeLessThanOrEqual(MAX_ROOT_VALUES);
    // The design card's pieces are there.
    expect(values).toEqual(expect.arrayContaining(['softmaxWithTemperature', 'distillationLoss', 'Distiller', 'EnsembleTeacher', 'buildBiLstmStudent', 'KdError']));
    // What the file declares is what the module gives (no value hidden behind `export *`).
    expect(values).toEqual([...exportedNames('src/index.ts').values].sort());
  });

  it('keeps the internals of issue 16 out of every entry', () => {
    const internal = ['npyHeader', 'loadArrow', 'ResolvedLossConfig', 'ResolvedEnsembleMember', 'unregisterWasmFastMatMul', 'BatchDataset', 'IdBatch'];
    for (const file of entryFiles) {
      const { values, types } = exportedNames(file);
      expect([...values, ...types].filter((n) => internal.includes(n)), file).toEqual([]);
    }
  });
});

describe('front door: subpath entries', () => {
  it('finds them', () => {
    expect(SUBPATHS).toEqual(expect.arrayContaining(['backend', 'distill', 'io', 'layers', 'losses', 'node', 'teachers', 'text']));
  });

  it.each(entryFiles)('%s only re-exports', (file) => {
    const code = readFileSync(join(ROOT, file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '')
      .replace(/export\s+(?:type\s+)?\{[^}]*\}\s*from\s*'\.{1,2}\/[^']+';/g, '')
      .replace(/export\s+\*\s+(?:as\s+\w+\s+)?from\s*'\.{1,2}\/[^']+';/g, '');
    expect(code.trim()).toBe('');
  });

  it.each(SUBPATHS)('kd-ts/%s is published: exports map, typesVersions, tsup, TypeDoc, tsconfig paths', (sub) => {
    expect(pkg.exports[`./${sub}`]).toEqual({
      import: { types: `./dist/${sub}.d.ts`, default: `./dist/${sub}.js` },
      require: { types: `./dist/${sub}.d.cts`, default: `./dist/${sub}.cjs` },
    });
    expect(pkg.typesVersions['*'][sub]).toEqual([`./dist/${sub}.d.cts`]);
    expect((ENTRIES as Record<string, string>)[sub]).toBe(`src/${sub}/index.ts`);
    expect(typedoc.entryPoints).toContain(`src/${sub}/index.ts`);
    expect(tsconfig.compilerOptions.paths[`kd-ts/${sub}`]).toEqual([`./src/${sub}/index.ts`]);
  });

  it('publishes no subpath without an entry file, and the root as before', () => {
    const published = Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json').map((k) => k.slice(2));
    expect(published.sort()).toEqual(SUBPATHS);
    expect(Object.keys(ENTRIES).sort()).toEqual(['index', ...SUBPATHS].sort());
    expect(pkg.exports['.']).toEqual({
      import: { types: './dist/index.d.ts', default: './dist/index.js' },
      require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
    });
    expect(pkg.sideEffects).toBe(false);
    expect(typedoc.entryPoints).toContain('src/index.ts');
  });
});
