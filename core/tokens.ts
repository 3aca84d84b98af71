/** Explicit tsyringe tokens: nothing relies on decorator metadata (esbuild emits none). */
export const TOKENS = {
  Logger: Symbol('parley.Logger'),
  Pool: Symbol('parley.Pool'),
  Consent: Symbol('parley.Consent'),
  Alerts: Symbol('parley.Alerts'),
  Tenants: Symbol('parley.Tenants'),
  Gateway: Symbol('parley.Gateway'),
} as const;
