/**
 * What operators are told when a number's session changes state: alerts raised and resolved by key
 * (logged out, waiting for a QR scan, disconnected, logged in with the wrong phone), and the QR code
 * drawn on the terminal when `printQr` is on.
 */
import QRCode from 'qrcode';
import type { Logger } from 'pino';
import type { AlertApi } from 'parley';
import type { SessionEvents } from './session.js';
import type { SessionState } from './types.js';

/** Where the tenant's QR code is served (see routes.ts). */
export const qrPath = (tenantId: string) => `/v1/tenants/${encodeURIComponent(tenantId)}/whatsapp-web/qr.png`;

export interface StateAlertsConfig {
  alerts: AlertApi;
  log: Logger;
  tenantId: string;
  number: string;
  /** The public base URL without a trailing slash, or empty. */
  baseUrl: string;
  /** Draw the QR code on this terminal; undefined when `printQr` is off. */
  terminal: { write(text: string): unknown } | undefined;
}

/** The alerts of one number, kept in line with its session state. */
export function stateAlerts(c: StateAlertsConfig): (state: SessionState, info: Parameters<SessionEvents['state']>[1]) => void {
  const { alerts, tenantId, number } = c;
  let loggedOutAlert = false;
  return (state, info) => {
    const base = { tenantId };
    const details = { number, ...(info.detail ? { reason: info.detail } : {}), ...(c.baseUrl ? { url: `${c.baseUrl}${qrPath(tenantId)}` } : {}) };
    switch (state) {
      case 'logged-out':
        loggedOutAlert = true;
        alerts.resolve('whatsapp-web.disconnected', tenantId);
        alerts.raise({ ...base, key: 'whatsapp-web.logged-out', severity: 'critical', summary: `WhatsApp number ${number} is logged out (or banned): scan a new QR code`, details });
        break;
      case 'qr':
        if (!loggedOutAlert) alerts.raise({ ...base, key: 'whatsapp-web.needs-qr', severity: 'warning', summary: `WhatsApp number ${number} waits for a QR code scan`, details });
        if (c.terminal && info.qr) printQr(c.terminal, c.log, tenantId, number, info.qr);
        break;
      case 'disconnected':
        alerts.raise({ ...base, key: 'whatsapp-web.disconnected', severity: 'warning', summary: `WhatsApp number ${number} disconnected; reconnecting`, details });
        break;
      case 'ready': {
        loggedOutAlert = false;
        for (const key of ['whatsapp-web.logged-out', 'whatsapp-web.disconnected', 'whatsapp-web.needs-qr']) alerts.resolve(key, tenantId);
        const loggedInAs = info.wid?.split('@')[0];
        if (loggedInAs && `+${loggedInAs}` !== number) {
          alerts.raise({ ...base, key: 'whatsapp-web.wrong-number', severity: 'warning', summary: `The QR code was scanned with +${loggedInAs}, not the configured ${number}`, details: { configured: number, loggedInAs: `+${loggedInAs}` } });
        } else alerts.resolve('whatsapp-web.wrong-number', tenantId);
        break;
      }
      case 'standby':
        loggedOutAlert = false;
        for (const key of ['whatsapp-web.logged-out', 'whatsapp-web.disconnected', 'whatsapp-web.needs-qr', 'whatsapp-web.wrong-number']) alerts.resolve(key, tenantId);
        break;
      default:
        break;
    }
  };
}

function printQr(terminal: { write(text: string): unknown }, log: Logger, tenantId: string, number: string, qr: string): void {
  QRCode.toString(qr, { type: 'terminal', small: true })
    .then((art) => {
      terminal.write(`\nWhatsApp Web login for tenant "${tenantId}" (${number}): on the phone, open WhatsApp > Linked devices > Link a device and scan:\n${art}\n`);
      log.info({ tenant: tenantId, png: qrPath(tenantId) }, 'WhatsApp Web needs a QR scan: printed on the terminal and served at the admin route');
    })
    .catch((error: unknown) => log.warn({ err: error }, 'could not draw the QR code'));
}
