import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Each test file boots its own gateway (embedded PGlite or the external PostgreSQL/Redis chosen by
// PARLEY_TEST_BACKEND), so files run in separate forks and individual tests get generous timeouts.
export default defineConfig({
  resolve: {
    // The same mapping as tsconfig.json "paths": plugins import `parley`, which is the source here.
    alias: [
      { find: /^parley$/, replacement: here('./core/public.ts') },
      { find: /^parley\/testing$/, replacement: here('./test/harness.ts') },
      { find: /^parley\/client$/, replacement: here('./core/client.ts') },
    ],
  },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'data/**', 'dist/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
