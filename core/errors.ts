/**
 * The catalogue of Parley's errors. Every error carries a stable string `code`; API error bodies are
 * `{ error: { code, message } }` and the HTTP status comes from the class. The kernel's codes are a
 * closed list; plugins add `PARLEY_<PLUGIN>_<WHAT>` codes with `pluginErrorCode`.
 */

/** The kernel's own codes: a closed catalogue, so a misspelt code is a type error. */
export const KERNEL_ERROR_CODES = [
  'PARLEY_CONFIG_INVALID',
  'PARLEY_CONFIG_NOT_FOUND',
  'PARLEY_PLUGIN_NOT_FOUND',
  'PARLEY_PLUGIN_INVALID',
  'PARLEY_PLUGIN_DUPLICATE',
  'PARLEY_PLUGIN_DEPENDENCY_MISSING',
  'PARLEY_PLUGIN_DEPENDENCY_CYCLE',
  'PARLEY_PLUGIN_SETUP_FAILED',
  'PARLEY_PLUGIN_SETUP_TIMEOUT',
  'PARLEY_PLUGIN_METRIC_TAKEN',
  'PARLEY_SCHEDULE_INVALID',
  'PARLEY_STAGE_UNKNOWN',
  'PARLEY_STAGE_DUPLICATE',
  'PARLEY_STAGE_FAILED',
  'PARLEY_ADDRESS_TAKEN',
  'PARLEY_TENANT_UNKNOWN',
  'PARLEY_MIGRATION_FAILED',
  'PARLEY_STORAGE_UNAVAILABLE',
  /** A backup's payload fails AES-GCM authentication: PARLEY_BACKUP_KEY is not the key it was written with, or the file was altered. */
  'PARLEY_BACKUP_UNREADABLE',
  'PARLEY_SENDER_MISSING',
  'PARLEY_SEND_FAILED',
  'PARLEY_UNAUTHENTICATED',
  'PARLEY_FORBIDDEN',
  /** A change made with a console session cookie without the session's CSRF token (`X-Parley-CSRF`). */
  'PARLEY_CSRF',
  'PARLEY_NOT_FOUND',
  'PARLEY_BAD_REQUEST',
  'PARLEY_INBOUND_UNSTORABLE',
  /** An inbound filter (`ctx.inboundFilter`) threw: the message is not stored unfiltered (500, the provider retries). */
  'PARLEY_INBOUND_FILTER_FAILED',
  /** `gateway.resume` named a stage that is not in the message's pipeline (the configuration changed). */
  'PARLEY_RESUME_STAGE_UNKNOWN',
  'PARLEY_PAYLOAD_TOO_LARGE',
  'PARLEY_RATE_LIMITED',
  'PARLEY_NOT_IMPLEMENTED',
  'PARLEY_SHUTTING_DOWN',
  'PARLEY_INTERNAL',
  /** The embedded database's one session is held by another client that is not finishing (SQLSTATE 55P03). */
  'PARLEY_DB_BUSY',
  /** Session state one shared PGlite session cannot keep per client, refused before it runs (SQLSTATE 0A000). */
  'PARLEY_DB_SESSION_STATE',
  /** The AI service will not call the provider now: its circuit breaker is open (callers answer without a model). */
  'PARLEY_AI_UNAVAILABLE',
  /** An AI provider call took longer than the provider's `timeoutMs`. */
  'PARLEY_AI_TIMEOUT',
  /** An AI provider refused the call (400, 401, 403, 404...): retrying would not help. */
  'PARLEY_AI_REJECTED',
  /** An AI provider call failed after its retries (429, 5xx, network), or was aborted by the caller. */
  'PARLEY_AI_FAILED',
  /** An AI interceptor (`ctx.ai.intercept`: a budget, a policy) refused the call, or degraded it to `local`. */
  'PARLEY_AI_REFUSED',
] as const;

export type KernelErrorCode = (typeof KERNEL_ERROR_CODES)[number];

declare const pluginErrorCodeBrand: unique symbol;

/**
 * A plugin's own code, `PARLEY_<PLUGIN>_<WHAT>`, made only by {@link pluginErrorCode}: the brand keeps a
 * bare string from passing for a code, so the kernel's catalogue stays closed while plugins add theirs.
 */
export type PluginErrorCode = `PARLEY_${string}` & { readonly [pluginErrorCodeBrand]: true };

export type ErrorCode = KernelErrorCode | PluginErrorCode;

const kernelCodes: ReadonlySet<string> = new Set(KERNEL_ERROR_CODES);

/**
 * A plugin's error code: `PARLEY_`, the plugin's name in upper case, `_`, then what went wrong.
 * @example
 * const TWIML_TOO_LARGE = pluginErrorCode('twilio-sms', 'TWIML_TOO_LARGE'); // 'PARLEY_TWILIO_SMS_TWIML_TOO_LARGE'
 * throw new PluginError(TWIML_TOO_LARGE, 'TwiML is over 64 kB', 500, { plugin: 'twilio-sms' });
 */
export function pluginErrorCode(plugin: string, what: string): PluginErrorCode {
  const code = `PARLEY_${plugin.toUpperCase().replace(/-/g, '_')}_${what}`;
  if (!/^PARLEY_[A-Z0-9]+(?:_[A-Z0-9]+)+$/.test(code)) {
    throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${plugin}": error code ${code} must be PARLEY_<PLUGIN>_<WHAT> in upper-case letters, digits and "_"`, 500, { plugin });
  }
  if (kernelCodes.has(code)) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${plugin}": error code ${code} belongs to the kernel's catalogue`, 500, { plugin });
  return code as PluginErrorCode;
}

export interface ParleyErrorOptions {
  cause?: unknown;
  plugin?: string;
  details?: Record<string, unknown>;
}

export class ParleyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly plugin: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, status = 500, options: ParleyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.plugin = options.plugin;
    this.details = options.details;
  }

  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

/** A configuration problem, found before anything starts. `issues` name tenant, plugin and key path. */
export class ConfigError extends ParleyError {
  readonly issues: string[];
  constructor(issues: string[], options: ParleyErrorOptions = {}) {
    super('PARLEY_CONFIG_INVALID', `Invalid configuration:\n  - ${issues.join('\n  - ')}`, 500, options);
    this.issues = issues;
  }
}

export class PluginError extends ParleyError {}

export class StageError extends ParleyError {
  readonly stage: string;
  constructor(stage: string, plugin: string, cause: unknown) {
    super('PARLEY_STAGE_FAILED', `Stage "${stage}" of plugin "${plugin}" failed: ${describe(cause)}`, 500, { cause, plugin });
    this.stage = stage;
  }
}

export class HttpError extends ParleyError {}

export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new HttpError('PARLEY_BAD_REQUEST', message, 400, details ? { details } : {});
export const unauthenticated = (message = 'A valid API key is required') =>
  new HttpError('PARLEY_UNAUTHENTICATED', message, 401);
export const forbidden = (message = 'This key may not act on that tenant') => new HttpError('PARLEY_FORBIDDEN', message, 403);
export const notFound = (message = 'Not found') => new HttpError('PARLEY_NOT_FOUND', message, 404);

/** Raised by a channel sender. `retryable` decides between a retry with backoff and a dead letter. */
export class SendError extends ParleyError {
  readonly retryable: boolean;
  readonly providerCode: string | undefined;
  /** True when the provider may have accepted the message although we saw an error (timeouts). */
  readonly outcomeUnknown: boolean;
  readonly retryAfterMs: number | undefined;
  /** The provider refuses this recipient (e.g. Twilio 21610, unsubscribed): the item becomes `blocked`. */
  readonly blocked: boolean;
  constructor(
    message: string,
    opts: { retryable: boolean; providerCode?: string | number; outcomeUnknown?: boolean; retryAfterMs?: number; blocked?: boolean } & ParleyErrorOptions,
  ) {
    super('PARLEY_SEND_FAILED', message, 502, opts);
    this.retryable = opts.retryable;
    this.providerCode = opts.providerCode === undefined ? undefined : String(opts.providerCode);
    this.outcomeUnknown = opts.outcomeUnknown ?? false;
    this.retryAfterMs = opts.retryAfterMs;
    this.blocked = opts.blocked ?? false;
  }
}

/** A feature a plugin or channel does not offer. Thrown, never silently ignored. */
export class NotImplementedError extends ParleyError {
  constructor(feature: string, plugin?: string) {
    super('PARLEY_NOT_IMPLEMENTED', `${feature} is not implemented${plugin ? ` by ${plugin}` : ''}`, 501, plugin ? { plugin } : {});
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : JSON.stringify(error);
}
