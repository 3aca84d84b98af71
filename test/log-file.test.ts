/**
 * The gateway's log file and the copies logrotate leaves beside it: the scan reads the file and every
 * rotated copy (plain or gzip, numbered or dated), and redaction rewrites each without the lines that
 * name a person, keeping the others and the compression.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { openLogFile, rotatedCopies } from '../core/log-file.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-logfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PERSON = '+15550301234';
const line = (msg: string, to: string) => `${JSON.stringify({ msg, to })}\n`;

describe('log file with rotated copies', () => {
  const path = join(dir, 'parley.log');
  writeFileSync(join(dir, 'parley.log.1'), line('a', PERSON) + line('b', '+15550309999'));
  writeFileSync(join(dir, 'parley.log.2.gz'), gzipSync(line('c', PERSON) + line('d', PERSON) + line('e', 'nobody')));
  writeFileSync(join(dir, 'parley.log-20261130.gz'), gzipSync(line('f', `whatsapp:${PERSON}`)));
  writeFileSync(join(dir, 'parley.log-20261129'), line('g', 'nobody'));
  // Not copies of this log: left alone.
  writeFileSync(join(dir, 'parley.log.bak'), line('h', PERSON));
  writeFileSync(join(dir, 'parley.logs'), line('i', PERSON));
  const log = openLogFile(path);
  log.stream.write(line('live', PERSON));
  log.stream.write(line('live', 'nobody'));

  it('finds the rotated copies logrotate names, and nothing else', () => {
    expect(rotatedCopies(path).map((f) => f.slice(dir.length + 1))).toEqual(['parley.log-20261129', 'parley.log-20261130.gz', 'parley.log.1', 'parley.log.2.gz']);
  });

  it('scans the file and every rotated copy, gzipped ones included', async () => {
    const r = await log.scan([PERSON], { collect: 10 });
    expect(r.files).toEqual([
      { file: 'parley.log', matches: 1 },
      { file: 'parley.log-20261130.gz', matches: 1 },
      { file: 'parley.log.1', matches: 1 },
      { file: 'parley.log.2.gz', matches: 2 },
    ]);
    expect(r.matches).toBe(5);
    expect(r.lines).toHaveLength(5);
  });

  it('redacts the file and every rotated copy, keeping the other lines and the compression', async () => {
    const untouched = statSync(join(dir, 'parley.log-20261129')).mtimeMs;
    expect(await log.redact([PERSON])).toEqual({ removed: 5 });
    expect(readFileSync(path, 'utf8')).toBe(line('live', 'nobody'));
    expect(readFileSync(join(dir, 'parley.log.1'), 'utf8')).toBe(line('b', '+15550309999'));
    expect(gunzipSync(readFileSync(join(dir, 'parley.log.2.gz'))).toString()).toBe(line('e', 'nobody'));
    expect(gunzipSync(readFileSync(join(dir, 'parley.log-20261130.gz'))).toString()).toBe('');
    // A copy without the person is not rewritten.
    expect(statSync(join(dir, 'parley.log-20261129')).mtimeMs).toBe(untouched);
    expect(readFileSync(join(dir, 'parley.log.bak'), 'utf8')).toContain(PERSON);
    expect((await log.scan([PERSON])).matches).toBe(0);
    // The live file still takes lines after the swap.
    log.stream.write(line('after', 'nobody'));
    expect(readFileSync(path, 'utf8')).toBe(line('live', 'nobody') + line('after', 'nobody'));
  });
});
