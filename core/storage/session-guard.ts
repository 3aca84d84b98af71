/**
 * Which SQL touches session state of the one PGlite session that every client shares.
 *
 * Settings (`SET`, `RESET`, `set_config`) are allowed: the multiplexer saves and restores them per
 * client. LISTEN is shared (notifications go to every listening client). What cannot be kept per
 * client is refused with a reason, before it runs: session temporary objects, SQL-level prepared
 * statements, cursors WITH HOLD, DISCARD, role changes and session-level advisory locks (every client
 * holds the same session, so such a lock would exclude nobody).
 */

export interface SqlVerdict {
  /** Changes session settings: the multiplexer must save them when another client takes the session. */
  settings: boolean;
  listen: boolean;
  /** Why this SQL cannot run on a shared session, or undefined. */
  refused: string | undefined;
}

const PLAIN: SqlVerdict = Object.freeze({ settings: false, listen: false, refused: undefined });

/** Cheap first look: SQL without any of these words touches no session state. */
const MAYBE = /set|listen|temp|prepare|deallocate|discard|hold|role|authorization|advisory/i;

const SETTINGS_START = /^(?:SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b|SESSION\s+CHARACTERISTICS\b)|RESET\b)/i;
const SET_CONFIG = /\bset_config\s*\(/i;
const LISTEN_START = /^LISTEN\b/i;

const REFUSALS: [RegExp, string][] = [
  [/^SET\s+(?:SESSION\s+)?(?:ROLE|SESSION\s+AUTHORIZATION)\b/i, 'SET ROLE / SESSION AUTHORIZATION would change the role of every client'],
  [
    /^CREATE\s+(?:OR\s+REPLACE\s+)?(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\s+(?:UNLOGGED\s+)?(?!TABLE\b[\s\S]*\bON\s+COMMIT\s+DROP\b)/i,
    'a temporary object would be visible to every client; create temporary tables with ON COMMIT DROP inside a transaction',
  ],
  [/^SELECT\b[\s\S]*\bINTO\s+(?:TEMP|TEMPORARY)\b/i, 'SELECT INTO TEMP would create a table visible to every client; use CREATE TEMP TABLE ... ON COMMIT DROP'],
  [/^(?:PREPARE|DEALLOCATE)\b/i, "SQL-level PREPARE/DEALLOCATE share one namespace; use the protocol's named statements (pg's `name` option)"],
  [/^DISCARD\b/i, "DISCARD would drop every client's statements, settings and LISTENs"],
  [/^DECLARE\b[\s\S]*\bWITH\s+HOLD\b/i, 'a cursor WITH HOLD outlives the transaction and would be visible to every client; use a cursor inside a transaction'],
  [/\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(/i, 'a session-level advisory lock excludes nobody when every client shares the session; use pg_advisory_xact_lock in a transaction'],
];

const cache = new Map<string, SqlVerdict>();
const CACHE_LIMIT = 1000;

export function classifySql(sql: string): SqlVerdict {
  if (!MAYBE.test(sql)) return PLAIN;
  let verdict = cache.get(sql);
  if (verdict) return verdict;
  verdict = PLAIN;
  for (const statement of topLevelStatements(sql)) {
    const refusal = REFUSALS.find(([pattern]) => pattern.test(statement));
    if (refusal) {
      verdict = { settings: false, listen: false, refused: refusal[1] };
      break;
    }
    const settings = SETTINGS_START.test(statement) || SET_CONFIG.test(statement);
    const listen = LISTEN_START.test(statement);
    if (settings || listen) verdict = { settings: settings || verdict.settings, listen: listen || verdict.listen, refused: undefined };
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(sql, verdict);
  return verdict;
}

/**
 * The statements of a query string, each starting at its first keyword. Quoted strings, quoted
 * identifiers, dollar-quoted bodies and comments are skipped, so a function body's statements are
 * not taken for top-level ones.
 */
export function topLevelStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = -1;
  let i = 0;
  const n = sql.length;
  const push = (end: number) => {
    if (start !== -1) statements.push(sql.slice(start, end));
    start = -1;
  };
  while (i < n) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') ((depth += 1), (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') ((depth -= 1), (i += 2));
        else i += 1;
      }
      continue;
    }
    if (c === ';') {
      push(i);
      i += 1;
      continue;
    }
    if (start === -1 && !/\s/.test(c)) start = i;
    if (c === "'" || c === '"') {
      const escapes = c === "'" && (sql[i - 1] === 'E' || sql[i - 1] === 'e');
      i += 1;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i += 1;
      }
      i += 1;
      continue;
    }
    if (c === '$') {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
        continue;
      }
    }
    i += 1;
  }
  push(n);
  return statements;
}
