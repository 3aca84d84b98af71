/**
 * The few PostgreSQL wire-protocol (v3) messages the PGlite multiplexer reads, rewrites or writes
 * itself. Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { createHash } from 'node:crypto';

export const MSG = {
  parse: 0x50, // P
  bind: 0x42, // B
  describe: 0x44, // D
  close: 0x43, // C
  execute: 0x45, // E
  sync: 0x53, // S
  flush: 0x48, // H
  query: 0x51, // Q
  copyData: 0x64, // d
  copyDone: 0x63, // c
  copyFail: 0x66, // f
  terminate: 0x58, // X
  readyForQuery: 0x5a, // Z
  notification: 0x41, // A
  parameterStatus: 0x53, // S (backend)
} as const;

/** PostgreSQL keeps prepared-statement and portal names in NAMEDATALEN (64) byte keys. */
const MAX_NAME_BYTES = 63;

function cstringEnd(buf: Buffer, start: number): number {
  const end = buf.indexOf(0, start);
  return end === -1 ? buf.length : end;
}

export function readCString(buf: Buffer, start: number): string {
  return buf.toString('utf8', start, cstringEnd(buf, start));
}

/** The SQL text of a Parse or simple Query message. */
export function sqlOf(msg: Buffer): string {
  if (msg[0] === MSG.query) return readCString(msg, 5);
  return readCString(msg, cstringEnd(msg, 5) + 1);
}

/** The client's statement name of a Parse message ('' for the unnamed statement). */
export function parseName(msg: Buffer): string {
  return readCString(msg, 5);
}

/** For Describe and Close: 'S' (statement) or 'P' (portal), and the client's name. */
export function targetOf(msg: Buffer): { kind: 'S' | 'P'; name: string } {
  return { kind: msg[5] === 0x53 ? 'S' : 'P', name: readCString(msg, 6) };
}

/**
 * Gives each client its own namespace of statement and portal names: `name` becomes `<prefix>name`
 * (or a hash when that would exceed PostgreSQL's 63-byte names). The unnamed ones stay unnamed.
 */
export function namespaced(prefix: string, name: string): string {
  if (!name) return name;
  const full = prefix + name;
  if (Buffer.byteLength(full) <= MAX_NAME_BYTES) return full;
  return `${prefix}#${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}

/**
 * Rewrites the names in a Parse, Bind, Describe, Close or Execute message into the client's namespace.
 * Returns the message itself when it only uses unnamed statements and portals (the common case).
 */
export function renameInMessage(msg: Buffer, prefix: string): Buffer {
  const type = msg[0];
  // Offset of the first name and how many consecutive names follow.
  let at: number;
  let count = 1;
  if (type === MSG.parse || type === MSG.execute) at = 5;
  else if (type === MSG.bind) ((at = 5), (count = 2));
  else if (type === MSG.describe || type === MSG.close) at = 6;
  else return msg;
  const parts: Buffer[] = [msg.subarray(0, at)];
  let changed = false;
  let offset = at;
  for (let i = 0; i < count; i++) {
    const end = cstringEnd(msg, offset);
    if (end > offset) {
      parts.push(Buffer.from(namespaced(prefix, msg.toString('utf8', offset, end)) + '\0'));
      changed = true;
    } else parts.push(msg.subarray(offset, end + 1));
    offset = end + 1;
  }
  if (!changed) return msg;
  parts.push(msg.subarray(offset));
  const out = Buffer.concat(parts);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

function message(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export function readyForQuery(status: 'I' | 'T' | 'E' = 'I'): Buffer {
  return message(MSG.readyForQuery, Buffer.from(status));
}

export interface ErrorFields {
  /** SQLSTATE, e.g. 55P03 (lock_not_available). */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** An ErrorResponse: pg rejects the pending query with an error whose `code` is the SQLSTATE. */
export function errorResponse(fields: ErrorFields): Buffer {
  const parts = [`SERROR`, `VERROR`, `C${fields.code}`, `M${fields.message}`];
  if (fields.detail) parts.push(`D${fields.detail}`);
  if (fields.hint) parts.push(`H${fields.hint}`);
  return message(0x45, Buffer.from(parts.join('\0') + '\0\0'));
}

export function sync(): Buffer {
  return message(MSG.sync, Buffer.alloc(0));
}

export function simpleQuery(sql: string): Buffer {
  return message(MSG.query, Buffer.from(sql + '\0'));
}

export function closeStatement(name: string): Buffer {
  return message(MSG.close, Buffer.from(`S${name}\0`));
}

export function authenticationOk(): Buffer {
  return message(0x52, Buffer.from([0, 0, 0, 0]));
}

export function backendKeyData(pid: number, secret: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32BE(pid, 0);
  body.writeInt32BE(secret, 4);
  return message(0x4b, body);
}

/** A protocol 3.0 StartupMessage, as a client sends it. */
export function startupMessage(params: Record<string, string>): Buffer {
  const pairs = Object.entries(params).flatMap(([k, v]) => [k, v]);
  const body = Buffer.from(pairs.join('\0') + '\0\0');
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(196608, 4);
  body.copy(out, 8);
  return out;
}

/** Key/value pairs of a StartupMessage (after its length and protocol version). */
export function startupParams(msg: Buffer): Record<string, string> {
  const params: Record<string, string> = {};
  let offset = 8;
  while (offset < msg.length && msg[offset] !== 0) {
    const key = readCString(msg, offset);
    offset += Buffer.byteLength(key) + 1;
    const value = readCString(msg, offset);
    offset += Buffer.byteLength(value) + 1;
    params[key] = value;
  }
  return params;
}

/** What the multiplexer needs from one unit's output, found in one pass over message headers. */
export interface OutputScan {
  /** Status of the last ReadyForQuery, or null when the output has none (the unit is mid-sequence). */
  status: 'I' | 'T' | 'E' | null;
  /** NotificationResponse messages (to be given to every listening client). */
  notifications: Buffer[];
  /** The output without the notifications. */
  own: Buffer;
  /** ParameterStatus values reported in this output (application_name, TimeZone, ...). */
  parameters: Record<string, string>;
}

export function scanOutput(output: Buffer): OutputScan {
  let status: OutputScan['status'] = null;
  const notifications: Buffer[] = [];
  const parameters: Record<string, string> = {};
  let ownParts: Buffer[] | null = null;
  let offset = 0;
  let ownFrom = 0;
  while (offset + 5 <= output.length) {
    const type = output[offset]!;
    const end = offset + output.readInt32BE(offset + 1) + 1;
    if (type === MSG.readyForQuery) status = String.fromCharCode(output[offset + 5]!) as 'I' | 'T' | 'E';
    else if (type === MSG.parameterStatus) {
      const key = readCString(output, offset + 5);
      parameters[key] = readCString(output, offset + 5 + Buffer.byteLength(key) + 1);
    } else if (type === MSG.notification) {
      ownParts ??= [];
      ownParts.push(output.subarray(ownFrom, offset));
      notifications.push(output.subarray(offset, end));
      ownFrom = end;
    }
    offset = end;
  }
  if (!ownParts) return { status, notifications, own: output, parameters };
  ownParts.push(output.subarray(ownFrom));
  return { status, notifications, own: Buffer.concat(ownParts), parameters };
}
