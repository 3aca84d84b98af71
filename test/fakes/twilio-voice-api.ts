/**
 * A local stand-in for Twilio's Calls resource (updating a live call with new TwiML), for tests that
 * drive the real twilio SDK: Basic auth, Twilio's JSON errors, calls that have ended (21220), and
 * scripted failures. Binds to 127.0.0.1 on a free port.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';

export interface CallUpdate {
  callSid: string;
  twiml: string;
  at: Date;
}

export interface FakeTwilioVoice {
  baseUrl: string;
  updates: CallUpdate[];
  /** Calls that have ended: updating them answers 400 with code 21220. */
  ended: Set<string>;
  failNext(n: number, kind: '500' | '429' | 'drop'): void;
  close(): Promise<void>;
}

function twilioError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

export async function startFakeTwilioVoice(credentials: { accountSid: string; authToken: string }): Promise<FakeTwilioVoice> {
  const updates: CallUpdate[] = [];
  const ended = new Set<string>();
  const failures: ('500' | '429' | 'drop')[] = [];
  const app = express();
  app.use(express.urlencoded({ extended: false }));

  app.post('/2010-04-01/Accounts/:accountSid/Calls/:callSid.json', (req: Request, res: Response) => {
    const auth = /^Basic (.+)$/u.exec(req.get('authorization') ?? '')?.[1];
    const [user, pass] = auth ? Buffer.from(auth, 'base64').toString('utf8').split(':') : [];
    if (user !== credentials.accountSid || pass !== credentials.authToken || req.params.accountSid !== credentials.accountSid) return twilioError(res, 401, 20003, 'Authenticate');
    const failure = failures.shift();
    if (failure === 'drop') return void req.socket.destroy();
    if (failure === '500') return twilioError(res, 500, 20500, 'Internal Server Error');
    if (failure === '429') return twilioError(res, 429, 20429, 'Too Many Requests');
    const callSid = String(req.params.callSid);
    if (ended.has(callSid)) return twilioError(res, 400, 21220, 'Call is not in-progress. Cannot redirect.');
    const twiml = typeof req.body?.Twiml === 'string' ? req.body.Twiml : '';
    if (!twiml) return twilioError(res, 400, 21218, 'Invalid ApplicationSid or Twiml');
    updates.push({ callSid, twiml, at: new Date() });
    res.status(200).json({ sid: callSid, account_sid: credentials.accountSid, status: 'in-progress', api_version: '2010-04-01' });
  });
  app.use((req, res) => twilioError(res, 404, 20404, `The requested resource ${req.path} was not found`));

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    updates,
    ended,
    failNext(n, kind) {
      for (let i = 0; i < n; i += 1) failures.push(kind);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
