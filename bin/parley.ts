/** The `parley` command line: start | validate | init | plugins | chat | ingest. */
import { parseArgs } from 'node:util';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { z } from 'zod';
import { builtinPlugins } from '../config/builtins.js';
import { ensureDemoKey, applyEnvOverrides } from '../core/boot.js';
import { loadConfigFile, BUNDLED_DEMO_CONFIG } from '../core/config.js';
import type { Gateway } from '../core/gateway.js';
import { ConfigError, ParleyError } from '../core/errors.js';
import { importPlugin } from '../core/plugin-loader.js';
import { launchEarly } from '../core/storage/embedded-thread.js';
// The gateway and the API client are imported by the commands that use them: `start` launches the
// embedded database before the gateway's modules load (core/storage/embedded-thread.ts).

const HELP: Record<string, string> = {
  main: `Usage: parley <command> [options]

Commands:
  start      Start the gateway (default config: ./parley.yaml, else the bundled demo)
  validate   Check a configuration file without starting anything
  init       Write a commented starter parley.yaml
  plugins    List built-in plugins and their settings
  chat       Chat with a tenant of a running gateway from the terminal
  ingest     Load documents into a tenant's medical-answers library
  backup     Back up the database (embedded data directory or PostgreSQL); "backup verify <file>" checks one
  restore    Restore a backup (the gateway must be stopped)
  audit      "audit verify": check the audit trail's hash chain

Run "parley <command> --help" for a command's options.`,
  start: `Usage: parley start [--config parley.yaml]

Starts Parley. Without DATABASE_URL it runs on embedded PostgreSQL (PGlite) in PARLEY_DATA_DIR
(default ./data); without REDIS_URL, jobs run on that database. PORT (default 3000) is honoured.
SIGTERM or Ctrl-C stops taking requests, drains messages and jobs, and exits 0.`,
  validate: `Usage: parley validate [--config parley.yaml]

Loads the file, interpolates \${ENV} values, validates every plugin's options and tenant settings
and checks each tenant pipeline. Exits 0 when valid, 2 with the tenant, plugin and key otherwise.`,
  init: `Usage: parley init [--config parley.yaml] [--force]

Writes a commented starter configuration. Refuses to overwrite an existing file without --force.`,
  plugins: `Usage: parley plugins [--json]

Lists the built-in plugins with their kind, description and per-tenant settings (as JSON Schema).`,
  chat: `Usage: parley chat --tenant <id> [--url http://127.0.0.1:3000] [--key <api key>] [--from <name>]

Sends each line you type to the tenant's http channel and prints the replies. The key defaults to
PARLEY_API_KEY, then PARLEY_DEMO_KEY. Reads lines from standard input when it is not a terminal.`,
  ingest: `Usage: parley ingest --tenant <id> [--config parley.yaml] PATH

Loads PATH into the tenant's medical-answers library: a .jsonl file ({id, title, url?, source?, text,
synonyms?} per line, like the bundled MedQuAD corpus) or a folder of .md, .html and .txt files. The
library then holds exactly these documents: changed ones are updated, unchanged ones kept as they are
(re-running is cheap), missing ones removed. An interrupted ingest resumes where it stopped. On the
embedded database, stop the gateway first (it holds the data directory); on PostgreSQL it can run.`,
  backup: `Usage: parley backup [--out file] [--config parley.yaml] [--url http://127.0.0.1:3000] [--key <operator key>]
       parley backup verify <file>

With DATABASE_URL (or storage.databaseUrl): pg_dump --format=custom. Otherwise the embedded data
directory: through the running gateway (GET /v1/backup with the operator key, PARLEY_OPERATOR_KEY by
default) when it runs, or opened directly when it is stopped. PARLEY_BACKUP_KEY (32 bytes, hex or
base64) encrypts it (AES-256-GCM). "verify" restores it into a scratch database (in memory, or a new
database on the DATABASE_URL server) and compares every table's row count with the backup's manifest.
Exit codes: 0 done (verify: every count matches), 1 failed (verify: counts differ), 2 usage,
3 the file cannot be decrypted (PARLEY_BACKUP_KEY wrong, or the file altered).`,
  restore: `Usage: parley restore <file> [--config parley.yaml]

Restores into DATABASE_URL (pg_restore --clean --single-transaction), or into the embedded data
directory of a stopped gateway (the previous directory is kept beside it). Exits 3, changing
nothing, when the file cannot be decrypted (PARLEY_BACKUP_KEY wrong, or the file altered).`,
  audit: `Usage: parley audit verify [--expect-head <seq>:<hash> | <backup file> | <folder of backups> | <log file>] [--config parley.yaml]

Recomputes every row's hash of the audit trail and checks each link; exits 1 when a row was edited
or deleted. It also checks the newest head recorded outside the database, so deleting the newest
rows is reported: by default the newest backup in the dsar plugin's backup folder (backups/ under
the data directory) and the "auditHead" lines of log.file; --expect-head names another record.`,
};

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const fail = (line: string, code = 2): never => {
  process.stderr.write(`${line}\n`);
  process.exit(code);
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') return say(HELP.main!);
  if (!HELP[command]) fail(`Unknown command "${command}".\n\n${HELP.main}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: ['ingest', 'backup', 'restore', 'audit'].includes(command),
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      tenant: { type: 'string', short: 't' },
      url: { type: 'string' },
      key: { type: 'string' },
      from: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'expect-head': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) return say(HELP[command]!);
  switch (command) {
    case 'start':
      return start(values.config);
    case 'validate':
      return validate(values.config);
    case 'init':
      return init(values.config ?? 'parley.yaml', values.force ?? false);
    case 'plugins':
      return plugins(values.json ?? false);
    case 'chat':
      return chat({ tenant: values.tenant, url: values.url, key: values.key, from: values.from });
    case 'ingest':
      return ingest({ config: values.config, tenant: values.tenant, paths: positionals });
    case 'backup':
    case 'restore':
    case 'audit':
      return ops(command, positionals, values);
  }
}

async function ops(command: string, positionals: string[], values: { config?: string | undefined; url?: string | undefined; key?: string | undefined; out?: string | undefined; 'expect-head'?: string | undefined }): Promise<void> {
  const m = await import('./ops.js');
  let target: import('./ops.js').OpsTarget;
  try {
    const env = { ...process.env, PARLEY_DEMO_KEY: process.env.PARLEY_DEMO_KEY ?? 'ops-placeholder' };
    const loaded = applyEnvOverrides(loadConfigFile(values.config, env), env);
    const { resolve } = await import('node:path');
    const dataDir = resolve(loaded.config.storage.dataDir);
    // Where the audit head is recorded outside the database: the dsar plugin's backups and the log file.
    const dsar = loaded.config.plugins.find((p) => (typeof p === 'string' ? p : p.name) === 'dsar');
    const backupDir = (typeof dsar === 'object' ? (dsar.options as { backup?: { dir?: string } } | undefined)?.backup?.dir : undefined) ?? 'backups';
    const headSources = [resolve(dataDir, backupDir), ...(loaded.config.log.file ? [resolve(dataDir, loaded.config.log.file)] : [])];
    target = { databaseUrl: loaded.config.storage.databaseUrl, dataDir, url: values.url, key: values.key ?? process.env.PARLEY_OPERATOR_KEY ?? loaded.config.operator.apiKeys[0], headSources };
  } catch (error) {
    return reportBootError(error);
  }
  try {
    if (command === 'backup' && positionals[0] === 'verify') {
      if (!positionals[1]) fail('backup verify needs a file');
      if (!(await m.verifyBackupCommand(target, positionals[1]!, say))) process.exit(1);
    } else if (command === 'backup') await m.backupCommand(target, values.out, say);
    else if (command === 'restore') {
      if (!positionals[0]) fail('restore needs a file');
      await m.restoreCommand(target, positionals[0]!, say);
    } else if (command === 'audit' && positionals[0] === 'verify') {
      if (!(await m.auditVerifyCommand(target, values['expect-head'], say))) process.exit(1);
    } else fail(HELP[command]!);
  } catch (error) {
    // A backup that cannot be decrypted has its own exit code, so a restore script can tell it apart.
    fail(`${command} failed: ${(error as Error).message}`, error instanceof ParleyError && error.code === 'PARLEY_BACKUP_UNREADABLE' ? 3 : 1);
  }
}

function reportBootError(error: unknown): never {
  if (error instanceof ConfigError) fail(`${error.message}`);
  if (error instanceof ParleyError) fail(`${error.code}: ${error.message}`);
  return fail(`Failed to start: ${(error as Error).stack ?? String(error)}`, 1);
}

async function start(configPath: string | undefined): Promise<void> {
  const t0 = performance.now();
  let gateway: Gateway;
  try {
    ensureDemoKey(configPath, process.env, say);
    const loaded = applyEnvOverrides(loadConfigFile(configPath), process.env);
    if (loaded.source === BUNDLED_DEMO_CONFIG) say('No ./parley.yaml found: using the bundled demo configuration (config/demo.yaml).');
    if (!loaded.config.storage.databaseUrl) launchEarly({ dataDir: resolve(loaded.config.storage.dataDir) });
    const { Gateway } = await import('../core/gateway.js');
    gateway = await Gateway.boot({ loaded, catalogue: builtinPlugins });
  } catch (error) {
    reportBootError(error);
  }
  say(`Parley is ready on ${gateway.url} (storage: ${gateway.db.kind}, jobs: ${gateway.jobs.kind}) in ${Math.round(performance.now() - t0)} ms`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    gateway.log.info({ signal }, 'shutting down');
    await gateway.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

async function validate(configPath: string | undefined): Promise<void> {
  try {
    const env = { ...process.env, PARLEY_DEMO_KEY: process.env.PARLEY_DEMO_KEY ?? 'validate-placeholder' };
    const loaded = applyEnvOverrides(loadConfigFile(configPath, env), env);
    const { Gateway } = await import('../core/gateway.js');
    const r = await Gateway.validate({ loaded, catalogue: builtinPlugins, logger: (await import('../core/logger.js')).createLogger('silent') });
    say(`${loaded.source} is valid: ${r.tenants.length} tenant(s) (${r.tenants.join(', ')}), plugins: ${r.plugins.join(', ')}`);
  } catch (error) {
    reportBootError(error);
  }
}

function init(path: string, force: boolean): void {
  if (existsSync(path) && !force) fail(`${path} already exists; use --force to overwrite it.`);
  const starter = readFileSync(new URL('../config/starter.yaml', import.meta.url), 'utf8');
  writeFileSync(path, starter);
  say(`Wrote ${path}. Check it with: npx parley validate --config ${path}`);
}

async function plugins(json: boolean): Promise<void> {
  const out = [];
  for (const name of Object.keys(builtinPlugins).sort()) {
    const p = await importPlugin({ name }, builtinPlugins, process.cwd());
    out.push({
      name: p.name,
      kind: p.kind,
      description: p.description,
      dependencies: p.dependencies ?? [],
      settings: p.settingsSchema ? z.toJSONSchema(p.settingsSchema, { io: 'input', unrepresentable: 'any' }) : null,
      options: p.optionsSchema ? z.toJSONSchema(p.optionsSchema, { io: 'input', unrepresentable: 'any' }) : null,
    });
  }
  if (json) return say(JSON.stringify(out, null, 2));
  for (const p of out) {
    say(`${p.name} (${p.kind})${p.dependencies.length ? ` depends on ${p.dependencies.join(', ')}` : ''}\n  ${p.description}`);
    const props = (p.settings as { properties?: Record<string, { description?: string; type?: string }> } | null)?.properties ?? {};
    for (const [key, schema] of Object.entries(props)) say(`    tenants[].plugins.${p.name}.${key}${schema.type ? ` (${schema.type})` : ''}`);
    say('');
  }
}

async function chat(o: { tenant?: string | undefined; url?: string | undefined; key?: string | undefined; from?: string | undefined }): Promise<void> {
  if (!o.tenant) fail('chat needs --tenant <id>');
  const url = (o.url ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/$/, '');
  const key = o.key ?? process.env.PARLEY_API_KEY ?? process.env.PARLEY_DEMO_KEY;
  if (!key) fail('chat needs an API key: --key, or PARLEY_API_KEY / PARLEY_DEMO_KEY in the environment');
  const from = o.from ?? `terminal-${process.env.USER ?? 'user'}`;
  const { ParleyApiError, ParleyClient } = await import('../core/client.js');
  const client = new ParleyClient({
    baseUrl: url,
    key,
    timeoutMs: 120_000,
    onDeprecation: (d) => say(`! ${d.method} ${d.path} is deprecated (sunset ${d.sunset ?? 'not set'}${d.link ? `, successor ${d.link}` : ''}): upgrade parley`),
  });
  const interactive = process.stdin.isTTY;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
  if (interactive) say(`Chatting with tenant "${o.tenant}" at ${url} as "${from}". Ctrl-D to quit.`);
  const prompt = () => interactive && rl.prompt();
  rl.setPrompt('you> ');
  prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (!text) {
      prompt();
      continue;
    }
    try {
      const { status, body } = await client.sendMessage(o.tenant!, { from, text });
      if (!body.replies.length) say(status === 202 ? '(the reply is on its way)' : '(no reply)');
      else for (const r of body.replies) say(`${o.tenant}> ${r.text}`);
    } catch (error) {
      if (error instanceof ParleyApiError) say(`! ${error.status} ${error.code}: ${error.reason}`);
      else say(`! cannot reach ${url}: ${(error as Error).message}`);
    }
    prompt();
  }
}

async function ingest(o: { config: string | undefined; tenant: string | undefined; paths: string[] }): Promise<void> {
  if (!o.tenant) fail('ingest needs --tenant <id>');
  if (o.paths.length !== 1) fail(`ingest needs one PATH (a .jsonl file or a folder), got ${o.paths.length}.\n\n${HELP.ingest}`);
  const { ingestCommand } = await import('./ingest.js');
  const code = await ingestCommand({ configPath: o.config, tenantId: o.tenant!, path: o.paths[0]!, say, err: (line) => process.stderr.write(line) });
  process.exit(code);
}

await main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof TypeError && /parseArgs|Unknown option|ERR_PARSE_ARGS/.test(String((error as NodeJS.ErrnoException).code ?? error.message))) fail(error.message);
  reportBootError(error);
});
