/**
 * Where the time of a medical-answers `search` goes: wall and CPU time per query, per phase and per
 * database statement, on the dev set's questions, and (with --explain) the plans of one question's
 * statements. A bench: it prints figures and asserts nothing.
 *
 *   npx tsx eval/search-timing.ts [--data-dir DIR] [--rounds N] [--lexical] [--explain N] [--dump FILE] [--profile FILE] [--profile-first FILE] [--store FILE] [--corpus FILE] [--questions FILE]
 *
 * --data-dir keeps the embedded database between runs (the corpus is ingested once; later runs find it
 * unchanged); without it a temporary directory is used. CPU time is the whole process's
 * (process.cpuUsage: user + system), which includes the embedded database (PGlite runs in-process);
 * on shared cores it is steadier than wall time. Memory is printed after ingest, after the tenant's
 * cache is loaded, and at the end (after a collection when run as `node --expose-gc --import tsx
 * eval/search-timing.ts ...`). --store FILE runs another version of store.ts (a copy placed beside it
 * in plugins/medical-answers/engine/, so its imports resolve), to compare two versions run by run.
 * --dump writes every question's hits (ids, scores, ranks, texts, sections) as JSON lines, to check
 * that a change to the search leaves its results as they were.
 */
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type pg from 'pg';
import { openDatabase } from '../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../core/storage/migrations.js';
import { MedicalStore as CurrentStore } from '../plugins/medical-answers/engine/store.js';
import type { CorpusDoc } from '../plugins/medical-answers/engine/types.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const dataFile = (name: string) => fileURLToPath(new URL(`../corpora/medquad/${name}`, import.meta.url));

interface Question {
  id: string;
  question: string;
  origin: 'medquad_template' | 'handwritten_paraphrase';
}

async function* readCorpus(path: string): AsyncIterable<CorpusDoc> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim()) yield JSON.parse(line) as CorpusDoc;
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;
const memory = () => {
  const m = process.memoryUsage();
  return `rss ${mb(m.rss)}, heap used ${mb(m.heapUsed)}, external ${mb(m.external)}, array buffers ${mb(m.arrayBuffers)}`;
};
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Statement timings: the pool's query wrapped, keyed by the statement's name or first words. */
interface Statement {
  key: string;
  text: string;
  values: unknown[] | undefined;
  ms: number;
}
function instrument(pool: pg.Pool): { take(): Statement[] } {
  let log: Statement[] = [];
  const original = pool.query.bind(pool) as (...a: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...a: unknown[]) => Promise<unknown> }).query = async (...a: unknown[]) => {
    const s = a[0] as string | { name?: string; text: string; values?: unknown[] };
    const text = typeof s === 'string' ? s : s.text;
    const values = typeof s === 'string' ? (a[1] as unknown[] | undefined) : s.values;
    const key = (typeof s !== 'string' && s.name) || text.replace(/\s+/g, ' ').slice(0, 60);
    const t0 = performance.now();
    try {
      return await original(...a);
    } finally {
      log.push({ key: key.replace(/-[0-9a-f]{10}-\d+$/, ''), text, values, ms: performance.now() - t0 });
    }
  };
  return {
    take() {
      const out = log;
      log = [];
      return out;
    },
  };
}

/** A V8 CPU profile (open it in Chrome's DevTools) of what runs until `stop`, written to `file`; nothing without a file. */
async function profiler(file: string | undefined): Promise<{ stop(): Promise<void> }> {
  if (!file) return { stop: async () => undefined };
  const session = new Session();
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))));
  session.connect();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return {
    async stop() {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function main(): Promise<void> {
  const corpusPath = arg('--corpus') ?? dataFile('corpus.jsonl');
  const questionsPath = arg('--questions') ?? dataFile('dev_eval.jsonl');
  const rounds = Number(arg('--rounds') ?? 3);
  const explain = Number(arg('--explain') ?? 0);
  const keep = arg('--data-dir');
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'medical-timing-'));
  if (keep && !existsSync(keep)) mkdirSync(keep, { recursive: true });
  const log = pino({ level: 'warn' });
  const db = await openDatabase({ dataDir: dir, poolSize: 4, log });
  try {
    await ensureMigrationTable(db.pool);
    await applyMigrations(db.pool, 'medical-answers', CurrentStore.migrations());
    // --store FILE: another version of store.ts (a copy beside it in the engine folder), to compare.
    const other = arg('--store');
    const MedicalStore = other ? ((await import(pathToFileURL(resolve(other)).href)) as { MedicalStore: typeof CurrentStore }).MedicalStore : CurrentStore;
    const store = new MedicalStore(db.pool, { log });
    const mode = await store.init(process.argv.includes('--lexical') ? { vector: false } : {});
    const ingest = await store.ingest('eval', readCorpus(corpusPath));
    console.log(`mode ${mode.mode}; ingest ${ingest.added} added, ${ingest.unchanged} unchanged, ${ingest.chunks} chunks in ${(ingest.ms / 1000).toFixed(1)} s`);
    global.gc?.();
    console.log(`memory after ingest: ${memory()}`);
    const statements = instrument(db.pool);
    await store.search('eval', 'warm up query about diabetes', { k: 10 });
    global.gc?.();
    console.log(`memory after the cache is loaded: ${memory()}`);
    statements.take();

    const questions = readFileSync(questionsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Question);
    interface Sample {
      origin: Question['origin'];
      ms: number;
      cpu: number;
      phases: Record<string, number>;
      statements: Statement[];
    }
    const samples: Sample[] = [];
    // A first round that is not counted: every pool connection prepares its named statements.
    // Its figures are printed too: the eval times this round (the first searches after an ingest).
    const dumped: string[] = [];
    const firstProfile = await profiler(arg('--profile-first'));
    const cold: { origin: Question['origin']; ms: number; cpu: number }[] = [];
    for (const q of questions) {
      const c0 = cpuNow();
      const t0 = performance.now();
      const hits = await store.search('eval', q.question, { k: 10 });
      cold.push({ origin: q.origin, ms: performance.now() - t0, cpu: cpuNow() - c0 });
      dumped.push(JSON.stringify({ id: q.id, hits }));
    }
    await firstProfile.stop();
    for (const [name, origin] of [['templated', 'medquad_template'], ['hand-written', 'handwritten_paraphrase']] as const) {
      const s = cold.filter((x) => x.origin === origin);
      console.log(`first round, ${name}: wall p50 ${pct(s.map((x) => x.ms), 50).toFixed(2)} / p95 ${pct(s.map((x) => x.ms), 95).toFixed(2)} ms, cpu mean ${mean(s.map((x) => x.cpu)).toFixed(2)} ms`);
    }
    const dump = arg('--dump');
    if (dump) writeFileSync(dump, `${dumped.join('\n')}\n`);
    statements.take();
    const profile = await profiler(arg('--profile'));
    const cpuStart = cpuNow();
    const wallStart = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (const q of questions) {
        const phases: Record<string, number> = {};
        const c0 = cpuNow();
        const t0 = performance.now();
        await store.search('eval', q.question, { k: 10, timings: phases });
        const ms = performance.now() - t0;
        samples.push({ origin: q.origin, ms, cpu: cpuNow() - c0, phases, statements: statements.take() });
      }
    }
    const wall = performance.now() - wallStart;
    const cpu = cpuNow() - cpuStart;
    await profile.stop();
    console.log(`\n${samples.length} searches (${rounds} rounds of ${questions.length}): process CPU ${(cpu / samples.length).toFixed(2)} ms per search, wall ${(wall / samples.length).toFixed(2)} ms`);
    console.log('subset        |   n | wall p50 | wall p95 | cpu mean | cpu p50 | cpu p95 | statements per search');
    for (const [name, origin] of [['templated', 'medquad_template'], ['hand-written', 'handwritten_paraphrase']] as const) {
      const s = samples.filter((x) => x.origin === origin);
      const f = (x: number) => x.toFixed(2).padStart(8);
      console.log(`${name.padEnd(13)} | ${String(s.length).padStart(3)} | ${f(pct(s.map((x) => x.ms), 50))} | ${f(pct(s.map((x) => x.ms), 95))} | ${f(mean(s.map((x) => x.cpu)))} | ${f(pct(s.map((x) => x.cpu), 50))}| ${f(pct(s.map((x) => x.cpu), 95))}| ${mean(s.map((x) => x.statements.length)).toFixed(1)}`);
      const phaseNames = [...new Set(s.flatMap((x) => Object.keys(x.phases)))];
      console.log(`  phases (ms, mean / p95): ${phaseNames.map((p) => `${p} ${mean(s.map((x) => x.phases[p] ?? 0)).toFixed(2)} / ${pct(s.map((x) => x.phases[p] ?? 0), 95).toFixed(2)}`).join(', ')}`);
      const keys = [...new Set(s.flatMap((x) => x.statements.map((st) => st.key)))];
      for (const key of keys) {
        const ms = s.flatMap((x) => x.statements.filter((st) => st.key === key).map((st) => st.ms));
        console.log(`  statement ${key}: n ${ms.length}, mean ${mean(ms).toFixed(2)} ms, p50 ${pct(ms, 50).toFixed(2)}, p95 ${pct(ms, 95).toFixed(2)}`);
      }
    }
    // Whether the named statements run generic plans (planned once) or are planned at every execution.
    const { rows: prepared } = await db.pool.query<{ name: string; generic_plans: string; custom_plans: string }>(
      "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE '%medical-answers%' ORDER BY name",
    );
    console.log(`prepared statements (generic / custom plans): ${prepared.map((p) => `${p.name} ${p.generic_plans} / ${p.custom_plans}`).join(', ')}`);
    global.gc?.();
    console.log(`memory at the end: ${memory()}`);
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    if (explain > 0) {
      // The slowest hand-written questions' statements, as EXPLAIN ANALYZE (run unnamed, same values).
      const slow = [...samples.slice(0, questions.length)].map((s, i) => ({ s, q: questions[i]! })).filter((x) => x.q.origin === 'handwritten_paraphrase').sort((a, b) => b.s.ms - a.s.ms).slice(0, explain);
      for (const { q } of slow) {
        await store.search('eval', q.question, { k: 10 });
        console.log(`\n=== "${q.question}"`);
        for (const st of statements.take()) {
          const { rows } = await db.pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${st.text}`, st.values);
          console.log(`--- ${st.key}\n${rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n')}`);
        }
        statements.take();
      }
    }
  } finally {
    await db.close();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
