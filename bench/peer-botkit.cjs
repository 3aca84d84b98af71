/**
 * The peer `npm run bench -- --peers` measures Parley against: a minimal Botkit 4.15 bot on
 * botbuilder-adapter-twilio-sms 1.0.8 that answers every SMS with a fixed reply through the Twilio
 * REST API, as that adapter does (it has no TwiML reply). It stores nothing.
 *
 * Run by the bench with the modules of a scratch install (PEER_MODULES, the folder holding botkit's
 * node_modules), not the repository's: the adapter needs twilio 3, Parley uses a later one.
 * Environment: PORT (0: any free port), TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, PEER_TWILIO_NUMBER,
 * PEER_VALIDATION_URL (the URL signatures are computed over, as Twilio would call it) and
 * PEER_TWILIO_API_BASE_URL (a local fake of Twilio's API: the REST calls go there, never to Twilio).
 * Prints `PEER_READY <port>` once it listens.
 */
'use strict';
const { createRequire } = require('node:module');
const { join } = require('node:path');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const peer = createRequire(join(env('PEER_MODULES'), 'package.json'));
const { Botkit } = peer('botkit');
const { TwilioAdapter } = peer('botbuilder-adapter-twilio-sms');
// The twilio the adapter resolves (3.x, hoisted in the scratch install).
const Twilio = peer('twilio');

const REPLY = 'We are open Monday to Friday, 8am to 6pm.';
const apiBase = new URL(env('PEER_TWILIO_API_BASE_URL'));

/**
 * The SDK builds absolute `https://api.twilio.com/...` URLs and has no base-URL option (edge and
 * region only change the host inside twilio.com), so its HTTP client is the one documented hook:
 * the same client, with the origin swapped for the local fake's.
 */
class LocalRequestClient extends Twilio.RequestClient {
  request(opts) {
    const target = new URL(opts.uri);
    return super.request({ ...opts, uri: new URL(target.pathname + target.search, apiBase).toString() });
  }
}

const adapter = new TwilioAdapter({
  twilio_number: env('PEER_TWILIO_NUMBER'),
  account_sid: env('TWILIO_ACCOUNT_SID'),
  auth_token: env('TWILIO_AUTH_TOKEN'),
  validation_url: env('PEER_VALIDATION_URL'),
});
adapter.api = Twilio(env('TWILIO_ACCOUNT_SID'), env('TWILIO_AUTH_TOKEN'), { httpClient: new LocalRequestClient() });

const controller = new Botkit({ adapter, webhook_uri: new URL(env('PEER_VALIDATION_URL')).pathname, disable_console: true });
controller.on('message', async (bot, message) => {
  await bot.reply(message, REPLY);
});
controller.ready(() => {
  console.log(`PEER_READY ${controller.http.address().port}`);
});
process.on('SIGTERM', () => controller.http.close(() => process.exit(0)));
