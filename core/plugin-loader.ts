/**
 * Turns config entries into plugin objects: imports each module (the kernel never imports a plugin
 * statically), checks the object's shape, rejects duplicate names and orders plugins by dependencies.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import type { AnyPlugin } from './plugin.js';
import type { PluginEntry } from './config.js';
import { ParleyError, PluginError } from './errors.js';

/** Where built-in plugins live: name -> module path. Supplied by the application, not the kernel. */
export type PluginCatalogue = Record<string, string>;

export interface LoadedPlugin {
  plugin: AnyPlugin;
  entry: PluginEntry;
}

export async function importPlugin(entry: PluginEntry, catalogue: PluginCatalogue, baseDir: string): Promise<AnyPlugin> {
  const specifier = entry.module ?? catalogue[entry.name];
  if (!specifier) {
    throw new PluginError('PARLEY_PLUGIN_NOT_FOUND', `Plugin "${entry.name}" is not built in and has no "module" path (built-in: ${Object.keys(catalogue).sort().join(', ')})`, 500, { plugin: entry.name });
  }
  const url = specifier.startsWith('.') || isAbsolute(specifier) ? pathToFileURL(isAbsolute(specifier) ? specifier : resolve(baseDir, specifier)).href : specifier;
  let mod: Record<string, unknown>;
  try {
    if (/\.[cm]?tsx?$/.test(specifier)) await typeScriptLoader();
    mod = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new PluginError('PARLEY_PLUGIN_NOT_FOUND', `Plugin "${entry.name}": cannot import ${specifier}: ${(error as Error).message}`, 500, { plugin: entry.name, cause: error });
  }
  let exported = mod.default ?? mod.plugin;
  if (typeof exported === 'function') exported = (exported as (o: unknown) => unknown)(entry.options);
  assertPluginShape(exported, entry.name, specifier);
  if (exported.name !== entry.name) {
    throw new PluginError('PARLEY_PLUGIN_INVALID', `Module ${specifier} exports plugin "${exported.name}", but the configuration names it "${entry.name}"`, 500, { plugin: entry.name });
  }
  return exported;
}

let tsxRegistered: Promise<void> | undefined;

/**
 * Compiled Parley (dist/) runs plain JavaScript; a plugin named by a `.ts` path gets tsx's ESM loader,
 * registered the first time one is imported, so deployments without TypeScript plugins never load it.
 * Under tsx or vitest (this file is itself TypeScript) a loader is already there. tsconfig is ignored so
 * that `parley` resolves through package.json "exports" to the same compiled kernel that is running.
 */
function typeScriptLoader(): Promise<void> {
  if (import.meta.url.endsWith('.ts')) return Promise.resolve();
  tsxRegistered ??= import('tsx/esm/api').then(({ register }) => {
    register({ tsconfig: false });
  });
  return tsxRegistered;
}

function assertPluginShape(value: unknown, name: string, specifier: string): asserts value is AnyPlugin {
  const problems: string[] = [];
  const p = value as Partial<AnyPlugin> | undefined;
  if (!p || typeof p !== 'object') problems.push('the module has no default export (a plugin object or a factory returning one)');
  else {
    if (typeof p.name !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(p.name)) problems.push('"name" must be lower-case letters, digits and "-"');
    if (p.kind !== 'channel' && p.kind !== 'capability') problems.push('"kind" must be "channel" or "capability"');
    if (typeof p.setup !== 'function') problems.push('"setup" must be a function');
    if (p.dependencies !== undefined && !Array.isArray(p.dependencies)) problems.push('"dependencies" must be an array of plugin names');
  }
  if (problems.length) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}" (${specifier}) is not a valid plugin: ${problems.join('; ')}`, 500, { plugin: name });
}

/** Dependencies first; ties keep configuration order. Duplicates, missing deps and cycles fail. */
export function orderPlugins(plugins: AnyPlugin[]): AnyPlugin[] {
  const byName = new Map<string, AnyPlugin>();
  for (const p of plugins) {
    if (byName.has(p.name)) throw new PluginError('PARLEY_PLUGIN_DUPLICATE', `Plugin "${p.name}" is loaded twice`, 500, { plugin: p.name });
    byName.set(p.name, p);
  }
  for (const p of plugins) {
    for (const dep of p.dependencies ?? []) {
      if (!byName.has(dep)) throw new PluginError('PARLEY_PLUGIN_DEPENDENCY_MISSING', `Plugin "${p.name}" depends on "${dep}", which is not loaded`, 500, { plugin: p.name });
    }
  }
  const ordered: AnyPlugin[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: AnyPlugin, chain: string[]) => {
    const s = state.get(p.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new PluginError('PARLEY_PLUGIN_DEPENDENCY_CYCLE', `Plugin dependency cycle: ${[...chain, p.name].join(' -> ')}`, 500, { plugin: p.name });
    state.set(p.name, 'visiting');
    for (const dep of p.dependencies ?? []) visit(byName.get(dep)!, [...chain, p.name]);
    state.set(p.name, 'done');
    ordered.push(p);
  };
  for (const p of plugins) visit(p, []);
  return ordered;
}

export async function withDeadline<T>(promise: Promise<T>, ms: number, plugin: string, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ParleyError('PARLEY_PLUGIN_SETUP_TIMEOUT', `Plugin "${plugin}": ${what} did not settle within ${ms} ms`, 500, { plugin })), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
