/**
 * End to end: the browser demo (examples/browser) resumes its distillation
 * after a reload. The page checkpoints the distilled student to IndexedDB at
 * every epoch end; reloaded in the middle of the distillation, it says so in
 * a notice, resumes from the newest checkpoint, and finishes with a student
 * that learned. Needs `npm run build` (the demo imports the built package).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, serveStatic, type HeadlessChromium, type StaticServer } from './harness.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DEMO = path.join(REPO, 'examples/browser');

describe('browser demo: resume after a reload (headless Chromium, wasm)', () => {
  let server: StaticServer;
  let browser: HeadlessChromium;

  beforeAll(async () => {
    const vite = path.join(REPO, 'node_modules/.bin/vite');
    await promisify(execFile)(vite, ['build', DEMO], { cwd: REPO, maxBuffer: 16 << 20 });
    server = await serveStatic(path.join(DEMO, 'dist'));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a reload during the distillation shows a notice, resumes from IndexedDB and finishes', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${server.url}?backend=wasm&epochs=4&auto=1`);
    // Two distillation epochs done (their accuracies noted): the checkpoint of the first is surely written.
    await page.waitForFunction(
      () => ((JSON.parse(localStorage.getItem('kd-ts-demo-pending-run') ?? '{"points":[]}') as { points: unknown[] }).points.length >= 3),
      null,
      { timeout: 150_000, polling: 100 },
    );
    await page.reload();
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), null, { timeout: 150_000, polling: 250 });
    const report = await page.evaluate(() => window.__kdResult);
    const notice = await page.textContent('#resume-info');
    const pending = await page.evaluate(() => localStorage.getItem('kd-ts-demo-pending-run'));
    const pageErrors = await page.evaluate(() => window.__kdErrors);
    await page.close();

    expect([...errors, ...pageErrors]).toEqual([]);
    expect(report?.resumedFrom).toMatch(/^(epoch|step)-/);
    expect(notice).toMatch(/Resumed from checkpoint/);
    expect(pending).toBeNull(); // the run finished: nothing left to resume
    const distilled = report!.rows!.find((row) => row.series === 'distilled')!;
    expect(distilled.accuracy).toBeGreaterThanOrEqual(0.7);
    // The chart keeps the epochs done before the reload.
    expect(report!.curves!.distilled.filter((value) => typeof value === 'number')).toHaveLength(5);
  });
});
