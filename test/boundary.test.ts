/**
 * The kernel never imports a plugin or channel; plugins reach the kernel only through its public module
 * (`parley`, core/public.ts) and their tests through the author kit (`parley/testing`), exactly as a
 * third-party plugin installed from npm does.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<'dependencies' | 'peerDependencies' | 'devDependencies', Record<string, string>>;
const runtime = { ...pkg.dependencies, ...pkg.peerDependencies };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

/** Repository-relative targets of a file's relative imports. */
function imports(file: string): string[] {
  return specifiers(file)
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(ROOT, resolve(dirname(file), s)));
}

/** `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`. */
const packageName = (spec: string) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

describe('module boundaries', () => {
  it('core/ imports nothing from channels/, plugins/, examples/, config/ or test/', () => {
    const offending = files(join(ROOT, 'core')).flatMap((f) =>
      imports(f)
        .filter((target) => /^(channels|plugins|examples|config|test)\//.test(target))
        .map((target) => `${relative(ROOT, f)} -> ${target}`),
    );
    expect(offending).toEqual([]);
  });

  it('a plugin imports only its own folder, `parley` (`parley/testing` in tests), node built-ins and npm packages', () => {
    const offending: string[] = [];
    for (const area of ['channels', 'plugins', 'examples']) {
      for (const f of files(join(ROOT, area))) {
        const file = relative(ROOT, f);
        const own = file.split('/').slice(0, 2).join('/');
        const isTest = f.endsWith('.test.ts');
        for (const spec of specifiers(f)) {
          if (spec.startsWith('.')) {
            const target = relative(ROOT, resolve(dirname(f), spec));
            if (!target.startsWith(`${own}/`)) offending.push(`${file} -> ${target} (outside ${own}/)`);
          } else if (spec === 'parley' || (isTest && spec === 'parley/testing')) continue;
          else if (spec.startsWith('parley/')) offending.push(`${file} -> ${spec} (only "parley"${isTest ? ' and "parley/testing"' : ''})`);
          else if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
          else if (!(packageName(spec) in runtime) && !(isTest && packageName(spec) in pkg.devDependencies)) offending.push(`${file} -> ${spec} (not a dependency in package.json)`);
        }
      }
    }
    expect(offending).toEqual([]);
  });
});
