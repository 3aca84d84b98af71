/**
 * The catalogue of built-in plugins: name -> module path. The kernel receives it as data and imports
 * these modules exactly as it imports a third-party plugin named by path in the configuration.
 */
import { fileURLToPath } from 'node:url';

const at = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export const builtinPlugins: Record<string, string> = {
  http: at('../channels/http/index.ts'),
  'keyword-replies': at('../plugins/keyword-replies/index.ts'),
  'twilio-sms': at('../channels/twilio-sms/index.ts'),
  'twilio-voice': at('../channels/twilio-voice/index.ts'),
  'whatsapp-web': at('../channels/whatsapp-web/index.ts'),
  'whatsapp-cloud': at('../channels/whatsapp-cloud/index.ts'),
  'slack-alerts': at('../plugins/slack-alerts/index.ts'),
};
