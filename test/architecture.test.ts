import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

// The one-way dependencies of docs/architecture.md ("Folders and what they
// may import"), checked on the sources: a folder may import only the kd-ts
// folders listed for it. Keeps `text` and `io` free of the rest (they parse
// files a browser or a Python teacher shares with us), and core code free of
// Node-only modules. test/architecture-doc.test.ts keeps that document's
// folder table equal to src/.
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  // Patches of tfjs internals (src/compat/): under everything, importing only errors.
  compat: ['errors'],
  // Model inputs and batches of them: the ground floor every model-running folder stands on.
  inputs: ['errors', 'compat'],
  losses: ['errors', 'compat'],
  io: ['errors', 'inputs', 'compat'],
  text: ['errors', 'compat'],
  layers: ['errors', 'compat'],
  backend: ['errors', 'compat'],
  teachers: ['errors', 'inputs', 'losses', 'io', 'compat'],
  students: ['errors', 'inputs', 'layers', 'compat'],
  // Checkpoint stores and the checkpoint format: below distill, which writes and resumes them.
  checkpoints: ['errors', 'inputs', 'compat'],
  distill: ['errors', 'inputs', 'losses', 'teachers', 'layers', 'checkpoints', 'compat'],
  report: ['errors', 'inputs', 'losses', 'teachers', 'checkpoints', 'distill', 'io', 'compat'],
  // distill: the worker threads of kd-ts/node's workerPool run createTrainStep on their replicas.
  node: ['errors', 'inputs', 'io', 'teachers', 'layers', 'backend', 'checkpoints', 'distill', 'compat'],
};

const SRC = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'src');
const NODE_BUILTINS = /^(node:|fs$|fs\/|path$|os$|child_process$|worker_threads$|url$|stream$|crypto$)/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1] ?? '');
  return specifiers;
}

/** The top folder under src/ of a file ('errors' for src/errors.ts, 'index' for src/index.ts). */
function folderOf(file: string): string {
  const [first = ''] = relative(SRC, file).split(sep);
  return first.replace(/\.[jt]s$/, '');
}

const files = sourceFiles(SRC);

/**
 * The entry files: src/index.ts (`kd-ts`) and each src/<folder>/index.ts
 * (`kd-ts/<folder>`). They only re-export, and nothing inside src/ imports
 * them: each module imports the module that defines a name.
 */
const ENTRY_FILES = new Set(files.filter((f) => /^(?:[^/\\]+[/\\])?index\.ts$/.test(relative(SRC, f))));

describe('architecture: one-way dependencies between src/ folders', () => {
  it('finds the sources', () => {
    expect(files.length).toBeGreaterThan(30);
    expect(new Set(files.map(folderOf))).toEqual(new Set([...Object.keys(ALLOWED), 'index']));
    expect(ENTRY_FILES).toContain(join(SRC, 'index.ts'));
    expect(ENTRY_FILES).toContain(join(SRC, 'node', 'index.ts'));
  });

  for (const file of files) {
    const folder = folderOf(file);
    if (folder === 'index') continue;
    it(`${relative(SRC, file)} imports only what ${folder}/ may`, () => {
      const violations: string[] = [];
      for (const specifier of importsOf(file)) {
        if (specifier.startsWith('.')) {
          const resolved = join(file, '..', specifier).replace(/\.js$/, '.ts');
          const target = folderOf(resolved);
          if (ENTRY_FILES.has(resolved) || ENTRY_FILES.has(join(resolved, 'index.ts'))) {
            violations.push(`${specifier} (an entry file: nothing inside src/ imports one)`);
          } else if (target !== folder && !(ALLOWED[folder] ?? []).includes(target)) violations.push(specifier);
        } else if (folder !== 'node' && NODE_BUILTINS.test(specifier)) {
          violations.push(`${specifier} (Node-only: move it behind kd-ts/node)`);
        }
      }
      expect(violations).toEqual([]);
    });
  }
});

// docs/architecture.md: a file reads in one sitting. Past 450 lines, split it
// by concern (as TeacherCache, Distiller and teacherFiles were).
const MAX_LINES = 450;
describe('architecture: no file in src/ over 450 lines', () => {
  it('every source file is at most 450 lines', () => {
    const long = files
      .map((file) => ({ file: relative(SRC, file), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > MAX_LINES);
    expect(long).toEqual([]);
  });
});
