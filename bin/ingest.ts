/**
 * `parley ingest --tenant <id> PATH`: loads a corpus into a tenant's medical-answers library with a
 * progress bar (rate, ETA). It opens the deployment's database itself and applies the plugin's
 * migrations, so it works before the first start; Ctrl-C interrupts cleanly and the next run resumes.
 */
import { pathToFileURL } from 'node:url';
import { dirname, isAbsolute, resolve } from 'node:path';
import { builtinPlugins } from '../config/builtins.js';
import { applyEnvOverrides } from '../core/boot.js';
import { loadConfigFile } from '../core/config.js';
import { ParleyError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { Registry } from 'prom-client';
import { Ai } from '../core/ai/service.js';
import { AlertHub } from '../core/alerts.js';
import { openDatabase } from '../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../core/storage/migrations.js';
import { coreMigrations } from '../core/storage/schema.js';
import { TenantDirectory } from '../core/tenancy.js';
import { Usage } from '../core/usage.js';

type MedicalAnswersModule = typeof import('../plugins/medical-answers/index.js');

export async function ingestCommand(o: { configPath: string | undefined; tenantId: string; path: string; say(line: string): void; err(text: string): void }): Promise<number> {
  const env = { ...process.env, PARLEY_DEMO_KEY: process.env.PARLEY_DEMO_KEY ?? 'ingest-placeholder' };
  const loaded = applyEnvOverrides(loadConfigFile(o.configPath, env), env);
  const { config } = loaded;
  const index = config.tenants.findIndex((t) => t.id === o.tenantId);
  const tenant = config.tenants[index];
  if (!tenant) {
    o.err(`Tenant "${o.tenantId}" is not in ${loaded.source} (tenants: ${config.tenants.map((t) => t.id).join(', ')}).\n`);
    return 2;
  }
  if (!('medical-answers' in tenant.plugins)) {
    o.err(`Tenant "${o.tenantId}" does not use medical-answers: add tenants[${index}] (${o.tenantId}).plugins.medical-answers (and the stage to its pipeline) in ${loaded.source}.\n`);
    return 2;
  }
  const entry = config.plugins.find((p) => (typeof p === 'string' ? p : p.name) === 'medical-answers');
  // The plugin as the deployment names it: a module path (relative to the config file), a package, or the built-in.
  const named = entry && typeof entry !== 'string' ? entry.module : undefined;
  const specifier = !named
    ? pathToFileURL(builtinPlugins['medical-answers']!).href
    : named.startsWith('.') || isAbsolute(named)
      ? pathToFileURL(resolve(dirname(loaded.source), named)).href
      : named;
  const mod = (await import(specifier)) as MedicalAnswersModule;

  const source = mod.openCorpus(o.path);
  // The tenant's lay phrases (its `layPhrases` setting), as the gateway indexes them at start.
  const settings = mod.settingsSchema.safeParse(tenant.plugins['medical-answers'] ?? {});
  let layPhrases;
  try {
    layPhrases = mod.layPhrasesSetting(settings.success ? settings.data.layPhrases : true, dirname(loaded.source));
  } catch (error) {
    o.err(`tenants[${index}] (${o.tenantId}).plugins.medical-answers.layPhrases: ${(error as Error).message}\n`);
    return 2;
  }
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
  let db;
  try {
    db = await openDatabase({ databaseUrl: config.storage.databaseUrl || undefined, dataDir: config.storage.dataDir, poolSize: 4, log });
  } catch (error) {
    o.err(`${error instanceof ParleyError ? `${error.code}: ` : ''}${(error as Error).message}\n`);
    return 1;
  }
  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await ensureMigrationTable(db.pool);
    await applyMigrations(db.pool, 'core', coreMigrations);
    await applyMigrations(db.pool, 'medical-answers', mod.migrations);
    // A tenant whose `ai.embeddings` names a model embeds with it, metered in its usage like at run time.
    const tenants = new TenantDirectory(config.tenants, config.operator.apiKeys);
    const service = new Ai({ config, usage: new Usage(db.pool, tenants), tenants, alerts: new AlertHub(log), registry: new Registry(), log });
    await service.loadProviders();
    const ai = service.for('medical-answers');
    const embeddings = ai.embeddings(o.tenantId, { purpose: 'medical-answers.ingest' });
    const store = new mod.MedicalStore(db.pool, { log });
    const mode = await store.init();
    const library = new mod.Library(store, log);
    const total = await source.count();
    o.say(`Ingesting ${total} document(s) from ${source.path} into tenant "${o.tenantId}" (${db.kind} database, ${mode.mode} retrieval${mode.reason ? `: ${mode.reason}` : ''})`);
    const tty = process.stderr.isTTY;
    let last = 0;
    if (embeddings) o.say(`Embedding with ${embeddings.provider}/${embeddings.model} (the tenant's ai.embeddings).`);
    const result = await library.ingest(o.tenantId, source.docs(), {
      total,
      ...(embeddings ? { embeddings, embedderName: `${embeddings.provider}/${embeddings.model}` } : {}),
      signal: interrupted.signal,
      layPhrases: layPhrases.vocabulary,
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < (tty ? 100 : 5_000)) return;
        last = now;
        o.err(tty ? `\r${mod.progressLine(p)}\u001b[K` : `${mod.progressLine(p)}\n`);
      },
    });
    if (tty) o.err('\n');
    if (result === 'busy') {
      o.err(`An ingest for tenant "${o.tenantId}" is already running in this process.\n`);
      return 1;
    }
    o.say(`Done in ${(result.ms / 1000).toFixed(1)} s: ${result.added} added, ${result.updated} updated, ${result.unchanged} unchanged, ${result.removed} removed; ${result.chunks} chunks; corpus version ${result.corpusVersion}.`);
    return 0;
  } catch (error) {
    if (interrupted.signal.aborted) {
      o.err('\nInterrupted: run the same command again to resume.\n');
      return 130;
    }
    o.err(`\n${error instanceof ParleyError ? `${error.code}: ` : ''}${(error as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await db.close();
  }
}
