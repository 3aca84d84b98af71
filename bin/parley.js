#!/usr/bin/env -S node --v8-pool-size=1 --heap-growing-percent=50
// Entry point for the `parley` command. Runs the compiled CLI (dist/) when it is current: always in an
// installed copy, and in a source checkout once `npm run build` (or `npm start`) has built it. A checkout
// whose dist/ is missing or older than the sources runs the TypeScript directly through tsx instead, so
// the command never runs stale code.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('./parley.ts', import.meta.url);
if (!existsSync(source) || (await import('./build.js')).isBuildCurrent()) {
  await import('../dist/bin/parley.js');
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  await import('./parley.ts');
}
