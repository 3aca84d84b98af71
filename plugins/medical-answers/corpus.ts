/**
 * Reads a corpus for ingest: a JSONL file shaped like the shared MedQuAD corpus
 * (`{id, title, url?, source?, text, synonyms?, collection?}` per line), or a folder of Markdown, HTML
 * and plain-text files (one document each: id = path inside the folder, title = first heading or
 * `<title>`, sections = headings). A bad line or file stops the read with its place named, so a corpus
 * is never half-ingested by accident.
 */
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, extname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { PluginError, pluginErrorCode } from 'parley';
import type { CorpusDoc } from './engine/types.js';

const lineSchema = z.object({
  id: z.string().min(1).max(200),
  title: z.string().min(1).max(500),
  url: z.string().max(2000).nullish(),
  source: z.string().max(500).nullish(),
  text: z.string().min(1),
  synonyms: z.array(z.string()).default([]),
  collection: z.string().nullish(),
});

const TEXT_EXTENSIONS = new Set(['.md', '.markdown', '.html', '.htm', '.txt']);

/** A corpus that cannot be read (`PARLEY_MEDICAL_ANSWERS_CORPUS_INVALID`), naming the file and line. */
export class CorpusError extends PluginError {
  constructor(message: string) {
    super(pluginErrorCode('medical-answers', 'CORPUS_INVALID'), message, 400, { plugin: 'medical-answers' });
  }
}

/** What a corpus path holds, read lazily: a count for the progress bar and the documents. */
export interface CorpusSource {
  path: string;
  kind: 'jsonl' | 'folder';
  /** A hash of the files' sizes and modification times: a changed corpus is ingested again at start. */
  fingerprint: string;
  count(): Promise<number>;
  docs(): AsyncIterable<CorpusDoc>;
}

export function openCorpus(path: string): CorpusSource {
  const full = resolve(path);
  let stat;
  try {
    stat = statSync(full);
  } catch {
    throw new CorpusError(`Corpus ${path}: no such file or folder`);
  }
  if (stat.isDirectory()) {
    const files = listFiles(full);
    if (files.length === 0) throw new CorpusError(`Corpus ${path}: the folder holds no .md, .html or .txt files`);
    const fingerprint = hash(files.map((f) => `${relative(full, f)}:${statSync(f).size}:${statSync(f).mtimeMs}`).join('\n'));
    return {
      path: full,
      kind: 'folder',
      fingerprint,
      count: async () => files.length,
      async *docs() {
        for (const file of files) yield fileDoc(full, file);
      },
    };
  }
  if (!/\.(jsonl|ndjson)$/i.test(full)) throw new CorpusError(`Corpus ${path}: expected a .jsonl file or a folder of .md/.html/.txt files`);
  return {
    path: full,
    kind: 'jsonl',
    fingerprint: hash(`${stat.size}:${stat.mtimeMs}`),
    count: async () => {
      let n = 0;
      for await (const line of lines(full)) if (line.trim()) n++;
      return n;
    },
    async *docs() {
      let no = 0;
      const seen = new Set<string>();
      for await (const line of lines(full)) {
        no++;
        if (!line.trim()) continue;
        let raw: unknown;
        try {
          raw = JSON.parse(line);
        } catch (error) {
          throw new CorpusError(`Corpus ${path} line ${no}: not JSON (${(error as Error).message})`);
        }
        const doc = lineSchema.safeParse(raw);
        if (!doc.success) throw new CorpusError(`Corpus ${path} line ${no}: ${doc.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; ')}`);
        if (seen.has(doc.data.id)) throw new CorpusError(`Corpus ${path} line ${no}: document id "${doc.data.id}" appears twice`);
        seen.add(doc.data.id);
        yield { ...doc.data, url: doc.data.url ?? null, source: doc.data.source ?? null, collection: doc.data.collection ?? null };
      }
    },
  };
}

function lines(file: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (TEXT_EXTENSIONS.has(extname(entry.name).toLowerCase())) out.push(full);
  }
  return out;
}

function fileDoc(root: string, file: string): CorpusDoc {
  const id = relative(root, file).split(/[\\/]/).join('/');
  const raw = readFileSync(file, 'utf8');
  const ext = extname(file).toLowerCase();
  const fallbackTitle = basename(file, ext).replace(/[-_]+/g, ' ').trim() || id;
  const { title, text } = ext === '.html' || ext === '.htm' ? fromHtml(raw) : ext === '.txt' ? { title: null, text: raw.trim() } : fromMarkdown(raw);
  if (!text.trim()) throw new CorpusError(`Corpus file ${id}: no text`);
  return { id, title: title ?? fallbackTitle, url: null, source: null, text, synonyms: [], collection: null };
}

/** Markdown: the first `# heading` is the title; other headings become section lines; markup is dropped. */
export function fromMarkdown(md: string): { title: string | null; text: string } {
  let title: string | null = null;
  const out: string[] = [];
  let inFence = false;
  for (const line of md.replace(/^---\n[\s\S]*?\n---\n/, '').split(/\r?\n/)) {
    if (/^\s*(```|~~~)/.test(line)) {
      inFence = !inFence;
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$/.exec(line);
    if (heading && !inFence) {
      const textOf = inlineMarkdown(heading[2]!);
      if (!title && heading[1] === '#') title = textOf;
      else out.push('', textOf);
      continue;
    }
    out.push(inlineMarkdown(line.replace(/^\s*[-*+]\s+/, '- ').replace(/^\s*>\s?/, '')));
  }
  return { title, text: collapse(out.join('\n')) };
}

function inlineMarkdown(text: string): string {
  return text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__|\*|_|`)(.+?)\1/g, '$2')
    .trim();
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', ndash: '–', mdash: '—', rsquo: '’', lsquo: '‘', ldquo: '“', rdquo: '”' };

/** HTML: `<title>` or the first `<h1>` is the title; headings become section lines; scripts and styles are dropped. */
export function fromHtml(html: string): { title: string | null; text: string } {
  const decode = (s: string) =>
    s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : m;
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
  const strip = (s: string) => decode(s.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  const body = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<(script|style|noscript|nav|footer|header)\b[\s\S]*?<\/\1>/gi, '');
  const titleTag = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(body);
  const h1 = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(body);
  const title = strip(titleTag?.[1] ?? h1?.[1] ?? '') || null;
  const main = body.replace(/<head\b[\s\S]*?<\/head>/i, '').replace(h1 ? h1[0] : /$^/, '');
  const text = main
    .replace(/<h[1-6][^>]*>([\s\S]*?)<\/h[1-6]>/gi, (_, h: string) => `\n\n${strip(h)}\n`)
    .replace(/<li[^>]*>/gi, '\n- ')
    .replace(/<(br|\/p|\/div|\/li|\/tr|\/h[1-6]|p|div|tr)\b[^>]*>/gi, '\n');
  return { title, text: collapse(text.split('\n').map(strip).join('\n')) };
}

function collapse(text: string): string {
  return text.replace(/\n{3,}/g, '\n\n').trim();
}
