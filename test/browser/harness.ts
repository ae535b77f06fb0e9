/**
 * What the browser end-to-end test needs around the page: a static server on
 * 127.0.0.1 for the built demo, and Debian's Chromium started headless
 * through playwright-core (never a downloaded browser).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser (scripts/ensure-chromium.sh installs it). */
export const CHROMIUM = process.env.KD_CHROMIUM ?? '/usr/bin/chromium';

/** A running static server. */
export interface StaticServer {
  /** `http://127.0.0.1:PORT/`. */
  url: string;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  // The wasm backend compiles with WebAssembly.instantiateStreaming, which requires this type.
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.map': 'application/json',
};

/**
 * Serves a folder on 127.0.0.1 at a free port (GET only, no listing).
 *
 * @param root - The folder (the demo's `vite build` output).
 * @returns Its URL and a close function.
 */
export async function serveStatic(root: string): Promise<StaticServer> {
  const server: Server = createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const file = path.join(root, pathname.endsWith('/') ? `${pathname}index.html` : pathname);
    if (!file.startsWith(root + path.sep) || request.method !== 'GET') {
      response.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => response.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream' }).end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the static server has no port');
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/** A headless Chromium with a throw-away profile. */
export interface HeadlessChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts `/usr/bin/chromium` headless with a fresh profile directory. The
 * flags keep it off the network (no updates, sync or field trials) and let
 * WebGL fall back to SwiftShader, the CPU renderer, when there is no GPU.
 *
 * @returns The browser context and a close function that removes the profile.
 */
export async function launchChromium(): Promise<HeadlessChromium> {
  const profile = await mkdtemp(path.join(tmpdir(), 'kd-ts-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 1400 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-default-apps',
      '--disable-extensions',
      '--disable-dev-shm-usage',
      '--enable-unsafe-swiftshader',
      '--use-angle=swiftshader',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
