/**
 * SVG → PNG for the examples' reports, for places that do not show SVG.
 * Rendered by resvg compiled to WebAssembly (`@resvg/resvg-wasm`, a dev
 * dependency): no native canvas, no install script, the same pixels on every
 * platform. WebAssembly cannot read system fonts by itself, so the first
 * font file found in {@link FONT_FILES} is handed to it.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Resvg, initWasm } from '@resvg/resvg-wasm';

/** Sans-serif font files tried in order (Debian/Ubuntu, Fedora, macOS, Windows), with their family names. */
export const FONT_FILES: ReadonlyArray<{ file: string; family: string }> = [
  { file: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', family: 'DejaVu Sans' },
  { file: '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', family: 'Liberation Sans' },
  { file: '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf', family: 'DejaVu Sans' },
  { file: '/System/Library/Fonts/Supplemental/Arial.ttf', family: 'Arial' },
  { file: 'C:\\Windows\\Fonts\\arial.ttf', family: 'Arial' },
];

/** A rendered picture. */
export interface PngResult {
  /** The PNG file's bytes. */
  png: Uint8Array;
  width: number;
  height: number;
  /** The font family the text was drawn with; undefined when no font file was found (the PNG then has no text). */
  font?: string;
}

let ready: Promise<void> | undefined;

/**
 * Renders an SVG document to PNG.
 *
 * @param svg - The SVG text (e.g. from Vega's `View.toSVG()`).
 * @param scale - Pixels per SVG unit (default 2, sharp on high-density screens).
 * @returns The PNG bytes, its size, and the font used.
 */
export async function svgToPng(svg: string, scale = 2): Promise<PngResult> {
  ready ??= readFile(createRequire(import.meta.url).resolve('@resvg/resvg-wasm/index_bg.wasm')).then((wasm) => initWasm(wasm));
  await ready;
  const font = FONT_FILES.find((f) => existsSync(f.file));
  const fontBuffers = font === undefined ? [] : [new Uint8Array(await readFile(font.file))];
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { fontBuffers, ...(font === undefined ? {} : { defaultFontFamily: font.family, sansSerifFamily: font.family }) },
  });
  try {
    const image = resvg.render();
    try {
      return { png: image.asPng(), width: image.width, height: image.height, font: font?.family };
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}
