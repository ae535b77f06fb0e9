import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { KdBackendError, KdConfigError, KdDataError, KdError, KdShapeError } from '../src/index.js';

const CLASSES = { KdError, KdConfigError, KdShapeError, KdDataError, KdBackendError } as const;

describe('typed errors', () => {
  it('carry code, message, cause and their class name', () => {
    const cause = new Error('inner');
    const error = new KdDataError('CORRUPT_FILE', 'bad file: write it again', { cause });
    expect(error).toBeInstanceOf(KdError);
    expect(error).toBeInstanceOf(Error);
    expect(error.cause).toBe(cause);
    for (const [name, Class] of Object.entries(CLASSES)) expect(new Class('INVALID_OPTION', 'm').name).toBe(name);
  });

  it('keep their names in a minified bundle (an app that matches on error.name)', async () => {
    const bundled = await build({
      stdin: { contents: "export * from './src/errors.ts';", resolveDir: process.cwd(), loader: 'ts' },
      bundle: true,
      minify: true,
      format: 'esm',
      write: false,
    });
    const code = bundled.outputFiles[0]!.text;
    const minified = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as typeof CLASSES;
    // The minifier renamed the classes themselves...
    expect(minified.KdDataError.name).not.toBe('KdDataError');
    // ...but not what their errors report.
    for (const name of Object.keys(CLASSES) as (keyof typeof CLASSES)[]) {
      const error = new minified[name]('INVALID_OPTION', 'm');
      expect(error.name).toBe(name);
      expect(error.code).toBe('INVALID_OPTION');
    }
  });
});
