/**
 * examples/ops: what can be checked on a machine without Docker. The Prometheus rules pass
 * `promtool check rules` and their unit tests (the seeds' thresholds fire, and only them); every
 * `parley_` metric the rules and the Grafana dashboard read is one the code registers; the Compose
 * file gives Parley only variables its configuration or the kernel reads, every one the configuration
 * requires, and one PostgreSQL (pgvector) and one Redis shared by both instances; the Dockerfile runs
 * the entry point `npm run build` emits, as a user that is not root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startNodeFlags } from '../bench/node-flags.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OPS = join(ROOT, 'examples/ops');
const read = (path: string) => readFileSync(join(OPS, path), 'utf8');
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
// Under CI the tool must be there (.ci/run installs Debian's prometheus); elsewhere its absence skips, loudly.
if (!PROMTOOL && process.env.CI !== 'true') console.warn('[example-ops] promtool not found: the promtool checks are skipped (apt-get install prometheus)');

/** Every metric name the code registers (`name: 'parley_...'`), with prom-client's default metrics under the same prefix. */
function registeredMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts') && !path.endsWith('.test.ts')) for (const m of readFileSync(path, 'utf8').matchAll(/name: '(parley_[a-z0-9_]+)'/g)) names.add(m[1]!);
    }
  };
  for (const area of ['core', 'channels', 'plugins']) walk(join(ROOT, area));
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'parley_' });
  for (const m of registry.getMetricsAsArray()) names.add(m.name);
  return names;
}

/** `parley_` series an expression reads, with histogram suffixes taken back to the metric. */
const metricsIn = (text: string) => [...new Set([...text.matchAll(/\b(parley_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')))];

describe.skipIf(!PROMTOOL && process.env.CI !== 'true')('examples/ops Prometheus files, checked by promtool', () => {
  const promtool = (...args: string[]) => spawnSync(PROMTOOL ?? 'promtool', args, { cwd: OPS, encoding: 'utf8', timeout: 60_000 });

  it('the alert rules pass `promtool check rules`', () => {
    const r = promtool('check', 'rules', 'prometheus-rules.yml');
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it("the seeds' thresholds fire where they should and nowhere else (`promtool test rules`)", () => {
    const r = promtool('test', 'rules', 'prometheus-rules.test.yml');
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });

  it('the scrape configuration passes `promtool check config`', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-ops-'));
    try {
      for (const f of ['prometheus.yml', 'prometheus-rules.yml']) copyFileSync(join(OPS, f), join(dir, f));
      writeFileSync(join(dir, 'parley-metrics-token'), 'a-metrics-token-for-the-check\n');
      const r = spawnSync(PROMTOOL ?? 'promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stdout + r.stderr).toMatch(/is valid prometheus config file syntax/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('examples/ops metrics', () => {
  const known = registeredMetrics();

  it('the rules and the dashboard read only metrics Parley registers', () => {
    expect(known.size).toBeGreaterThan(80);
    const rules = metricsIn(read('prometheus-rules.yml'));
    const dashboard = metricsIn(read('grafana-dashboard.json'));
    expect(rules.length).toBeGreaterThan(15);
    expect(dashboard.length).toBeGreaterThan(25);
    expect([...rules, ...dashboard].filter((m) => !known.has(m))).toEqual([]);
  });

  it('the dashboard is Grafana JSON with a query on every panel and a tenant variable', () => {
    const dash = JSON.parse(read('grafana-dashboard.json')) as { uid: string; panels: { type: string; id: number; targets?: { expr: string }[] }[]; templating: { list: { name: string }[] } };
    expect(dash.uid).toBe('parley-overview');
    const panels = dash.panels.filter((p) => p.type !== 'row');
    expect(panels.every((p) => (p.targets ?? []).length > 0 && p.targets!.every((t) => t.expr.includes('parley_')))).toBe(true);
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'tenant']);
  });
});

describe('examples/ops Docker Compose (the scale-out shape)', () => {
  type Service = { image?: string; command?: string[]; environment?: Record<string, string>; volumes?: string[]; build?: { context: string; dockerfile: string } };
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
  const parleys = Object.entries(compose.services).filter(([name]) => name.startsWith('parley-'));
  const [, first] = parleys[0]!;
  const mount = first.volumes!.find((v) => v.endsWith(':/etc/parley:ro'))!.split(':')[0]!;
  const configFile = resolve(OPS, mount, 'parley.yaml');
  const configText = readFileSync(configFile, 'utf8');
  const configVars = new Set([...configText.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
  /** Read by the kernel or the CLI whatever the file says (core/boot.ts applyEnvOverrides, PARLEY_BACKUP_KEY, the operations commands). */
  const kernelVars = new Set(['PORT', 'PARLEY_DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'LOG_LEVEL', 'PARLEY_BACKUP_KEY', 'PARLEY_OPERATOR_KEY', 'NODE_ENV']);

  it('runs two Parley instances from the same image, command and environment', () => {
    expect(parleys.map(([name]) => name)).toEqual(['parley-1', 'parley-2']);
    const [, second] = parleys[1]!;
    expect(second.environment).toEqual(first.environment);
    expect(second.command).toEqual(first.command);
    expect(first.command).toEqual(['node', 'dist/bin/parley.js', 'start', '--config', '/etc/parley/parley.yaml']);
    expect(first.build).toEqual({ context: '../..', dockerfile: 'examples/ops/Dockerfile' });
    expect(existsSync(configFile)).toBe(true);
  });

  it('gives Parley only variables the mounted configuration or the kernel reads', () => {
    const given = Object.keys(first.environment!);
    expect(given.filter((v) => !configVars.has(v) && !kernelVars.has(v))).toEqual([]);
  });

  it('gives Parley every variable the configuration requires and the listen address a container needs', () => {
    const required = [...configText.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!);
    expect(required.filter((v) => !(v in first.environment!))).toEqual([]);
    expect(first.environment!['PARLEY_HOST']).toBe('0.0.0.0');
    expect(configText).toMatch(/host: \$\{PARLEY_HOST:-/);
    expect(first.environment!['PORT']).toBe('3000');
  });

  it('points both instances at the one PostgreSQL (with pgvector) and the one Redis it defines', () => {
    const env = first.environment!;
    const db = new URL(env['DATABASE_URL']!.replace(/\$\{[^}]+\}/, 'secret'));
    const pg = compose.services[db.hostname]!;
    expect(pg.image).toMatch(/^pgvector\/pgvector:pg1[4-9]/);
    expect({ user: db.username, db: db.pathname.slice(1) }).toEqual({ user: pg.environment!['POSTGRES_USER'], db: pg.environment!['POSTGRES_DB'] });
    const redis = new URL(env['REDIS_URL']!);
    expect(compose.services[redis.hostname]!.image).toMatch(/^redis:7/);
    expect(compose.services[redis.hostname]!.command).toEqual(expect.arrayContaining(['--maxmemory-policy', 'noeviction']));
  });

  it('.env.example lists every variable Compose requires', () => {
    const required = [...read('docker-compose.yml').matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((m) => m[1]!);
    const listed = new Set([...read('.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]!));
    expect(required.length).toBeGreaterThan(3);
    expect(required.filter((v) => !listed.has(v))).toEqual([]);
  });
});

describe('examples/ops Dockerfile', () => {
  const lines = read('Dockerfile').split('\n').filter((l) => l && !l.startsWith('#'));
  const stages = lines.map((l, i) => (l.startsWith('FROM ') ? i : -1)).filter((i) => i >= 0);
  const final = lines.slice(stages.at(-1));

  it("runs the entry point `npm run build` emits, with `npm start`'s node options, as `npm start` and the `parley` command do", () => {
    const cmd = JSON.parse(final.find((l) => l.startsWith('CMD '))!.slice(4)) as string[];
    const flags = startNodeFlags(ROOT);
    expect(flags).toEqual(['--v8-pool-size=1', '--heap-growing-percent=50']);
    expect(cmd).toEqual(['node', ...flags, 'dist/bin/parley.js', 'start']);
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { compilerOptions: { outDir: string; rootDir: string }; include: string[] };
    expect(build.include).toContain('bin/parley.ts');
    expect(`${build.compilerOptions.outDir}/bin/parley.js`).toBe(cmd.at(-2));
    expect(build.compilerOptions.rootDir).toBe('.');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toContain(`node ${cmd.slice(1).join(' ')}`);
    // `npx parley start` runs bin/parley.js through its first line.
    expect(readFileSync(join(ROOT, 'bin/parley.js'), 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags.join(' ')}`);
    expect(lines.slice(0, stages.at(-1)).some((l) => /^RUN npm run build\b/.test(l))).toBe(true);
  });

  it('switches to a user that is not root before running, and copies only files that exist', () => {
    const user = final.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBeDefined();
    expect(user!.slice(5).trim()).not.toMatch(/^(root|0)(:|$)/);
    expect(final.findIndex((l) => l.startsWith('USER '))).toBeLessThan(final.findIndex((l) => l.startsWith('CMD ')));
    const sources = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.slice(5).trim().split(/\s+/).slice(0, -1));
    expect(sources.filter((s) => !existsSync(join(ROOT, s)))).toEqual([]);
  });

  it('CI installs promtool (Debian prometheus) so the rule checks run there', () => {
    expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/apt-get install -y --no-install-recommends prometheus/);
  });
});
