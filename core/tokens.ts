/** Explicit tsyringe tokens: nothing relies on decorator metadata (esbuild emits none). */
import { token } from './plugin.js';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { ConsentStore } from './plugin.js';
import type { AlertHub } from './alerts.js';
import type { TenantDirectory } from './tenancy.js';
import type { Gateway } from './gateway.js';

export const TOKENS = {
  Logger: token<Logger>('parley.Logger'),
  Pool: token<Pool>('parley.Pool'),
  Consent: token<ConsentStore>('parley.Consent'),
  Alerts: token<AlertHub>('parley.Alerts'),
  Tenants: token<TenantDirectory>('parley.Tenants'),
  Gateway: token<Gateway>('parley.Gateway'),
} as const;
