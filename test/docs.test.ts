import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Value exports (functions, classes, constants) of an entry file: `export { a, b, type T } from ...`. */
function valueExports(entry: string): string[] {
  const text = readFileSync(entry, 'utf8');
  const names: string[] = [];
  for (const block of text.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const part of block[1]!.split(',')) {
      const name = part.trim();
      if (name !== '' && !name.startsWith('type ')) names.push(name.split(/\s+as\s+/).pop()!);
    }
  }
  return names;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The TSDoc block directly above `export function|class|const NAME`. */
function docOf(name: string): string | undefined {
  const declaration = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export (?:async )?(?:function|class|const) ${name}\\b`);
  for (const file of sourceFiles('src')) {
    const match = readFileSync(file, 'utf8').match(declaration);
    if (match) return match[1];
  }
  return undefined;
}

describe('public API documentation', () => {
  for (const entry of ['src/index.ts', 'src/node/index.ts']) {
    const names = valueExports(entry);
    it(`${entry} exports values`, () => expect(names.length).toBeGreaterThan(entry === 'src/index.ts' ? 10 : 2));
    it.each(names)(`${entry}: %s has TSDoc with an @example`, (name) => {
      const doc = docOf(name);
      expect(doc, `no TSDoc found for ${name}`).toBeDefined();
      expect(doc).toContain('@example');
    });
  }
});
