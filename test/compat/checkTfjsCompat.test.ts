import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { checkTfjsCompat, TFJS_PATCHES } from '../../src/compat/checkTfjsCompat.js';
import { KdBackendError } from '../../src/errors.js';

describe('checkTfjsCompat', () => {
  it('passes on the installed tfjs and lists every patch with the versions it was checked against', () => {
    const patches = checkTfjsCompat();
    expect(patches.map((patch) => patch.id)).toEqual([
      'core.IS_TEST',
      'core.Engine.isTapeOn',
      'layers.makeTestFunction',
      'global.Math.random',
      'core.AdamOptimizer.accBeta',
    ]);
    for (const patch of patches) {
      expect(patch.checkedAgainst, patch.id).toMatch(/4\.22\.0/);
      expect(patch.installedVersion(), patch.id).toMatch(/\d+\.\d+\.\d+/);
    }
  });

  it('throws TFJS_INTERNALS_CHANGED for the first patch whose member is gone', () => {
    const prototype = tfl.LayersModel.prototype as unknown as Record<string, unknown>;
    const original = prototype['makeTestFunction'];
    delete prototype['makeTestFunction'];
    try {
      const error = (() => {
        try {
          checkTfjsCompat();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(KdBackendError);
      expect((error as KdBackendError).code).toBe('TFJS_INTERNALS_CHANGED');
      expect((error as Error).message).toMatch(/makeTestFunction .* checked against tfjs-layers 4\.22\.0/);
    } finally {
      prototype['makeTestFunction'] = original;
    }
    expect(TFJS_PATCHES.length).toBe(5);
  });
});
