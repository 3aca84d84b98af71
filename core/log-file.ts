/**
 * The log file the gateway keeps when `log.file` is set. Lines are appended synchronously (one write
 * per line), so the gateway can rewrite the file without losing a line: erasure removes every line
 * that names a person (an address, or its `ph_` hash), verification counts them.
 *
 * Rotation is left to the operator (logrotate with `copytruncate`); the rotated copies are outside
 * what the gateway can reach and must be kept no longer than the retention the operator documents.
 */
import { createReadStream, closeSync, createWriteStream, existsSync, openSync, readSync, renameSync, statSync, writeSync, fstatSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import pino from 'pino';

export interface LogFile {
  readonly path: string;
  readonly stream: pino.DestinationStream;
  /** Lines containing any needle (streamed: the file is never read at once). */
  scan(needles: readonly string[], opts?: { collect?: number }): Promise<{ matches: number; lines: string[] }>;
  /** Rewrites the file without the lines containing any needle; returns how many were removed. */
  redact(needles: readonly string[]): Promise<{ removed: number }>;
}

export function openLogFile(path: string): LogFile {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true, append: true });
  const matches = (line: string, needles: readonly string[]) => needles.some((n) => line.includes(n));
  return {
    path,
    stream: dest,
    async scan(needles, opts = {}) {
      if (!existsSync(path) || !needles.length) return { matches: 0, lines: [] };
      let count = 0;
      const lines: string[] = [];
      const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
      for await (const line of rl) {
        if (!matches(line, needles)) continue;
        count += 1;
        if (lines.length < (opts.collect ?? 0)) lines.push(line);
      }
      return { matches: count, lines };
    },
    async redact(needles) {
      if (!existsSync(path) || !needles.length) return { removed: 0 };
      if (statSync(path).size === 0) return { removed: 0 };
      const tmp = `${path}.redact-${process.pid}`;
      const out = createWriteStream(tmp, { mode: statSync(path).mode });
      const size = statSync(path).size;
      let removed = 0;
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
