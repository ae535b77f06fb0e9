/**
 * End to end: checkpoints in IndexedDB survive a page reload, and the
 * resumed run ends exactly where an uninterrupted one does. The page
 * (test/browser/checkpoint-page) distils a tiny student with dropout and
 * Adam on the cpu backend with a seed; it is reloaded in the middle of the
 * run, resumes from the store, and its final weights and History are
 * compared bit for bit with a run that was never interrupted.
 *
 * Run: `npm run test:browser` (needs /usr/bin/chromium:
 * `bash scripts/ensure-chromium.sh`). The page imports kd-ts's sources, so
 * it needs no `npm run build`.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointPageReport } from './checkpoint-page/main.js';
import type {} from './checkpoint-page/storeMode.js';
import { launchChromium, serveStatic, type HeadlessChromium, type StaticServer } from './harness.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const PAGE = path.join(REPO, 'test/browser/checkpoint-page');
const BUILT = path.join(REPO, '.tmp/browser/checkpoint-page');
/** The page's run: 60 steps (4 epochs of 15), a checkpoint every 4 steps. */
const STEPS = 60;
/** Uncaught errors of any page, checked when a run ends. */
const pageErrors: string[] = [];

describe('checkpoints in IndexedDB across a page reload (headless Chromium, cpu backend)', () => {
  let server: StaticServer;
  let browser: HeadlessChromium;
  let reference: CheckpointPageReport;
  const measured: Record<string, unknown> = {};

  beforeAll(async () => {
    const vite = path.join(REPO, 'node_modules/.bin/vite');
    await promisify(execFile)(vite, ['build', PAGE], { cwd: REPO, maxBuffer: 16 << 20 });
    server = await serveStatic(BUILT);
    browser = await launchChromium();
    const page = await open('?mode=reference');
    reference = await finished(page);
    await page.close();
    expect(reference.stepsThisLoad).toBe(STEPS);
    expect(reference.history?.loss).toHaveLength(4);
  });

  afterAll(async () => {
    console.info(`checkpoint e2e: ${JSON.stringify(measured)}`);
    await browser?.close();
    await server?.close();
  });

  it('the store in real IndexedDB: a reload during a large write leaves the older record intact, and the new one whole or absent', async () => {
    const page = await open('?mode=store&phase=write');
    await page.waitForFunction(() => ['writing', 'error'].includes(document.body.dataset.status ?? ''), null, { timeout: 60_000, polling: 10 });
    await page.goto(`${server.url}?mode=store&phase=check`); // a reload, to the checking phase
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), null, { timeout: 60_000, polling: 100 });
    const report = await page.evaluate(() => window.__kdStore);
    await page.close();
    expect(report?.error).toBeUndefined();
    expect(report?.readErrors).toEqual({});
    expect(report?.records?.[0]).toEqual({ name: 'step-000000001', bytes: 1 << 16, intact: true });
    // The large write was cut off (absent) or had committed (whole): never partial.
    for (const record of report!.records!.slice(1)) expect(record).toEqual({ name: 'step-000000002', bytes: 48 << 20, intact: true });
    measured.largeWriteSurvivedReload = report!.records!.length === 2;
    expect(report?.missing).toEqual({ kdDataError: true, code: 'CHECKPOINT_CORRUPT' });
    expect(pageErrors).toEqual([]);
  });

  it('a run stopped mid-epoch and reloaded resumes from IndexedDB and ends bit for bit as the uninterrupted run', async () => {
    // Step 22: epoch 2, batch 7; the newest checkpoint is at step 20, so steps 21 and 22 are trained again.
    const page = await open('?run=mid-epoch&interruptAt=22');
    await page.waitForFunction(() => document.body.dataset.status === 'interrupted', null, { timeout: 60_000, polling: 50 });
    await page.reload();
    const resumed = await finished(page);
    await page.close();

    expect(resumed.resumedFrom).toBeDefined();
    expect(resumed.stepsThisLoad).toBeLessThan(STEPS);
    expect(resumed.stepsThisLoad).toBeGreaterThanOrEqual(STEPS - 22);
    expect(resumed.weights).toEqual(reference.weights);
    expect(resumed.history).toEqual(reference.history);
    expect(resumed.checkpoints?.length).toBeGreaterThan(0);
    measured.midEpoch = { resumedFrom: resumed.resumedFrom, stepsAfterReload: resumed.stepsThisLoad };
  });

  it('a reload at an arbitrary moment (perhaps mid-write) still resumes to the same weights', async () => {
    // 30 ms a step: the run takes ~2 s; the reload lands wherever the page is, a checkpoint write included.
    const page = await open('?run=arbitrary&delayMs=30');
    await page.waitForFunction(() => Number(document.body.dataset.step ?? 0) >= 25, null, { timeout: 60_000, polling: 10 });
    await page.reload();
    const resumed = await finished(page);
    await page.close();

    expect(resumed.resumedFrom).toBeDefined();
    expect(resumed.stepsThisLoad).toBeLessThan(STEPS);
    expect(resumed.weights).toEqual(reference.weights);
    expect(resumed.history).toEqual(reference.history);
    measured.arbitrary = { resumedFrom: resumed.resumedFrom, stepsAfterReload: resumed.stepsThisLoad };
  });

  it('a finished run, loaded again, returns its History without training', async () => {
    const page = await open('?run=mid-epoch');
    const again = await finished(page);
    await page.close();
    expect(again.stepsThisLoad).toBe(0);
    expect(again.weights).toEqual(reference.weights);
    expect(again.history).toEqual(reference.history);
  });

  /** Opens the page and fails the test on any page error. */
  async function open(query: string): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${query}: ${error.message}`));
    await page.goto(`${server.url}${query}`);
    return page;
  }
});

/** Waits for the run to end and returns the page's report (failing on a page-side error). */
async function finished(page: Page): Promise<CheckpointPageReport> {
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), null, { timeout: 120_000, polling: 100 });
  const report = await page.evaluate(() => window.__kdCheckpoint);
  expect(report?.error).toBeUndefined();
  expect(pageErrors).toEqual([]);
  return report!;
}
