/**
 * The lay phrases a tenant's documents are indexed with (`layPhrases` setting; engine/lay.ts): the
 * engine's built-in vocabulary, none, or the built-in one plus a JSONL file of the deployment's own
 * topics (`{"title": "...", "lay": ["...", ...]}` per line). A bad line stops the read with its place
 * named, like a bad corpus line.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BUILT_IN_LAY_PHRASES, layKey, type LayVocabulary } from './engine/lay.js';
import { CorpusError } from './corpus.js';

const lineSchema = z.object({
  title: z.string().min(1).max(500),
  lay: z.array(z.string().trim().min(1).max(200)).min(1).max(100),
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
let builtIn: string | undefined;
/** Hashed when a configured corpus is checked, not at every start. */
const builtInFingerprint = () => (builtIn ??= sha(JSON.stringify(BUILT_IN_LAY_PHRASES)));

export interface LayPhrases {
  /** What ingest indexes with the documents; `null`: no lay phrases. */
  vocabulary: LayVocabulary | null;
  /** Changes when the vocabulary does, so that a start re-indexes the library with it. */
  fingerprint(): string;
}

/** Reads a file of lay phrases; throws a CorpusError naming the file and line of a bad one. */
export function readLayPhrasesFile(path: string): LayVocabulary {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CorpusError(`cannot read the lay phrases file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const out: Record<string, string[]> = {};
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new CorpusError(`${path}:${i + 1}: not valid JSON`);
    }
    const row = lineSchema.safeParse(parsed);
    if (!row.success) throw new CorpusError(`${path}:${i + 1}: ${row.error.issues.map((p) => `${p.path.join('.') || 'line'} ${p.message}`).join('; ')}`);
    const key = layKey(row.data.title);
    out[key] = [...new Set([...(out[key] ?? []), ...row.data.lay.map((phrase) => phrase.toLowerCase())])];
  });
  return out;
}

/** The vocabulary a `layPhrases` setting names (a file path relative to `baseDir`). */
export function layPhrasesSetting(setting: boolean | string, baseDir: string): LayPhrases {
  if (setting === false) return { vocabulary: null, fingerprint: () => 'none' };
  if (setting === true) return { vocabulary: BUILT_IN_LAY_PHRASES, fingerprint: builtInFingerprint };
  const path = resolve(baseDir, setting);
  const own = readLayPhrasesFile(path);
  const merged: Record<string, readonly string[]> = { ...BUILT_IN_LAY_PHRASES };
  for (const [key, phrases] of Object.entries(own)) merged[key] = [...new Set([...(merged[key] ?? []), ...phrases])];
  const ownFingerprint = sha(JSON.stringify(own));
  return { vocabulary: merged, fingerprint: () => `${builtInFingerprint()}+${ownFingerprint}` };
}
