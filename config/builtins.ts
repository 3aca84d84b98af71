/**
 * The catalogue of built-in plugins: name -> module path. The kernel receives it as data and imports
 * these modules exactly as it imports a third-party plugin named by path in the configuration.
 */
import { fileURLToPath } from 'node:url';

// `.ts` in the source tree, `.js` once compiled to dist/ (this module is compiled beside the plugins).
const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const at = (path: string) => fileURLToPath(new URL(`${path}${extension}`, import.meta.url));

export const builtinPlugins: Record<string, string> = {
  http: at('../channels/http/index'),
  'keyword-replies': at('../plugins/keyword-replies/index'),
  'twilio-sms': at('../channels/twilio-sms/index'),
  'twilio-voice': at('../channels/twilio-voice/index'),
  'whatsapp-web': at('../channels/whatsapp-web/index'),
  'whatsapp-cloud': at('../channels/whatsapp-cloud/index'),
  'slack-alerts': at('../plugins/slack-alerts/index'),
  'crisis-guard': at('../plugins/crisis-guard/index'),
  'cost-guard': at('../plugins/cost-guard/index'),
  moderation: at('../plugins/moderation/index'),
  'medical-answers': at('../plugins/medical-answers/index'),
  contacts: at('../plugins/contacts/index'),
  reminders: at('../plugins/reminders/index'),
  dsar: at('../plugins/dsar/index'),
  billing: at('../plugins/billing/index'),
};
