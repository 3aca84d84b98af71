/**
 * Finds keys a zod schema does not know, so a typo (`bodyLimt`) is an error with a suggestion
 * instead of a setting silently dropped. zod's default `z.object` strips unknown keys, and plugin
 * authors write `z.object`, so the kernel walks the value beside the schema rather than asking every
 * plugin to use `z.strictObject`. Free-form maps stay free: `z.record` with string keys,
 * `z.looseObject`, `.catchall()`, `z.unknown()` and `z.any()` accept any key.
 */
import { z } from 'zod';

export interface UnknownKey {
  /** Path of the unknown key itself, e.g. `['server', 'bodyLimt']`. */
  path: PropertyKey[];
  key: string;
  /** The keys allowed at that level. */
  known: string[];
}

type Def = { type: string } & Record<string, unknown>;
const defOf = (schema: z.core.$ZodType): Def => schema._zod.def as unknown as Def;

/** What an object-shaped schema allows: named fields, and what any other key may hold. */
interface ObjectView {
  fields: Map<string, z.core.$ZodType | undefined>;
  /** `closed`: other keys are errors; `open`: anything goes; a schema: other keys' values. */
  rest: 'closed' | 'open' | z.core.$ZodType;
}

/** Keys of `value` that `schema` would strip or refuse, at every depth. */
export function findUnknownKeys(schema: z.core.$ZodType, value: unknown, path: PropertyKey[] = []): UnknownKey[] {
  const out: UnknownKey[] = [];
  walk(schema, value, path, out);
  return out;
}

function walk(schema: z.core.$ZodType | undefined, value: unknown, path: PropertyKey[], out: UnknownKey[]): void {
  const s = schema && unwrap(schema, value);
  if (!s || value === null || typeof value !== 'object') return;
  const def = defOf(s);
  if (Array.isArray(value)) {
    if (def.type === 'array') value.forEach((v, i) => walk(def.element as z.core.$ZodType, v, [...path, i], out));
    if (def.type === 'tuple') {
      const items = def.items as z.core.$ZodType[];
      value.forEach((v, i) => walk(items[i] ?? (def.rest as z.core.$ZodType | undefined), v, [...path, i], out));
    }
    return;
  }
  const view = objectView(s, value);
  if (!view) return;
  const known = [...view.fields.keys()];
  for (const [key, v] of Object.entries(value)) {
    if (view.fields.has(key)) walk(view.fields.get(key), v, [...path, key], out);
    else if (view.rest === 'closed') out.push({ path: [...path, key], key, known });
    else if (view.rest !== 'open') walk(view.rest, v, [...path, key], out);
  }
}

/** Looks through wrappers that do not change the shape of the input. */
function unwrap(schema: z.core.$ZodType, value: unknown): z.core.$ZodType | undefined {
  let s = schema;
  for (let depth = 0; depth < 64; depth++) {
    const def = defOf(s);
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'catch':
      case 'readonly':
      case 'nonoptional':
        s = def.innerType as z.core.$ZodType;
        break;
      case 'lazy':
        s = (def.getter as () => z.core.$ZodType)();
        break;
      case 'pipe': {
        // `.transform()` keeps the input schema in `in`; `z.preprocess` puts a function there, and
        // what it returns is not the value the author wrote, so nothing is checked below it.
        const input = def.in as z.core.$ZodType;
        if (defOf(input).type === 'transform') return undefined;
        s = input;
        break;
      }
      case 'union': {
        const chosen = chooseOption(def.options as z.core.$ZodType[], value);
        if (!chosen) return s;
        s = chosen;
        break;
      }
      default:
        return s;
    }
  }
  return undefined;
}

/** The first option that accepts the value; with none, the union itself (its keys are merged below). */
function chooseOption(options: z.core.$ZodType[], value: unknown): z.core.$ZodType | undefined {
  for (const option of options) {
    try {
      if (z.safeParse(option, value).success) return option;
    } catch {
      // An option with async refinements cannot be tried synchronously: try the next.
    }
  }
  return undefined;
}

function objectView(schema: z.core.$ZodType, value: object): ObjectView | undefined {
  const def = defOf(schema);
  switch (def.type) {
    case 'object': {
      const catchall = def.catchall as z.core.$ZodType | undefined;
      const rest = !catchall || defOf(catchall).type === 'never' ? 'closed' : isAnything(catchall) ? 'open' : catchall;
      return { fields: new Map(Object.entries(def.shape as Record<string, z.core.$ZodType>)), rest };
    }
    case 'record': {
      const keyDef = defOf(def.keyType as z.core.$ZodType);
      const valueType = def.valueType as z.core.$ZodType;
      if (keyDef.type !== 'enum') return { fields: new Map(), rest: isAnything(valueType) ? 'open' : valueType };
      const keys = Object.values(keyDef.entries as Record<string, string | number>).map(String);
      return { fields: new Map(keys.map((k) => [k, valueType])), rest: 'closed' };
    }
    case 'intersection': {
      const left = objectView(unwrap(def.left as z.core.$ZodType, value) ?? z.unknown(), value);
      const right = objectView(unwrap(def.right as z.core.$ZodType, value) ?? z.unknown(), value);
      if (!left || !right) return undefined;
      return { fields: new Map([...left.fields, ...right.fields]), rest: left.rest === 'closed' ? right.rest : left.rest };
    }
    case 'union': {
      // No option accepted the value: zod reports why. Only keys no option knows are reported here,
      // without looking deeper, since which option was meant is unknown.
      // Options that are not objects (a plugin entry may be a plain name) were not meant.
      const views = (def.options as z.core.$ZodType[]).flatMap((o) => {
        const inner = unwrap(o, value);
        const view = inner && objectView(inner, value);
        return view ? [view] : [];
      });
      if (views.length === 0 || views.some((v) => v.rest !== 'closed')) return undefined;
      const fields = new Map<string, undefined>();
      for (const v of views) for (const k of v.fields.keys()) fields.set(k, undefined);
      return { fields, rest: 'closed' };
    }
    default:
      return undefined;
  }
}

const isAnything = (schema: z.core.$ZodType) => ['unknown', 'any'].includes(defOf(schema).type);

/**
 * The known key closest to `key` (case-insensitive edit distance, a swap of two neighbours counting
 * once), when it is close enough to be the likely intent.
 * @example closestKey('bodyLimt', ['host', 'bodyLimit']) // 'bodyLimit'
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const allowed = Math.max(1, Math.floor(Math.max(key.length, best?.length ?? 0) / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** `unknown key, did you mean "bodyLimit"?`, or the list of known keys when none is close. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const close = closestKey(key, known);
  if (close) return `unknown key, did you mean "${close}"?`;
  return known.length ? `unknown key (known keys: ${[...known].sort().join(', ')})` : 'unknown key (nothing is expected here)';
}
