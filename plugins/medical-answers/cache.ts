/**
 * Answers to repeated questions, kept in memory per instance and per tenant: keyed by corpus version,
 * length budget and the normalised question, so a new corpus or another channel's budget never gets a
 * stale answer. Each tenant has its own bound, so one busy tenant cannot evict another's answers;
 * least recently used entries go first and entries expire after the tenant's TTL.
 */
export interface CachedAnswer {
  text: string;
  citations: { docId: string; title: string; url: string | null }[];
  confidence: number;
  answerer: 'extractive' | 'model';
}

export function normaliseQuestion(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export class AnswerCache {
  private readonly tenants = new Map<string, Map<string, { value: CachedAnswer; expires: number }>>();

  constructor(private readonly now: () => number = Date.now) {}

  get(tenantId: string, key: string): CachedAnswer | undefined {
    const entries = this.tenants.get(tenantId);
    const entry = entries?.get(key);
    if (!entries || !entry) return undefined;
    entries.delete(key);
    if (entry.expires <= this.now()) return undefined;
    entries.set(key, entry); // Map order is the eviction order: this one was used last.
    return entry.value;
  }

  set(tenantId: string, key: string, value: CachedAnswer, ttlSeconds: number, maxEntries: number): void {
    if (ttlSeconds <= 0 || maxEntries <= 0) return;
    let entries = this.tenants.get(tenantId);
    if (!entries) this.tenants.set(tenantId, (entries = new Map()));
    entries.delete(key);
    entries.set(key, { value, expires: this.now() + ttlSeconds * 1000 });
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
  }

  clearTenant(tenantId: string): void {
    this.tenants.delete(tenantId);
  }

  size(tenantId: string): number {
    return this.tenants.get(tenantId)?.size ?? 0;
  }

  static key(corpusVersion: string, maxChars: number, question: string): string {
    return `${corpusVersion}\u0000${maxChars}\u0000${normaliseQuestion(question)}`;
  }
}
