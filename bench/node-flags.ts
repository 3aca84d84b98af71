/**
 * The node options the gateway runs with: those `npm start` passes (package.json's start script, the
 * one place they are written; the Dockerfile and the `parley` command repeat them, and
 * test/example-ops.test.ts checks they agree), then `BENCH_NODE_FLAGS`. So the bench measures the
 * default, and a flag under trial goes after it (a later `--v8-pool-size` overrides the start script's).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function startNodeFlags(root: string): string[] {
  const start = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start']!;
  const m = /\bnode((?:\s+--\S+)*)\s+dist\/bin\/parley\.js start\b/.exec(start);
  if (!m) throw new Error(`package.json's start script does not run dist/bin/parley.js start: ${start}`);
  return m[1]!.split(/\s+/).filter(Boolean);
}

export function gatewayNodeFlags(root: string): string[] {
  return [...startNodeFlags(root), ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)];
}
