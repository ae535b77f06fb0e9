import { describe, expect, it, vi } from 'vitest';
import { KdConfigError } from '../../src/index.js';
import { encodeArrowTeacherOutputs, readArrowTeacherOutputs } from '../../src/io/index.js';

// apache-arrow is an optional peer dependency: simulate an app that did not install it.
vi.mock('apache-arrow', () => {
  throw new Error("Cannot find package 'apache-arrow'");
});

describe('Arrow without apache-arrow', () => {
  it('tells the user to npm install apache-arrow, and the other formats do not need it', async () => {
    const read = readArrowTeacherOutputs(new Uint8Array(8)).next();
    await expect(read).rejects.toBeInstanceOf(KdConfigError);
    await expect(readArrowTeacherOutputs(new Uint8Array(8)).next()).rejects.toMatchObject({
      code: 'MISSING_DEPENDENCY',
      message: expect.stringContaining('npm install apache-arrow'),
    });
    await expect(encodeArrowTeacherOutputs([]).next()).rejects.toMatchObject({ code: 'MISSING_DEPENDENCY' });
  });
});
