/**
 * End to end: the demo page (examples/browser), built with Vite against the
 * built kd-ts package, served on 127.0.0.1 and run in Debian's headless
 * Chromium. It distils a student in the page on wasm and cpu (and webgl when
 * SwiftShader gives it a context), and checks the student learned, nothing
 * leaked, and the page logged no error.
 *
 * Run: `npm run build && npm run test:browser` (needs /usr/bin/chromium:
 * `bash scripts/ensure-chromium.sh`). Screenshots and the measured numbers
 * go to .tmp/browser/.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoReport } from '../../examples/browser/main.js';
import { launchChromium, serveStatic, type HeadlessChromium, type StaticServer } from './harness.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DEMO = path.join(REPO, 'examples/browser');
const OUT = path.join(REPO, '.tmp/browser');
/** The demo student's 25,450 weights in float32. */
const STUDENT_FLOAT_BYTES = 25_450 * 4;

/** What one page run gave: the page's report, and what the browser saw. */
interface PageRun {
  report: DemoReport | undefined;
  status: string | undefined;
  /** Console errors and uncaught page errors. */
  errors: string[];
  /** Console warnings (reported, not failed on: SwiftShader warns about GPU stalls). */
  warnings: string[];
  wallSeconds: number;
}

describe('browser demo in headless Chromium', () => {
  let server: StaticServer;
  let browser: HeadlessChromium;
  let buildLog = '';
  const measured: Record<string, unknown> = {};

  beforeAll(async () => {
    await mkdir(OUT, { recursive: true });
    // Builds the page (the Vite config runs prepare.ts first: digit subset, teacher, .wasm files).
    const vite = path.join(REPO, 'node_modules/.bin/vite');
    const { stdout, stderr } = await promisify(execFile)(vite, ['build', DEMO], { cwd: REPO, maxBuffer: 16 << 20 });
    buildLog = stdout + stderr;
    server = await serveStatic(path.join(DEMO, 'dist'));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await writeFile(path.join(OUT, 'results.json'), JSON.stringify(measured, null, 2));
  });

  it('bundles no Node-only module into the page', async () => {
    // Vite replaces a Node built-in it meets in browser code with a stub and says so.
    expect(buildLog).not.toMatch(/externalized for browser compatibility/);
    const assets = path.join(DEMO, 'dist/assets');
    for (const file of (await readdir(assets)).filter((name) => name.endsWith('.js'))) {
      const code = await readFile(path.join(assets, file), 'utf8');
      expect(code, file).not.toMatch(/__vite-browser-external|["']node:[a-z_/]+["']/);
    }
    expect((await readdir(path.join(DEMO, 'dist/wasm'))).filter((name) => name.endsWith('.wasm')).length).toBeGreaterThan(0);
  });

  it('distils on wasm, with kd-ts training kernels, and saves the student to IndexedDB', async () => {
    const { page, run } = await runDemo('wasm', 3);
    measured.wasm = summary(run);
    expectLearned(run, 3);
    expect(run.report?.additions).toContain('_FusedMatMul (fast)');

    await page.click('#save-indexeddb');
    await page.waitForFunction(() => document.body.dataset.saved !== undefined, null, { timeout: 30_000 });
    const report = await page.evaluate(() => window.__kdResult);
    expect(report?.saved).toMatchObject({ url: 'indexeddb://kd-ts-demo-student', samePredictions: true });
    expect(report?.saved?.bytes).toBe(STUDENT_FLOAT_BYTES);

    // The downloads: tfjs's downloads:// handler saves model.json and the weights file, each button its pair.
    const float = await downloadsOf(page, '#save-download');
    expect(float['kd-ts-student.weights.bin']!.byteLength).toBe(STUDENT_FLOAT_BYTES);
    const files = await downloadsOf(page, '#save-download-uint8');
    const modelJson = JSON.parse(files['kd-ts-student-uint8.json']!.toString('utf8')) as { weightsManifest: { weights: { name: string; quantization?: { dtype: string } }[] }[] };
    const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
    expect(specs.some((w) => w.quantization?.dtype === 'uint8')).toBe(true);
    expect(files['kd-ts-student-uint8.weights.bin']!.byteLength).toBeLessThan(0.3 * STUDENT_FLOAT_BYTES);
    expect(await pageErrors(page)).toEqual([]);
    await page.close();
  });

  it('distils on cpu', async () => {
    const { page, run } = await runDemo('cpu', 1);
    measured.cpu = summary(run);
    expectLearned(run, 1);
    await page.close();
  });

  it('distils on webgl when the browser gives it a context (SwiftShader without a GPU)', async (context) => {
    const { page, run } = await runDemo('webgl', 1);
    await page.close();
    if (run.status === 'unavailable') {
      measured.webgl = { unavailable: run.report?.unavailable };
      context.skip(`webgl did not start in this Chromium: ${run.report?.unavailable}`);
    }
    measured.webgl = summary(run);
    expectLearned(run, 1);
  });

  /** Clicks a download button and returns the two files it downloads, by suggested name. */
  async function downloadsOf(page: Page, button: string): Promise<Record<string, Buffer>> {
    const downloads: Download[] = [];
    const collect = (download: Download) => void downloads.push(download);
    page.on('download', collect);
    await page.click(button);
    await expect.poll(() => downloads.length, { timeout: 30_000 }).toBe(2);
    page.off('download', collect);
    return Object.fromEntries(await Promise.all(downloads.map(async (d) => [d.suggestedFilename(), await readFile((await d.path())!)] as const)));
  }

  /** Opens the page with `?auto=1`, waits until the run ends, and takes a screenshot. */
  async function runDemo(backend: string, epochs: number): Promise<{ page: Page; run: PageRun }> {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    const warnings: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console.error: ${message.text()}`);
      if (message.type() === 'warning') warnings.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    const started = performance.now();
    await page.goto(`${server.url}?backend=${backend}&epochs=${epochs}&auto=1`);
    await page.waitForFunction(() => ['done', 'error', 'unavailable'].includes(document.body.dataset.status ?? ''), null, {
      timeout: 170_000,
      polling: 250,
    });
    const wallSeconds = (performance.now() - started) / 1000;
    await page.screenshot({ path: path.join(OUT, `demo-${backend}.png`), fullPage: true });
    const status = await page.evaluate(() => document.body.dataset.status);
    const report = await page.evaluate(() => window.__kdResult);
    errors.push(...(await pageErrors(page)));
    return { page, run: { report, status, errors: [...new Set(errors)], warnings, wallSeconds } };
  }
});

/** Errors the page recorded itself (window error and unhandledrejection events, failed runs). */
function pageErrors(page: Page): Promise<string[]> {
  return page.evaluate(() => window.__kdErrors);
}

/** The student trained in the page, far above chance (10 %), leaked nothing, and nothing logged an error. */
function expectLearned(run: PageRun, epochs: number): void {
  expect(run.errors).toEqual([]);
  expect(run.status).toBe('done');
  const report = run.report!;
  const rows = Object.fromEntries(report.rows!.map((row) => [row.series, row]));
  expect(rows.teacher!.accuracy).toBeGreaterThan(0.9);
  expect(rows.distilled!.accuracy).toBeGreaterThanOrEqual(0.7);
  expect(rows.distilled!.agreement).toBeGreaterThanOrEqual(0.7);
  expect(rows.scratch!.accuracy).toBeGreaterThanOrEqual(0.7);
  expect(rows.distilled!.parameters).toBe(25_450);
  // Before training (epoch 0) both students sit near chance, from the same weights.
  expect(report.curves!.distilled).toHaveLength(epochs + 1);
  expect(report.curves!.distilled[0]).toBe(report.curves!.scratch[0]);
  expect(report.curves!.distilled[0]).toBeLessThan(0.4);
  expect(report.soft).toHaveLength(6);
  for (const example of report.soft!) expect(example.teacher.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
  expect(report.leakedTensors).toBe(0);
}

function summary(run: PageRun): Record<string, unknown> {
  return {
    backend: run.report?.backend,
    status: run.status,
    pageSeconds: run.report?.seconds,
    wallSeconds: run.wallSeconds,
    epochs: run.report?.settings?.epochs,
    rows: run.report?.rows,
    warnings: run.warnings.length,
    userAgent: run.report?.userAgent,
  };
}
