/**
 * Memory of one WhatsApp Web session: the resident memory of its Chromium process and every process
 * Chromium started (renderers, GPU, utility), read from /proc. Linux only; elsewhere, or without a
 * browser process (a fake client), it is unknown.
 */
import { readFile, readdir } from 'node:fs/promises';

/** The browser process id, when the client exposes puppeteer's browser (the real client does). */
export function browserPid(client: unknown): number | undefined {
  const browser = (client as { pupBrowser?: { process?: () => { pid?: number } | null } | null } | undefined)?.pupBrowser;
  const pid = browser?.process?.()?.pid;
  return typeof pid === 'number' && pid > 0 ? pid : undefined;
}

/** Sum of VmRSS over a process and its descendants, in bytes; undefined when /proc cannot tell. */
export async function processTreeRssBytes(rootPid: number, procDir = '/proc'): Promise<number | undefined> {
  let entries: string[];
  try {
    entries = (await readdir(procDir)).filter((e) => /^\d+$/.test(e));
  } catch {
    return undefined;
  }
  const parents = new Map<number, number>();
  await Promise.all(
    entries.map(async (e) => {
      try {
        const stat = await readFile(`${procDir}/${e}/stat`, 'utf8');
        // Field 4 (ppid) follows the command name, which may itself contain spaces and parentheses.
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        parents.set(Number(e), ppid);
      } catch {
        // The process ended while we looked.
      }
    }),
  );
  if (!parents.has(rootPid)) return undefined;
  const tree = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  let total = 0;
  await Promise.all(
    [...tree].map(async (pid) => {
      try {
        const status = await readFile(`${procDir}/${pid}/status`, 'utf8');
        const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
        if (kb) total += Number(kb) * 1024;
      } catch {
        // Gone meanwhile.
      }
    }),
  );
  return total;
}

/** Memory of a session this instance drives, read from /proc at most every 10 seconds per tenant. */
export function createSessionMemory() {
  const cache = new Map<string, { at: number; bytes: number | undefined }>();
  return async function sessionMemory(s: { tenantId: string; ownsLocally(): boolean; currentClient: unknown }): Promise<number | undefined> {
    const pid = s.ownsLocally() ? browserPid(s.currentClient) : undefined;
    if (pid === undefined) return undefined;
    const cached = cache.get(s.tenantId);
    if (cached && Date.now() - cached.at < 10_000) return cached.bytes;
    const bytes = await processTreeRssBytes(pid);
    cache.set(s.tenantId, { at: Date.now(), bytes });
    return bytes;
  };
}

export type SessionMemory = ReturnType<typeof createSessionMemory>;
