import { defineConfig } from 'vitest/config';

// The browser end-to-end test (npm run test:browser): builds the demo in
// examples/browser, serves it on 127.0.0.1 and drives Debian's Chromium
// headless. Kept out of `npm test`, whose config includes test/**/*.test.ts only.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.e2e.ts'],
    // The vite build (and, on a fresh clone, the teacher's training) runs in beforeAll.
    hookTimeout: 240_000,
    testTimeout: 180_000,
    // One browser, one test at a time: the runs share 2 cores.
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    typecheck: { enabled: false },
  },
});
