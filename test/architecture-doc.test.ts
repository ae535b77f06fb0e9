import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/architecture.md is the design document test/architecture.test.ts
// enforces: its folder table must name exactly what src/ holds, so a folder
// added or removed without a word in the design fails here.

const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');

/** The first-column entries (`name/` or `name.ts`) of the table in the doc's "Folders" section. */
function documentedEntries(markdown: string): string[] {
  const section = markdown.split(/^## /m).find((part) => part.startsWith('Folders'));
  if (section === undefined) throw new Error('docs/architecture.md has no "## Folders ..." section');
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((match) => match[1]!);
}

/** Folders of src/ as `name/`, its top-level modules as `name.ts`. */
function sourceEntries(): string[] {
  return readdirSync(join(ROOT, 'src'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() || entry.name.endsWith('.ts'))
    .map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name));
}

describe('docs/architecture.md', () => {
  const documented = documentedEntries(readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8'));

  it('lists each entry once', () => {
    expect(documented.length).toBeGreaterThan(10);
    expect(new Set(documented).size).toBe(documented.length);
  });

  it('lists exactly the folders and top-level modules of src/', () => {
    expect([...documented].sort()).toEqual(sourceEntries().sort());
  });

  it('reads the table the way the test above relies on', () => {
    expect(documentedEntries('## Folders\n| Entry | Owns |\n| --- | --- |\n| `a/` | x |\n| `b.ts` | y |\n## Next\n| `c/` | z |\n')).toEqual([
      'a/',
      'b.ts',
    ]);
  });
});
