import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkExamples,
  entryMap,
  extractExamples,
  formatFailure,
  type CheckResult,
  type ExampleBlock,
} from '../scripts/check-examples.js';

// The house rule "every export has an @example that compiles as written",
// checked: the same run as `npm run check:examples` (scripts/check-examples.ts).

const examples = extractExamples();
const entries = entryMap();

// Planted examples that prove the check can fail: one clean, one using a name
// it never defines, one importing a subpath the exports map does not publish.
const planted = (line: number, code: string): ExampleBlock => ({ file: 'test/planted.ts', line, owner: 'planted', code });
const PLANTED = {
  clean: planted(1, "import { softmaxWithTemperature } from 'kd-ts';\nimport * as tf from '@tensorflow/tfjs-core';\nsoftmaxWithTemperature(tf.tensor2d([[1, 2]]), 2).print();\nawait Promise.resolve();"),
  undefinedName: planted(100, "import { Distiller } from 'kd-ts';\nnew Distiller({ teacher, student });"),
  unpublished: planted(200, "import { npyHeader } from 'kd-ts/io/npy';\nconsole.log(npyHeader);"),
};
let result: CheckResult;

beforeAll(() => {
  result = checkExamples({ extra: Object.values(PLANTED), extraEntries: { planted: 'test/fixtures/undocumented-entry.ts' } });
}, 120_000);

const label = (example: ExampleBlock) => `${example.file}:${example.line} (${example.owner})`;
const failuresOf = (example: ExampleBlock) =>
  result.failures.filter((f) => f.example.file === example.file && f.example.line === example.line);

describe('public API documentation', () => {
  it('finds the examples and every entry of the exports map', () => {
    expect(examples.length).toBeGreaterThan(50);
    expect(entries['kd-ts']).toBe('src/index.ts');
    expect(entries['kd-ts/node']).toBe('src/node/index.ts');
  });

  it('the check passes a clean example and fails, at the right line, on broken ones', () => {
    expect(failuresOf(PLANTED.clean).map(formatFailure)).toEqual([]);
    expect(failuresOf(PLANTED.undefinedName).map((f) => [f.line, f.message.split(':')[0]])).toEqual([
      [101, 'TS18004'],
      [101, 'TS18004'],
    ]);
    expect(failuresOf(PLANTED.unpublished).map((f) => f.line)).toEqual([200]);
  });

  it('the check lists exported values without an @example, and only values', () => {
    const planted = result.missing.filter((gap) => gap.entry === 'planted').map((gap) => gap.name);
    expect(planted.sort()).toEqual(['undocumented', 'undocumentedConstant']);
  });

  it.each(examples.map((example) => [label(example), example] as const))(
    '@example at %s type-checks against kd-ts',
    (_, example) => {
      expect(failuresOf(example).map(formatFailure)).toEqual([]);
    },
  );

  it('every runtime value exported by a package entry has TSDoc with an @example', () => {
    expect(result.missing.filter((gap) => gap.entry !== 'planted').map((gap) => `${gap.entry}: ${gap.name} (${gap.declaredAt})`)).toEqual([]);
  });
});
