import { defineConfig } from 'vitest/config';

// The opt-in SST-2 suite: checks on the real GLUE files (KD_SST2_DIR, default
// ../shared/data/sst2), skipped when they are absent. `npm run test:sst2`.
export default defineConfig({
  test: {
    include: ['test/sst2/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    typecheck: { enabled: false },
  },
});
