/**
 * The examples' SVG → PNG renderer (examples/shared/png.ts): a real PNG of
 * the SVG's size times the scale, with the drawing and the text in it.
 */
import { describe, expect, it } from 'vitest';
import { svgToPng } from '../../examples/shared/png.js';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">
  <rect x="0" y="0" width="60" height="40" fill="#ff0000"/>
  <text x="64" y="28" font-family="sans-serif" font-size="24" fill="#000000">Hi</text>
</svg>`;

/** Width and height from the IHDR chunk. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

describe('svgToPng', () => {
  it('renders at twice the SVG size by default, with a PNG signature and IHDR', async () => {
    const result = await svgToPng(SVG);
    expect(Array.from(result.png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(pngSize(result.png)).toEqual({ width: 240, height: 80 });
    expect({ width: result.width, height: result.height }).toEqual({ width: 240, height: 80 });
  });

  it('draws text when a system font is found (none found: the PNG has no text, and font is undefined)', async () => {
    const withText = await svgToPng(SVG, 1);
    const withoutText = await svgToPng(SVG.replace(/<text[^]*<\/text>/, ''), 1);
    if (withText.font === undefined) expect(withText.png).toEqual(withoutText.png);
    else expect(withText.png).not.toEqual(withoutText.png);
    expect(pngSize(withText.png)).toEqual({ width: 120, height: 40 });
  });
});
