import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration and e2e tests start real processes and real clients; running files in parallel
    // on a 2-core machine only makes them flaky, so files run one after another.
    fileParallelism: false,
  },
});
