/**
 * `parley ingest` as a person runs it: a configuration with a medical-answers tenant, a JSONL corpus,
 * a first run that adds every document, a second that finds them unchanged, a changed file that
 * updates one and removes another, and clear errors for a wrong tenant or a bad line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../plugins/medical-answers/test-fixtures/corpus-small.jsonl', import.meta.url));

function setup(medicalAnswers = '{}') {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ingest-'));
  const config = join(dir, 'parley.yaml');
  writeFileSync(
    config,
    [
      'storage:',
      `  dataDir: ${join(dir, 'data')}`,
      'plugins: [http, medical-answers]',
      'tenants:',
      '  - id: clinic',
      '    apiKeys: [key-ingest-0123456789]',
      '    pipeline: [medical-answers]',
      '    plugins:',
      '      http: {}',
      `      medical-answers: ${medicalAnswers}`,
      '  - id: plain',
      '    plugins: {}',
      '',
    ].join('\n'),
  );
  return { dir, config };
}

function ingest(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.PARLEY_DATA_DIR;
  return spawnSync(process.execPath, [join(ROOT, 'bin/parley.js'), 'ingest', ...args], { cwd: ROOT, env, encoding: 'utf8', input: '', timeout: 120_000 });
}

describe('parley ingest', () => {
  it('adds the corpus, then finds it unchanged, then applies a change', () => {
    const { dir, config } = setup();
    const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter(Boolean);
    const first = ingest(['--tenant', 'clinic', '--config', config, FIXTURE]);
    expect(first.stderr + first.stdout).toMatch(new RegExp(`Done in [\\d.]+ s: ${lines.length} added, 0 updated, 0 unchanged, 0 removed`));
    expect(first.status).toBe(0);

    const again = ingest(['--tenant', 'clinic', '--config', config, FIXTURE]);
    expect(again.stdout).toContain(`0 added, 0 updated, ${lines.length} unchanged, 0 removed`);

    const changed = join(dir, 'changed.jsonl');
    const edited = JSON.parse(lines[0]!) as { text: string };
    edited.text += '\nOutlook\nMost people recover fully.';
    writeFileSync(changed, [JSON.stringify(edited), ...lines.slice(1, -1)].join('\n'));
    const third = ingest(['--tenant', 'clinic', '--config', config, changed]);
    expect(third.stdout).toContain(`0 added, 1 updated, ${lines.length - 2} unchanged, 1 removed`);
  }, 300_000);

  it('names a tenant that does not use medical-answers, and a bad line by its number', () => {
    const { dir, config } = setup();
    const wrong = ingest(['--tenant', 'plain', '--config', config, FIXTURE]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('tenants[1] (plain).plugins.medical-answers');
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${readFileSync(FIXTURE, 'utf8').split('\n')[0]}\n{"id": "x", "title": ""}\n`);
    const broken = ingest(['--tenant', 'clinic', '--config', config, bad]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/PARLEY_MEDICAL_ANSWERS_CORPUS_INVALID: Corpus .*bad\.jsonl line 2: /);
  }, 300_000);

  it("indexes the tenant's own lay phrases, re-indexes what a changed file touches, and names a bad line", () => {
    const { dir, config } = setup('{ layPhrases: ./lay.jsonl }');
    const lay = join(dir, 'lay.jsonl');
    writeFileSync(lay, '{"title": "Acne", "lay": ["bumps all over my forehead"]}\n{"title": "Shingles"}\n');
    const broken = ingest(['--tenant', 'clinic', '--config', config, FIXTURE]);
    expect(broken.status).toBe(2);
    expect(broken.stderr).toMatch(/tenants\[0\] \(clinic\)\.plugins\.medical-answers\.layPhrases: .*lay\.jsonl:2: lay /);
    writeFileSync(lay, '{"title": "Acne", "lay": ["bumps all over my forehead"]}\n');
    const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter(Boolean);
    expect(ingest(['--tenant', 'clinic', '--config', config, FIXTURE]).stdout).toContain(`${lines.length} added`);
    // Phrases for one more topic, by a synonym of its page ("Herpes zoster" is one of Shingles'): that page only.
    writeFileSync(lay, '{"title": "Acne", "lay": ["bumps all over my forehead"]}\n{"title": "Herpes zoster", "lay": ["band of blisters on one side"]}\n');
    expect(ingest(['--tenant', 'clinic', '--config', config, FIXTURE]).stdout).toContain(`0 added, 1 updated, ${lines.length - 1} unchanged, 0 removed`);
  }, 300_000);
});
