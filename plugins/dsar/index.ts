/**
 * `dsar`: data-subject requests (export and erasure) with approval, deadlines, a one-time-code check
 * for people asking on their own channel, signed one-time download links, an erasure verification
 * scan and an audit trail in the kernel's hash-chained `parley_audit`; per-tenant retention; and the
 * scheduled backup job. Builds on the kernel's `exportSubject`/`eraseSubject` over every plugin's
 * data-subject provider.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { ConfigError, TOKENS, currentAuditHead, definePlugin, subjectHashes, subjectNeedles, suppressionHash, token } from 'parley';
import { dsarMetrics } from './metrics.js';
import { dsarRoutes } from './routes.js';
import { runRequest } from './run.js';
import { scanSubject } from './scan.js';
import { dsarStage, linkText, normalisePhrase } from './stage.js';
import { RequestStore, migrations } from './store.js';
import { runRetention } from './retention.js';
import { optionsSchema, settingsSchema } from './types.js';
import { runScheduledBackup } from './backup-job.js';

export { dueDate, type DsarRequest, type DsarSettings, type ContactResolver, CONTACTS_RESOLVER } from './types.js';
export { scanSubject } from './scan.js';
export { signLink, readLink } from './run.js';

const RUN_QUEUE = 'dsar-run';

export default definePlugin({
  name: 'dsar',
  kind: 'capability',
  description: 'Data-subject requests (export, erasure) with approval, deadlines, one-time codes, signed downloads, erasure verification and a hash-chained audit; retention and scheduled backups.',
  optionsSchema,
  settingsSchema,
  setup(ctx) {
    const options = ctx.options;
    const issues: string[] = [];
    for (const { tenant, settings } of ctx.tenants()) {
      const erase = new Set(settings.endUser.erasePhrases.map(normalisePhrase));
      const both = settings.endUser.exportPhrases.filter((p) => erase.has(normalisePhrase(p)));
      if (both.length) issues.push(`${ctx.configPath(tenant.id)}.endUser.exportPhrases: "${both[0]}" is also an erase phrase`);
    }
    if (options.backup?.encrypt && !process.env.PARLEY_BACKUP_KEY) issues.push(`${ctx.configPath()}.backup.encrypt: PARLEY_BACKUP_KEY is not set (32 bytes as 64 hex characters or base64)`);
    if (issues.length) throw new ConfigError(issues);

    const gateway = ctx.inject(TOKENS.Gateway);
    const store = new RequestStore(ctx.db);
    const metrics = dsarMetrics(ctx.metrics, () => store.counts(), async () => Number((await currentAuditHead(ctx.db))?.seq ?? 0));
    const exportDir = resolve(ctx.dataDir, options.exportDir);
    let secret: Promise<string> | undefined;
    const getSecret = () => (secret ??= options.signingSecret ? Promise.resolve(options.signingSecret) : store.secret('download-links', () => randomBytes(32).toString('base64url')));
    const enqueue = (requestId: string) => ctx.jobs.add(RUN_QUEUE, { requestId }, { jobId: `dsar-${requestId}-${Date.now()}` });
    const linkBase = () => (ctx.publicBaseUrl ?? gateway.url).replace(/\/$/, '');
    const erase = (tenantId: string, addresses: string[], actor: string) => gateway.eraseSubject({ tenantId, addresses }, actor);

    ctx.migrations(migrations);
    ctx.dataSubjects({
      name: 'dsar',
      describe: () => ({
        purpose: 'Recording your data requests (export, erasure) and their outcome, as proof they were honoured on time.',
        recipients: ['The operators of this service'],
        retention: 'Kept as proof; once a request is finished it holds only hashes of your addresses, never the addresses.',
        source: 'Your requests, made by you or on your behalf.',
      }),
      async export(subject) {
        const rows = await store.list(subject.tenantId, { subjectHashes: subjectHashes(subject), limit: 500 });
        return rows.map(({ request: r }) => ({ kind: 'data-request', id: r.id, type: r.type, status: r.status, createdAt: r.createdAt, dueAt: r.dueAt, completedAt: r.completedAt }));
      },
      async erase(subject) {
        const r = await ctx.db.query(
          `UPDATE dsar_requests SET subject_addresses = NULL, code_hash = NULL WHERE tenant_id = $1 AND subject_hashes && $2 AND subject_addresses IS NOT NULL AND status NOT IN ('running', 'queued', 'pending-approval')`,
          [subject.tenantId, subjectHashes(subject)],
        );
        return { erased: r.rowCount ?? 0 };
      },
    });
    ctx.stage(dsarStage({ store, metrics, enqueue }));

    const runDeps = {
      store,
      metrics,
      exportDir,
      downloadTtlMs: options.downloadTtlMinutes * 60_000,
      secret: getSecret,
      exportStream: (subject: { tenantId: string; addresses: string[] }) => gateway.exportSubjectStream(subject),
      erase: (subject: { tenantId: string; addresses: string[] }, actor: string) => gateway.eraseSubject(subject, actor),
      scan: (subject: { tenantId: string; addresses: string[] }) =>
        scanSubject({ db: ctx.db, jobs: gateway.jobs, logFile: gateway.logFile, needles: subjectNeedles, suppressionHash }, subject),
      async notify(request: { tenantId: string; channel: string | null; replyFrom: string | null; language: 'en' | 'es' }, addresses: string[], link: string) {
        const settings = ctx.settingsFor(request.tenantId);
        if (!settings?.endUser.sendExportLink || !request.channel) return;
        await ctx.gateway.enqueueOutbound({ tenantId: request.tenantId, channel: request.channel, to: addresses[0]!, ...(request.replyFrom ? { from: request.replyFrom } : {}), text: linkText(request.language, link) });
      },
      linkBase,
      alert: (request: { id: string; tenantId: string }, title: string, detail: string) =>
        ctx.alerts.raise({ key: `dsar.failed.${request.id}`, tenantId: request.tenantId, severity: 'critical', summary: `${request.tenantId}: ${title}`, details: { request: request.id, detail } }),
      log: ctx.log,
    };
    ctx.job<{ requestId: string }>({ name: RUN_QUEUE, concurrency: 1, attempts: 3, backoffMs: 5000, process: ({ requestId }) => runRequest(runDeps, requestId) });

    const checkDeadlines = async (now = new Date()) => {
      let raised = 0;
      for (const r of await store.dueSoon(now, 'overdue')) {
        if (!(await store.markAlerted(r.id, 'overdue'))) continue;
        metrics.overdueAlerts.inc({ tenant: r.tenantId, kind: 'overdue' });
        ctx.alerts.raise({ key: `dsar.overdue.${r.id}`, tenantId: r.tenantId, severity: 'critical', summary: `${r.tenantId}: data-subject ${r.type} request ${r.id.slice(0, 8)} is overdue (was due ${r.dueAt.toISOString().slice(0, 10)}, status ${r.status})`, details: { request: r.id, dueAt: r.dueAt.toISOString(), status: r.status } });
        raised += 1;
      }
      const maxBefore = Math.max(0, ...ctx.tenants().map((t) => t.settings.alertBeforeDays));
      for (const r of await store.dueSoon(new Date(now.getTime() + maxBefore * 86_400_000), 'warned')) {
        const before = ctx.settingsFor(r.tenantId)?.alertBeforeDays ?? 0;
        if (r.dueAt.getTime() - now.getTime() > before * 86_400_000 || r.dueAt <= now) continue;
        if (!(await store.markAlerted(r.id, 'warned'))) continue;
        metrics.overdueAlerts.inc({ tenant: r.tenantId, kind: 'due-soon' });
        ctx.alerts.raise({ key: `dsar.due.${r.id}`, tenantId: r.tenantId, severity: 'warning', summary: `${r.tenantId}: data-subject ${r.type} request ${r.id.slice(0, 8)} is due ${r.dueAt.toISOString().slice(0, 10)} (status ${r.status})`, details: { request: r.id, dueAt: r.dueAt.toISOString(), status: r.status } });
        raised += 1;
      }
      return raised;
    };
    ctx.schedule({ name: 'dsar-deadlines', cron: options.deadlineCron, process: () => checkDeadlines() });

    const retention = async (tenantId: string, dryRun: boolean) => {
      const settings = ctx.settingsFor(tenantId);
      if (!settings) return {};
      return runRetention(
        {
          db: ctx.db,
          erase,
          onPurged: (t, kind, rows, dry) => {
            if (!dry && rows) metrics.purged.inc({ tenant: t, kind }, rows);
            if (!dry && rows) return ctx.db.query('INSERT INTO dsar_retention_runs (tenant_id, kind, dry_run, rows) VALUES ($1, $2, $3, $4)', [t, kind, dry, rows]).then(() => undefined);
          },
        },
        tenantId,
        settings.retention,
        { dryRun },
      );
    };
    ctx.schedule({
      name: 'dsar-retention',
      cron: options.retentionCron,
      async process() {
        for (const { tenant } of ctx.tenants()) await retention(tenant.id, false);
      },
    });

    // The chain head, written where the database cannot rewrite it: `parley audit verify` reads the last one.
    const recordAuditHead = async () => {
      const auditHead = await currentAuditHead(ctx.db);
      if (auditHead) ctx.log.info({ auditHead }, 'audit chain head');
      return auditHead;
    };
    ctx.schedule({ name: 'dsar-audit-head', cron: options.auditHeadCron, process: () => recordAuditHead() });

    if (options.backup) {
      const backup = options.backup;
      ctx.schedule({ name: 'dsar-backup', cron: backup.cron, attempts: 2, process: () => runScheduledBackup(gateway, { dir: resolve(ctx.dataDir, backup.dir), keep: backup.keep, encrypt: backup.encrypt }, ctx.log) });
    }

    ctx.routes(
      dsarRoutes({
        store,
        metrics,
        settingsFor: (tenantId) => ctx.settingsFor(tenantId),
        tryInject: <T>(key: string) => ctx.tryInject(token<T>(key)),
        enqueue,
        secret: getSecret,
        linkBase,
        downloadTtlMs: options.downloadTtlMinutes * 60_000,
        retention,
      }),
    );
    ctx.provide(token<{ checkDeadlines: typeof checkDeadlines; retention: typeof retention; recordAuditHead: typeof recordAuditHead; store: RequestStore }>('dsar.service'), { checkDeadlines, retention, recordAuditHead, store });
  },
});
