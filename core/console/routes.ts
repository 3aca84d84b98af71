/**
 * The operations console at `/console`: one HTML page, its script and its stylesheet, all served by
 * the gateway (no CDN, works offline), and the sign-in endpoints. The page is a client of the
 * documented admin API: it reads and changes everything through `/v1` with its session cookie, so
 * every tenant-isolation rule of the API holds for it unchanged. See core/console/README.md.
 */
import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Gateway } from '../gateway.js';
import type { RouteHelpers } from '../plugin.js';
import { HttpError, badRequest, unauthenticated } from '../errors.js';
import { CSRF_HEADER, SESSION_COOKIE, csrfMatches, sessionToken } from './sessions.js';

/**
 * Nothing inline and nothing from elsewhere: scripts, styles, images and requests come from this
 * origin only; no frame may hold the page; forms post only here.
 */
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley console</title>
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/console.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header id="top"></header>
<main id="main" tabindex="-1"><p class="muted">Loading…</p></main>
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>
`;

const SignIn = z.object({ key: z.string().min(8).max(300) });
const Session = z.object({
  principal: z.union([z.object({ kind: z.literal('operator') }), z.object({ kind: z.literal('tenant'), tenantId: z.string() })]),
  csrf: z.string().describe(`Send it in the ${CSRF_HEADER} header with every change`),
  expiresAt: z.iso.datetime({ offset: true }),
});

/** Same origin, when the browser says where the request comes from (a sign-in posted by another site is refused). */
function sameOrigin(req: Request): boolean {
  const origin = req.get('origin');
  if (!origin) return true;
  try {
    return new URL(origin).host === req.get('host');
  } catch {
    return false;
  }
}

export const consoleRoutes =
  (gateway: Gateway) =>
  ({ route }: RouteHelpers): void => {
    // Read when the gateway starts, so a missing file fails the start and not a sign-in.
    const script = asset('console.js');
    const style = asset('console.css');
    const cookie = (req: Request, value: string, maxAgeSeconds: number) =>
      `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${req.secure ? '; Secure' : ''}`;
    const publicPrincipal = (p: { kind: 'operator' } | { kind: 'tenant'; tenantId: string }) => (p.kind === 'operator' ? { kind: 'operator' as const } : { kind: 'tenant' as const, tenantId: p.tenantId });

    route({ method: 'get', path: '/console', auth: 'none', tags: ['console'], summary: 'The operations console (HTML)', responses: { 200: { description: 'The page; it signs in with a key and then uses this API', contentType: 'text/html' } } }, (_req, res) => {
      res.set(SECURITY_HEADERS).type('text/html').send(PAGE);
    });
    route({ method: 'get', path: '/console/console.js', auth: 'none', tags: ['console'], summary: "The console's script", responses: { 200: { description: 'JavaScript', contentType: 'text/javascript' } } }, (_req, res) => {
      res.set({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' }).type('text/javascript').send(script);
    });
    route({ method: 'get', path: '/console/console.css', auth: 'none', tags: ['console'], summary: "The console's stylesheet", responses: { 200: { description: 'CSS', contentType: 'text/css' } } }, (_req, res) => {
      res.set({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' }).type('text/css').send(style);
    });

    route(
      {
        method: 'post',
        path: '/console/session',
        auth: 'none',
        tags: ['console'],
        summary: 'Sign in to the console with a tenant key or the operator key',
        description: `Exchanges the key for a session cookie (\`${SESSION_COOKIE}\`: httpOnly, SameSite=Strict, Secure over HTTPS, 12 hours). The key is kept only as its hash; revoking it ends the session. Changes made with the cookie need the returned \`csrf\` in \`${CSRF_HEADER}\`.`,
        body: SignIn,
        bodyExample: { key: 'pk_clinic_…' },
        responses: { 201: { description: 'Signed in', schema: Session } },
        errors: ['PARLEY_BAD_REQUEST', 'PARLEY_UNAUTHENTICATED', 'PARLEY_FORBIDDEN'],
      },
      async (req: Request, res: Response) => {
        if (!sameOrigin(req)) throw new HttpError('PARLEY_FORBIDDEN', 'Sign in from the console of this gateway', 403);
        const body = SignIn.safeParse(req.body ?? {});
        if (!body.success) throw badRequest('Body must be { "key": "<API key>" }');
        const made = await gateway.consoleSessions.create(body.data.key);
        if (!made) {
          gateway.log.warn({ ip: req.ip }, 'console sign-in with a key that is not valid');
          throw unauthenticated('That key is not valid');
        }
        res.setHeader('set-cookie', cookie(req, made.token, 12 * 3600));
        res.status(201).json({ principal: publicPrincipal(made.session.principal), csrf: made.session.csrf, expiresAt: made.session.expiresAt.toISOString() });
      },
    );
    route(
      { method: 'get', path: '/console/session', auth: 'none', tags: ['console'], summary: 'The console session of this cookie', responses: { 200: { description: 'Signed in', schema: Session } }, errors: ['PARLEY_UNAUTHENTICATED'] },
      async (req: Request, res: Response) => {
        const session = await gateway.consoleSessions.resolve(sessionToken(req.get('cookie')));
        if (!session) throw unauthenticated('Not signed in');
        res.set('cache-control', 'no-store').json({ principal: publicPrincipal(session.principal), csrf: session.csrf, expiresAt: session.expiresAt.toISOString() });
      },
    );
    route(
      { method: 'delete', path: '/console/session', auth: 'none', tags: ['console'], summary: 'Sign out of the console', description: `Needs the session's \`${CSRF_HEADER}\`.`, responses: { 204: { description: 'Signed out; the cookie is cleared' } }, errors: ['PARLEY_CSRF'] },
      async (req: Request, res: Response) => {
        const token = sessionToken(req.get('cookie'));
        const session = await gateway.consoleSessions.resolve(token);
        if (session && !csrfMatches(session, req.get(CSRF_HEADER))) throw new HttpError('PARLEY_CSRF', `Signing out needs the session's CSRF token in the ${CSRF_HEADER} header`, 403);
        await gateway.consoleSessions.destroy(token);
        res.setHeader('set-cookie', cookie(req, '', 0));
        res.status(204).end();
      },
    );
  };
