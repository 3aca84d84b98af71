/**
 * CSV import: a small RFC 4180 reader (quoted fields, doubled quotes, CRLF or LF, a header row) and the
 * row checks, each row reported with its line number and every problem found, so a file can be fixed
 * in one pass. A dry run checks and reports without writing.
 */
import type { ContactAddress, ContactInput } from './store.js';

/** Rows of cells; each row carries the line it starts on (1-based). Throws on an unterminated quote. */
export function parseCsv(text: string): { line: number; cells: string[] }[] {
  const out: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let i = 0;
  const s = text.replace(/^\uFEFF/, '');
  const endRow = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0] === '')) out.push({ line: rowLine, cells });
    cells = [];
    cell = '';
  };
  while (i < s.length) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        cell += ch;
      }
      i++;
      continue;
    }
    if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else if (ch === '\r' && s[i + 1] === '\n') {
      i++;
      continue;
    } else if (ch === '\n' || ch === '\r') {
      endRow();
      line++;
      rowLine = line;
    } else cell += ch;
    i++;
  }
  if (quoted) throw new Error(`Unterminated quoted field starting on line ${rowLine}`);
  if (cell !== '' || cells.length) endRow();
  return out;
}

export interface ImportRow {
  line: number;
  input: ContactInput & { addresses: ContactAddress[] };
}

export interface RowError {
  line: number;
  errors: string[];
}

const E164 = /^\+[1-9]\d{6,14}$/;
const KNOWN = new Set(['name', 'channel', 'address', 'phone', 'timezone', 'language', 'tags']);

export function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function validLanguage(tag: string): boolean {
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}

/**
 * Reads the rows of an import. Columns: `name`, `channel`, `address` (or `phone`: E.164), `timezone`,
 * `language`, `tags` (separated by `;` or `|`), and any other column as a custom field (`field:x` or `x`).
 */
export function readImport(text: string, opts: { defaultChannel: string | undefined; maxRows: number }): { rows: ImportRow[]; errors: RowError[]; header: string[] } {
  const table = parseCsv(text);
  const headerRow = table.shift();
  if (!headerRow) return { rows: [], errors: [{ line: 1, errors: ['The file is empty: a header row is required (name,phone,tags,...)'] }], header: [] };
  const header = headerRow.cells.map((h) => h.trim());
  const lower = header.map((h) => h.toLowerCase());
  const fileErrors: string[] = [];
  if (!lower.includes('address') && !lower.includes('phone')) fileErrors.push('The header has no "address" or "phone" column');
  const dupes = lower.filter((h, i) => h && lower.indexOf(h) !== i);
  if (dupes.length) fileErrors.push(`Columns named twice: ${[...new Set(dupes)].join(', ')}`);
  if (table.length > opts.maxRows) fileErrors.push(`${table.length} rows: at most ${opts.maxRows} per import`);
  if (fileErrors.length) return { rows: [], errors: [{ line: headerRow.line, errors: fileErrors }], header };

  const rows: ImportRow[] = [];
  const errors: RowError[] = [];
  const seen = new Map<string, number>();
  for (const { line, cells } of table) {
    const problems: string[] = [];
    if (cells.length !== header.length) problems.push(`${cells.length} cells where the header has ${header.length}`);
    const get = (name: string) => {
      const i = lower.indexOf(name);
      return i >= 0 ? (cells[i] ?? '').trim() : '';
    };
    const phone = get('phone');
    const rawAddress = get('address') || phone;
    const channel = get('channel') || opts.defaultChannel;
    if (!rawAddress) problems.push('address: missing (an "address" or "phone" value is required)');
    else if (phone && !get('address') && !E164.test(phone.replace(/[\s().-]/g, ''))) problems.push(`phone: "${phone}" is not an E.164 number (+ and country code, e.g. +15551234567)`);
    if (!channel) problems.push('channel: missing (add a "channel" column or set the tenant\'s contacts.defaultChannel)');
    const address = phone && !get('address') ? phone.replace(/[\s().-]/g, '') : rawAddress;
    const timezone = get('timezone');
    if (timezone && !validZone(timezone)) problems.push(`timezone: "${timezone}" is not an IANA time zone (e.g. America/New_York)`);
    const language = get('language');
    if (language && !validLanguage(language)) problems.push(`language: "${language}" is not a BCP 47 tag (e.g. es, en-US)`);
    if (address && channel) {
      const key = `${channel}\u0000${address}`;
      const first = seen.get(key);
      if (first !== undefined) problems.push(`address: the same ${channel} address as line ${first}`);
      else seen.set(key, line);
    }
    const fields: Record<string, unknown> = {};
    header.forEach((h, i) => {
      const name = h.toLowerCase().startsWith('field:') ? h.slice(6).trim() : h;
      if (KNOWN.has(h.toLowerCase()) || !name) return;
      const value = (cells[i] ?? '').trim();
      if (value !== '') fields[name] = value;
    });
    if (problems.length) {
      errors.push({ line, errors: problems });
      continue;
    }
    const tags = get('tags')
      .split(/[;|]/)
      .map((t) => t.trim())
      .filter(Boolean);
    rows.push({
      line,
      input: {
        ...(get('name') ? { name: get('name') } : {}),
        ...(timezone ? { timezone } : {}),
        ...(language ? { language } : {}),
        ...(tags.length ? { tags } : {}),
        fields,
        addresses: [{ channel: channel!, address }],
      },
    });
  }
  return { rows, errors, header };
}
