/**
 * The log file the gateway keeps when `log.file` is set. Lines are appended synchronously (one write
 * per line), so the gateway can rewrite the file without losing a line: erasure removes every line
 * that names a person (an address, or its `ph_` hash), verification counts them.
 *
 * Rotation is left to the operator (logrotate with `copytruncate`). The rotated copies logrotate leaves
 * beside the file are scanned and redacted too: `parley.log.1`, `parley.log.2.gz` (numbered) and
 * `parley.log-20261201`, `parley.log-20261201.gz` (`dateext`), plain or gzip. Copies moved elsewhere
 * (`olddir`, shipped to a log service) are out of reach and must be kept no longer than the retention
 * the operator documents.
 */
import { createReadStream, closeSync, createWriteStream, existsSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, writeSync, fstatSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { finished, pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import pino from 'pino';

export interface LogFile {
  readonly path: string;
  readonly stream: pino.DestinationStream;
  /** Lines containing any needle, in the file and its rotated copies (streamed: no file is read at once). */
  scan(needles: readonly string[], opts?: { collect?: number }): Promise<{ matches: number; lines: string[]; files: { file: string; matches: number }[] }>;
  /** Rewrites the file and its rotated copies without the lines containing any needle; returns how many were removed. */
  redact(needles: readonly string[]): Promise<{ removed: number }>;
}

/** logrotate's copies of `path` in its folder: `.N`, `.N.gz`, `-DATE`, `-DATE.gz`; oldest last is not promised. */
export function rotatedCopies(path: string): string[] {
  const dir = dirname(path);
  const name = basename(path);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(name) && /^(\.\d+|-\d[\d-]*)(\.gz)?$/.test(f.slice(name.length)))
    .sort()
    .map((f) => join(dir, f));
}

/** The lines of a log file, gunzipped when its name ends in `.gz`, streamed. */
export function readLogLines(file: string): AsyncIterable<string> {
  const raw = createReadStream(file);
  const input: Readable = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  raw.on('error', (e) => input.destroy(e));
  return createInterface({ input, crlfDelay: Infinity });
}

/** Rewrites a rotated copy (nothing appends to it) without the matching lines, gzipped again if it was. */
async function redactCopy(file: string, matches: (line: string) => boolean): Promise<number> {
  let removed = 0;
  const tmp = `${file}.redact-${process.pid}`;
  const kept = async function* () {
    for await (const line of readLogLines(file)) {
      if (matches(line)) removed += 1;
      else yield `${line}\n`;
    }
  };
  const out = createWriteStream(tmp, { mode: statSync(file).mode });
  await (file.endsWith('.gz') ? pipeline(Readable.from(kept()), createGzip(), out) : pipeline(Readable.from(kept()), out));
  if (removed) renameSync(tmp, file);
  else rmSync(tmp, { force: true });
  return removed;
}

export function openLogFile(path: string): LogFile {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true, append: true });
  const matches = (line: string, needles: readonly string[]) => needles.some((n) => line.includes(n));
  return {
    path,
    stream: dest,
    async scan(needles, opts = {}) {
      const files: { file: string; matches: number }[] = [];
      const lines: string[] = [];
      if (!needles.length) return { matches: 0, lines, files };
      for (const file of [path, ...rotatedCopies(path)]) {
        if (!existsSync(file)) continue;
        let count = 0;
        for await (const line of readLogLines(file)) {
          if (!matches(line, needles)) continue;
          count += 1;
          if (lines.length < (opts.collect ?? 0)) lines.push(line);
        }
        if (count) files.push({ file: basename(file), matches: count });
      }
      return { matches: files.reduce((n, f) => n + f.matches, 0), lines, files };
    },
    async redact(needles) {
      if (!needles.length) return { removed: 0 };
      let rotated = 0;
      for (const file of rotatedCopies(path)) rotated += await redactCopy(file, (line) => matches(line, needles));
      if (!existsSync(path) || statSync(path).size === 0) return { removed: rotated };
      const tmp = `${path}.redact-${process.pid}`;
      const out = createWriteStream(tmp, { mode: statSync(path).mode });
      const size = statSync(path).size;
      let removed = rotated;
      const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8', end: Math.max(0, size - 1) }), crlfDelay: Infinity });
      for await (const line of rl) {
        if (matches(line, needles)) removed += 1;
        else out.write(`${line}\n`);
      }
      out.end();
      await finished(out);
      // Lines appended while the copy ran: copied synchronously, then the file is swapped and the
      // destination reopened, all in one turn of the event loop, so no line of this process is lost.
      const fd = openSync(path, 'r');
      const end = fstatSync(fd).size;
      const tmpFd = openSync(tmp, 'a');
      if (end > size) {
        const tail = Buffer.alloc(end - size);
        readSync(fd, tail, 0, tail.length, size);
        const kept = tail
          .toString('utf8')
          .split('\n')
          .filter((line, i, all) => (i === all.length - 1 ? line !== '' : true))
          .filter((line) => {
            if (!matches(line, needles)) return true;
            removed += 1;
            return false;
          });
        if (kept.length) writeSync(tmpFd, `${kept.join('\n')}\n`);
      }
      closeSync(tmpFd);
      closeSync(fd);
      renameSync(tmp, path);
      dest.reopen();
      return { removed };
    },
  };
}
