/** The kernel never imports a plugin or channel; plugins reach the kernel only through its public modules. */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(dirname(file), s)));
}

describe('module boundaries', () => {
  it('core/ imports nothing from channels/, plugins/, examples/, config/ or test/', () => {
    const offending = files(join(ROOT, 'core')).flatMap((f) =>
      imports(f)
        .filter((target) => /^(channels|plugins|examples|config|test)\//.test(target))
        .map((target) => `${relative(ROOT, f)} -> ${target}`),
    );
    expect(offending).toEqual([]);
  });

  it('plugins and channels do not import each other (they talk through the kernel)', () => {
    const offending: string[] = [];
    for (const area of ['channels', 'plugins']) {
      for (const f of files(join(ROOT, area)).filter((f) => !f.endsWith('.test.ts'))) {
        const own = relative(ROOT, f).split('/').slice(0, 2).join('/');
        for (const target of imports(f)) {
          if (/^(channels|plugins)\//.test(target) && !target.startsWith(`${own}/`) && !target.startsWith('channels/twilio-sms/')) offending.push(`${relative(ROOT, f)} -> ${target}`);
        }
      }
    }
    expect(offending).toEqual([]);
  });
});
