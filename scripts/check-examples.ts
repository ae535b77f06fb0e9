/**
 * Type-checks every `@example` of the sources as a user would paste it.
 *
 * Each ```ts fence inside an `@example` tag of a TSDoc comment under src/
 * becomes its own ES module under .tmp/examples/ (top-level `await` allowed),
 * compiled with the repo's tsconfig where `kd-ts` and each `kd-ts/<sub>` of
 * package.json's exports map resolve to the sources (`.` → src/index.ts,
 * `./<sub>` → src/<sub>/index.ts), so an example may import only what a user
 * can import. Also lists the runtime values of those entries whose TSDoc has
 * no `@example`.
 *
 * Usage: `npm run check:examples` (exit 1 on any failure). test/docs.test.ts
 * runs the same check under `npm test`.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** One ```ts fence of an `@example` tag. */
export interface ExampleBlock {
  /** Source file, relative to the repo root (posix separators). */
  file: string;
  /** 1-based line of the fence's first code line in `file`. */
  line: number;
  /** What the comment documents, e.g. `TeacherCache.fromTeacher` (best effort). */
  owner: string;
  /** The code, comment prefixes stripped. */
  code: string;
}

/** A compile error inside an example, located in the source comment. */
export interface ExampleFailure {
  example: ExampleBlock;
  /** 1-based line in `example.file` the error points at. */
  line: number;
  message: string;
}

/** A runtime value exported by a public entry whose TSDoc has no `@example`. */
export interface MissingExample {
  entry: string;
  name: string;
  /** Where it is declared, `src/...ts:line`. */
  declaredAt: string;
}

export interface CheckResult {
  examples: ExampleBlock[];
  failures: ExampleFailure[];
  /** Specifier → source entry used for `kd-ts` imports. */
  entries: Record<string, string>;
  missing: MissingExample[];
}

function posix(path: string): string {
  return path.split(sep).join('/');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return sourceFiles(path);
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
    })
    .sort();
}

const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;

/** The name of what a doc comment documents: the declaration after it, prefixed by its class for members. */
function ownerAfter(text: string, end: number): string {
  const rest = text.slice(end, end + 300);
  const top = rest.match(
    /^\s*export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(?:function\*?|class|const|let|interface|type|enum)\s+([A-Za-z_$][\w$]*)/,
  );
  if (top) return top[1]!;
  const member = rest.match(
    /^\s*(?:(?:public|protected|private|static|readonly|async|override|get|set)\s+)*([A-Za-z_$][\w$]*)\s*[(<:=?]/,
  );
  if (!member) return '?';
  const before = text.slice(0, end);
  const classes = [...before.matchAll(/^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)/gm)];
  const owner = classes.at(-1)?.[1];
  return owner ? `${owner}.${member[1]}` : member[1]!;
}

/** Every ```ts fence inside an `@example` tag of every `/** ... *\/` comment of `files`. */
export function extractExamples(files: readonly string[] = sourceFiles(join(ROOT, 'src'))): ExampleBlock[] {
  const blocks: ExampleBlock[] = [];
  for (const path of files) {
    const text = readFileSync(path, 'utf8');
    const file = posix(relative(ROOT, path));
    for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const start = comment.index;
      const lines = comment[0].split('\n');
      const firstLine = lineOf(text, start);
      let inExample = false;
      let fence: { line: number; code: string[] } | undefined;
      lines.forEach((raw, i) => {
        const content = raw.replace(/^\s*\/?\*\*?\/?\s?/, '').replace(/\s*\*\/$/, '');
        if (fence) {
          if (/^\s*```\s*$/.test(content)) {
            blocks.push({
              file,
              line: fence.line,
              owner: ownerAfter(text, start + comment[0].length),
              code: fence.code.join('\n'),
            });
            fence = undefined;
          } else {
            fence.code.push(content);
          }
          return;
        }
        if (/^\s*@example\b/.test(content)) inExample = true;
        else if (/^\s*@\w+/.test(content)) inExample = false;
        if (inExample && /^\s*```(?:ts|typescript)\s*$/.test(content)) fence = { line: firstLine + i + 1, code: [] };
      });
    }
  }
  return blocks;
}

/**
 * Specifier → source entry, from package.json's exports map: `.` is
 * src/index.ts, `./<sub>` is src/<sub>/index.ts. Keys with no such file (and
 * `./package.json`) are left out.
 */
export function entryMap(root = ROOT): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports?: Record<string, unknown>;
  };
  const map: Record<string, string> = {};
  for (const key of Object.keys(pkg.exports ?? { '.': null })) {
    if (key.endsWith('.json')) continue;
    const sub = key.replace(/^\.\/?/, '');
    const source = sub === '' ? 'src/index.ts' : `src/${sub}/index.ts`;
    if (existsSync(join(root, source))) map[sub === '' ? pkg.name : `${pkg.name}/${sub}`] = source;
  }
  return map;
}

function moduleName(example: ExampleBlock): string {
  return `${example.file.replace(/^src\//, '').replace(/\.ts$/, '').replace(/[/.]/g, '_')}_L${example.line}.ts`;
}

/** Writes the examples and their tsconfig under `outDir`; returns the tsconfig path and module → example. */
function writeExamples(examples: readonly ExampleBlock[], entries: Record<string, string>, outDir: string) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const byPath = new Map<string, ExampleBlock>();
  for (const example of examples) {
    const path = join(outDir, moduleName(example));
    // Code first, line for line, so a diagnostic's line maps straight back
    // to the comment; `export {}` makes it a module, where `await` is legal.
    writeFileSync(path, `${example.code}\nexport {};\n`);
    byPath.set(resolve(path), example);
  }
  const paths = Object.fromEntries(
    Object.entries(entries).map(([specifier, source]) => [specifier, [posix(relative(outDir, join(ROOT, source)))]]),
  );
  const config = {
    extends: posix(relative(outDir, join(ROOT, 'tsconfig.json'))),
    compilerOptions: { paths, noEmit: true },
    // The examples, and the sources' ambient declarations (e.g. for untyped packages).
    include: ['*.ts', posix(join(relative(outDir, join(ROOT, 'src')), '**', '*.d.ts'))],
  };
  const configPath = join(outDir, 'tsconfig.json');
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  return { configPath, byPath };
}

function missingExamples(program: ts.Program, entries: Record<string, string>): MissingExample[] {
  const checker = program.getTypeChecker();
  const missing: MissingExample[] = [];
  for (const [entry, source] of Object.entries(entries)) {
    const file = program.getSourceFile(join(ROOT, source));
    const moduleSymbol = file && checker.getSymbolAtLocation(file);
    if (!moduleSymbol) continue;
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (!(symbol.flags & ts.SymbolFlags.Value)) continue;
      const declarations = symbol.declarations ?? [];
      const documented = declarations.some((declaration) =>
        ts.getJSDocTags(declaration).some((tag) => tag.tagName.text === 'example'),
      );
      if (documented) continue;
      const declaration = declarations[0];
      const at = declaration
        ? `${posix(relative(ROOT, declaration.getSourceFile().fileName))}:${
            declaration.getSourceFile().getLineAndCharacterOfPosition(declaration.getStart()).line + 1
          }`
        : '?';
      missing.push({ entry, name: exported.name, declaredAt: at });
    }
  }
  return missing;
}

/**
 * Extracts, writes and type-checks every example; lists value exports with no
 * `@example`. `extra` examples are checked alongside (the test uses it to
 * prove the check fails on a broken one); `extraEntries` (specifier → file)
 * join the exports map's entries in the missing-`@example` list only.
 */
export function checkExamples(
  options: { outDir?: string; extra?: readonly ExampleBlock[]; extraEntries?: Record<string, string> } = {},
): CheckResult {
  const outDir = options.outDir ?? join(ROOT, '.tmp', 'examples');
  const examples = [...extractExamples(), ...(options.extra ?? [])];
  const entries = entryMap();
  const { configPath, byPath } = writeExamples(examples, entries, outDir);
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error(`cannot read ${configPath}`);
  const extraEntries = options.extraEntries ?? {};
  const rootNames = [...parsed.fileNames, ...Object.values(extraEntries).map((source) => join(ROOT, source))];
  const program = ts.createProgram({ rootNames, options: parsed.options });
  const failures: ExampleFailure[] = [];
  for (const sourceFile of program.getSourceFiles()) {
    const example = byPath.get(resolve(sourceFile.fileName));
    if (!example) continue;
    const diagnostics = [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)];
    for (const diagnostic of diagnostics) {
      const line = diagnostic.start === undefined ? 0 : sourceFile.getLineAndCharacterOfPosition(diagnostic.start).line;
      failures.push({
        example,
        line: example.line + line,
        message: `TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`,
      });
    }
  }
  return { examples, failures, entries, missing: missingExamples(program, { ...entries, ...extraEntries }) };
}

/** `file:line (owner): message`, one per failure, for humans and test output. */
export function formatFailure(failure: ExampleFailure): string {
  return `${failure.example.file}:${failure.line} (@example of ${failure.example.owner}): ${failure.message}`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const result = checkExamples();
  for (const failure of result.failures) console.error(formatFailure(failure));
  for (const gap of result.missing) console.error(`${gap.declaredAt}: ${gap.entry} exports ${gap.name} with no @example`);
  const broken = new Set(result.failures.map((f) => f.example)).size;
  console.log(
    `${result.examples.length} examples, ${broken} failing (${result.failures.length} errors); ` +
      `${result.missing.length} exported values without @example; entries: ${Object.keys(result.entries).join(', ')} ` +
      `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  process.exit(broken > 0 || result.missing.length > 0 ? 1 : 0);
}
