import { defineConfig } from 'vitest/config';

// The opt-in transformers.js suite: examples/onnx-teacher/test, which needs
// that example's own package (`npm ci --prefix examples/onnx-teacher`).
// `npm run test:transformers`; .ci/run installs the package and runs it.
export default defineConfig({
  test: {
    include: ['examples/onnx-teacher/test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
    typecheck: { enabled: false },
  },
});
