/**
 * Fetches the digit subset that prepare.ts wrote at build time: one small
 * JSON manifest and one binary file of uint8 grey levels and labels.
 */
import type { SubsetManifest } from './prepare.js';
import { PIXELS } from './models.js';

/** Digits ready to become tensors. */
export interface DigitSet {
  /** Grey levels 0–255, row-major, `size × 784` (for drawing). */
  pixels: Uint8Array;
  /** The same pixels scaled to [0, 1] (for the models). */
  x: Float32Array;
  /** Class ids 0 to 9. */
  labels: Int32Array;
  size: number;
}

/** What the page trains and scores on. */
export interface DemoData {
  train: DigitSet;
  test: DigitSet;
  manifest: SubsetManifest;
}

/**
 * Loads the subset from the page's own folder (`data/mnist-subset.*`).
 *
 * @param base - URL the files are relative to (the page's base URL).
 * @returns The training and test digits, and the manifest.
 */
export async function loadDigits(base: string): Promise<DemoData> {
  const manifest = (await fetchOk(new URL('data/mnist-subset.json', base)).then((r) => r.json())) as SubsetManifest;
  const binary: ArrayBuffer = await (await fetchOk(new URL('data/mnist-subset.bin', base))).arrayBuffer();
  const bytes = new Uint8Array(binary);
  const expected = (manifest.trainSize + manifest.testSize) * (PIXELS + 1);
  if (bytes.length !== expected) {
    throw new Error(`data/mnist-subset.bin has ${bytes.length} bytes, the manifest says ${expected}: rerun examples/browser/prepare.ts`);
  }
  // Layout: train pixels, train labels, test pixels, test labels.
  const train = readSet(bytes, 0, manifest.trainSize);
  const test = readSet(bytes, manifest.trainSize * (PIXELS + 1), manifest.testSize);
  return { train, test, manifest };
}

function readSet(bytes: Uint8Array, offset: number, size: number): DigitSet {
  const pixels = bytes.subarray(offset, offset + size * PIXELS);
  const labels = Int32Array.from(bytes.subarray(offset + size * PIXELS, offset + size * (PIXELS + 1)));
  return { pixels, x: Float32Array.from(pixels, (v) => v / 255), labels, size };
}

async function fetchOk(url: URL): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.href}: HTTP ${response.status} (was the build step run? see examples/browser/README.md)`);
  return response;
}
