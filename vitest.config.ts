import { defineConfig } from 'vitest/config';

// Each test file boots its own gateway (embedded PGlite or the external PostgreSQL/Redis chosen by
// PARLEY_TEST_BACKEND), so files run in separate forks and individual tests get generous timeouts.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'data/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
