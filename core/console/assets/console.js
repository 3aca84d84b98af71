// @ts-check
/**
 * Parley's operations console: a client of the documented admin API (/v1) signed in with a session
 * cookie. Plain modern JavaScript, no framework and no build step: every node is made with
 * document.createElement and text is set with textContent, so nothing a person sent can become
 * markup. Changes carry the session's CSRF token in X-Parley-CSRF. Views are chosen by the URL hash
 * (#/t/<tenant>/<view>/<id>), so a page can be bookmarked and the back button works.
 */

import { OPERATIONS } from './operations.js';

const CSRF_HEADER = 'X-Parley-CSRF';

/** @type {{ principal: { kind: 'operator' } | { kind: 'tenant', tenantId: string }, csrf: string } | null} */
let session = null;
/** @type {{ id: string, name: string, pipeline: string[] }[]} */
let tenants = [];
/**
 * The render in progress or shown: a newer one (the person navigated on) makes it stale, and a stale
 * render neither replaces the page nor keeps its live updates.
 * @typedef {{ timers: ReturnType<typeof setInterval>[] }} RenderScope
 */
/** @type {RenderScope} */
let current = { timers: [] };

// ---- small helpers -------------------------------------------------------------------------------

/**
 * An element with attributes and children; strings become text nodes.
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'className') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  // A wide table scrolls inside its own box on a phone; the box takes keyboard focus so it can be
  // scrolled without a pointer, and is named by the table's caption.
  if (tag === 'table') return h('div', { className: 'scroll', tabindex: 0, role: 'region', 'aria-label': el.querySelector('caption')?.textContent || 'Table' }, el);
  return el;
}

class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the admin API with the session cookie; a change carries the CSRF token.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session) headers[CSRF_HEADER] = session.csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    if (res.status === 401 && path !== '/console/session') {
      session = null;
      render();
    }
    throw new ApiError(res.status, json?.error?.code ?? 'HTTP', json?.error?.message ?? `${res.status} ${res.statusText}`);
  }
  return json;
}


/**
 * Calls an operation of this gateway's OpenAPI document by its operationId (`operations.js`, which the
 * gateway generates from the document): path parameters from `params`, the others as the query. An
 * operation the gateway does not have (its plugin is not loaded) answers like a missing route, 404.
 * @param {string} operationId
 * @param {Record<string, string | number | boolean | undefined>} [params] path parameters and query
 * @param {unknown} [body]
 */
async function call(operationId, params = {}, body) {
  const op = /** @type {Record<string, [string, string]>} */ (OPERATIONS)[operationId];
  if (!op) throw new ApiError(404, 'PARLEY_NOT_FOUND', `This gateway has no operation ${operationId}`);
  const [method, template] = op;
  /** @type {Set<string>} */
  const used = new Set();
  const path = template.replace(/\{(\w+)\}/g, (_, /** @type {string} */ name) => {
    used.add(name);
    const value = params[name];
    if (value === undefined) throw new Error(`${operationId} needs ${name}`);
    return encodeURIComponent(String(value));
  });
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (!used.has(k) && v !== undefined && v !== '') query.set(k, String(v));
  const qs = query.toString();
  return api(method, qs ? `${path}?${qs}` : path, body);
}

/** @param {string | null | undefined} iso */
function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const diff = Math.round((Date.now() - d.getTime()) / 1000);
  const s = Math.abs(diff);
  const span = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : s < 86400 ? `${Math.round(s / 3600)} h` : null;
  if (!span) return d.toLocaleString();
  return diff >= -1 ? `${span} ago` : `in ${span}`;
}

/** @param {string} iso */
const timeEl = (iso) => h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, when(iso));

/** @param {string} text @param {'ok' | 'warn' | 'bad' | 'info'} [kind] */
const badge = (text, kind = 'info') => h('span', { className: `badge ${kind}` }, text);

/** Status words as badges with a colour that says how good they are. */
function statusBadge(/** @type {string} */ status) {
  const good = ['sent', 'delivered', 'read', 'processed', 'completed', 'approved', 'ready', 'ok', 'up'];
  const bad = ['dead', 'failed', 'undelivered', 'blocked', 'rejected', 'error', 'down', 'logged-out'];
  const warn = ['held', 'pending', 'retrying', 'in_review', 'escalated', 'pending-approval', 'human', 'qr', 'degraded'];
  return badge(status, good.includes(status) ? 'ok' : bad.includes(status) ? 'bad' : warn.includes(status) ? 'warn' : 'info');
}

/** @param {string} message @param {boolean} [isError] */
function toast(message, isError = false) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = message;
  el.className = isError ? 'show error' : 'show';
  setTimeout(() => (el.className = ''), 4000);
}

/** Runs an action of a button: disables it meanwhile and reports the outcome. */
async function act(/** @type {HTMLButtonElement | null} */ button, /** @type {() => Promise<unknown>} */ work, /** @type {string} */ done) {
  if (button) button.disabled = true;
  try {
    await work();
    if (done) toast(done);
    return true;
  } catch (error) {
    toast(error instanceof Error ? error.message : String(error), true);
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A card that loads its own content; a route the tenant does not have (404/403) hides it. */
function card(/** @type {string} */ title, /** @type {() => Promise<Node | Node[] | null>} */ load) {
  const body = h('div', { className: 'card-body' }, h('p', { className: 'muted' }, 'Loading…'));
  const el = h('section', { className: 'card', 'aria-label': title }, h('h2', null, title), body);
  load()
    .then((content) => {
      if (content === null) return el.remove();
      body.replaceChildren(...(Array.isArray(content) ? content : [content]));
    })
    .catch((error) => {
      if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return el.remove();
      body.replaceChildren(h('p', { className: 'error', role: 'alert' }, error.message));
    });
  return el;
}

/** Repeats `fn` every `ms` while the view of `scope` is shown (live updates by polling). */
function every(/** @type {RenderScope} */ scope, /** @type {number} */ ms, /** @type {() => void} */ fn) {
  if (scope === current) scope.timers.push(setInterval(fn, ms));
}

// ---- routing ---------------------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 't' && parts[1]) return { tenant: parts[1], view: parts[2] ?? 'overview', id: parts[3] ?? null };
  return { tenant: null, view: parts[0] ?? 'overview', id: parts[1] ?? null };
}

/** @param {string} tenant @param {string} view @param {string} [id] */
const link = (tenant, view, id) => `#/t/${encodeURIComponent(tenant)}/${view}${id ? `/${encodeURIComponent(id)}` : ''}`;

function defaultTenant() {
  if (!session) return null;
  if (session.principal.kind === 'tenant') return session.principal.tenantId;
  return sessionStorage.getItem('parley.tenant') ?? tenants[0]?.id ?? null;
}

const VIEWS = [
  ['overview', 'Overview'],
  ['conversations', 'Conversations'],
  ['queue', 'Review queue'],
  ['outbox', 'Outbox'],
  ['requests', 'Data requests'],
  ['contacts', 'Contacts'],
  ['schedules', 'Schedules'],
  ['answers', 'Health answers'],
  ['costs', 'Costs'],
  ['channels', 'Channels'],
  ['keys', 'Keys'],
];

async function render() {
  for (const t of current.timers) clearInterval(t);
  const scope = (current = { timers: [] });
  const stale = () => scope !== current;
  const main = /** @type {HTMLElement} */ (document.getElementById('main'));
  const top = /** @type {HTMLElement} */ (document.getElementById('top'));
  if (!session) {
    try {
      session = await api('GET', '/console/session');
      tenants = (await call('getTenants')).tenants;
    } catch {
      session = null;
    }
    if (stale()) return;
  }
  if (!session) {
    top.replaceChildren(h('div', { className: 'bar' }, h('span', { className: 'brand' }, 'Parley'), docsLink()));
    main.replaceChildren(signInView());
    document.title = 'Sign in · Parley console';
    main.querySelector('input')?.focus();
    return;
  }
  const r = route();
  const tenant = r.tenant ?? defaultTenant();
  if (!tenant) {
    main.replaceChildren(h('h1', null, 'No tenants'), h('p', null, 'This gateway has no tenants configured.'));
    return;
  }
  if (!r.tenant) {
    location.replace(link(tenant, r.view));
    return;
  }
  if (session.principal.kind === 'operator') sessionStorage.setItem('parley.tenant', tenant);
  top.replaceChildren(header(tenant, r.view));
  const view = VIEW_RENDERERS[r.view] ?? notFoundView;
  const label = VIEWS.find(([v]) => v === r.view)?.[1] ?? 'Not found';
  document.title = `${label} · ${tenant} · Parley console`;
  main.replaceChildren(h('p', { className: 'muted' }, 'Loading…'));
  main.setAttribute('aria-busy', 'true');
  delete main.dataset.shown;
  /** @type {Node[]} */
  let nodes;
  try {
    const content = await view(tenant, r.id, scope);
    nodes = Array.isArray(content) ? content : [content];
  } catch (error) {
    nodes = [errorView(error)];
  }
  // A render that finished after a newer one started (a slow page the person left) shows nothing.
  if (stale()) return;
  main.replaceChildren(...nodes);
  main.removeAttribute('aria-busy');
  // What the page shows, for scripts and tests that wait for a navigation to finish.
  main.dataset.shown = location.hash;
  main.focus();
}

/** @param {unknown} error */
function errorView(error) {
  if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
    return h('div', null, h('h1', null, error.status === 403 ? 'Not allowed' : 'Not found'), h('p', { role: 'alert' }, error.status === 403 ? 'This key may not see that.' : error.message));
  }
  return h('div', null, h('h1', null, 'Something went wrong'), h('p', { className: 'error', role: 'alert' }, error instanceof Error ? error.message : String(error)));
}

function header(/** @type {string} */ tenant, /** @type {string} */ current) {
  const nav = h(
    'nav',
    { 'aria-label': 'Sections' },
    h('ul', null, ...VIEWS.map(([view, label]) => h('li', null, h('a', { href: link(tenant, view), 'aria-current': view === current ? 'page' : undefined }, label)))),
  );
  let who;
  if (session?.principal.kind === 'operator') {
    const select = /** @type {HTMLSelectElement} */ (
      h('select', { id: 'tenant-switch', onchange: () => (location.hash = link(select.value, current === 'conversations' || current === 'queue' ? current : 'overview')) }, ...tenants.map((t) => h('option', { value: t.id, selected: t.id === tenant }, t.name === t.id ? t.id : `${t.name} (${t.id})`)))
    );
    who = h('span', { className: 'who' }, h('label', { for: 'tenant-switch' }, 'Operator · tenant '), select);
  } else {
    who = h('span', { className: 'who' }, `Tenant ${tenant}`);
  }
  const out = h('button', { type: 'button', className: 'link', id: 'sign-out', onclick: signOut }, 'Sign out');
  return h('div', { className: 'bar' }, h('a', { className: 'brand', href: link(tenant, 'overview') }, 'Parley'), who, docsLink(), out, nav);
}

/** The admin API's reference (`/docs`, rendered from `/v1/openapi.json`): what this console calls. */
function docsLink() {
  return h('a', { className: 'docs-link', href: '/docs' }, 'API reference');
}

async function signOut() {
  await act(null, () => api('DELETE', '/console/session'), '');
  session = null;
  tenants = [];
  location.hash = '';
  render();
}

function signInView() {
  const error = h('p', { className: 'error', role: 'alert', id: 'sign-in-error' });
  const input = /** @type {HTMLInputElement} */ (h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true, minlength: 8, 'aria-describedby': 'key-help sign-in-error' }));
  const form = h(
    'form',
    {
      className: 'sign-in',
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        error.textContent = '';
        try {
          session = await api('POST', '/console/session', { key: input.value });
          input.value = '';
          tenants = (await call('getTenants')).tenants;
          render();
        } catch (err) {
          error.textContent = err instanceof Error ? err.message : String(err);
          input.focus();
        }
      },
    },
    h('h1', null, 'Sign in'),
    h('label', { for: 'key' }, 'API key'),
    input,
    h('p', { id: 'key-help', className: 'muted' }, "A tenant's key shows that tenant; the operator key shows every tenant. The key is exchanged for a session and is not kept in this browser."),
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  return form;
}

const notFoundView = async () => h('div', null, h('h1', null, 'Not found'), h('p', null, 'There is no such page in the console.'));

// ---- overview --------------------------------------------------------------------------------------

/** A bar chart of messages per bucket (in above the axis, out below), as SVG. */
function activityChart(/** @type {{ since: string, bucketSeconds: number, series: { channel: string, direction: string, counts: number[] }[] }} */ a) {
  const n = a.series[0]?.counts.length ?? 12;
  const sum = (/** @type {string} */ dir) => Array.from({ length: n }, (_, i) => a.series.filter((s) => s.direction === dir).reduce((t, s) => t + (s.counts[i] ?? 0), 0));
  const ins = sum('in');
  const outs = sum('out');
  const max = Math.max(1, ...ins, ...outs);
  const W = 12 * n;
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} 100`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const totalIn = ins.reduce((x, y) => x + y, 0);
  const totalOut = outs.reduce((x, y) => x + y, 0);
  svg.setAttribute('aria-label', `Messages over the last ${Math.round((n * a.bucketSeconds) / 60)} minutes: ${totalIn} in, ${totalOut} out`);
  const bar = (/** @type {number} */ i, /** @type {number} */ v, /** @type {boolean} */ up) => {
    const r = document.createElementNS(NS, 'rect');
    const height = (v / max) * 48;
    r.setAttribute('x', String(i * 12 + 1));
    r.setAttribute('width', '10');
    r.setAttribute('y', String(up ? 50 - height : 50));
    r.setAttribute('height', String(height));
    r.setAttribute('class', up ? 'in' : 'out');
    svg.append(r);
  };
  ins.forEach((v, i) => bar(i, v, true));
  outs.forEach((v, i) => bar(i, v, false));
  const rows = a.series.map((s) => h('tr', null, h('td', null, s.channel), h('td', null, s.direction === 'in' ? 'in' : 'out'), h('td', { className: 'num' }, String(s.counts.reduce((x, y) => x + y, 0)))));
  return [
    svg,
    h('p', { className: 'legend' }, h('span', { className: 'key in' }, 'in'), ` ${totalIn} `, h('span', { className: 'key out' }, 'out'), ` ${totalOut}`),
    rows.length ? h('table', null, h('caption', null, 'By channel, last hour'), h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'Direction'), h('th', { scope: 'col' }, 'Messages'))), h('tbody', null, ...rows)) : h('p', { className: 'muted' }, 'No messages in the last hour.'),
  ];
}

async function overviewView(/** @type {string} */ tenant, /** @type {string | null} */ _id, /** @type {RenderScope} */ scope) {
  const T = { tenant };
  // A tenant this key may not see is refused here, before any card asks for its data.
  await call('getTenantsByTenant', T);
  const chart = card('Messages, last hour', async () => activityChart(await call('getTenantsByTenantActivity', { ...T, minutes: 60, bucketMinutes: 5 })));
  every(scope, 10_000, async () => {
    try {
      const body = chart.querySelector('.card-body');
      if (body) body.replaceChildren(...activityChart(await call('getTenantsByTenantActivity', { ...T, minutes: 60, bucketMinutes: 5 })));
    } catch {
      // the next poll tries again
    }
  });
  return [
    h('h1', null, 'Overview'),
    h(
      'div',
      { className: 'grid' },
      card('Readiness', async () => {
        const res = await fetch('/readyz', { credentials: 'same-origin' });
        const ready = await res.json().catch(() => ({}));
        const checks = Object.entries(ready.checks ?? ready.components ?? {});
        return [
          h('p', null, statusBadge(res.ok ? 'ready' : 'down')),
          h(
            'ul',
            { className: 'plain' },
            ...checks.map(([name, /** @type {any} */ c]) => h('li', null, statusBadge(c && typeof c === 'object' ? (c.ok ? 'ok' : c.info?.state ?? 'down') : String(c)), ' ', name, c?.latencyMs !== undefined ? h('span', { className: 'muted' }, ` ${c.latencyMs} ms`) : '')),
          ),
        ];
      }),
      chart,
      card('Open alerts', async () => {
        const { alerts } = await call('getTenantsByTenantAlerts', T);
        return alerts.length ? h('ul', { className: 'plain' }, ...alerts.map((/** @type {any} */ a) => h('li', null, statusBadge(a.severity === 'critical' ? 'error' : 'degraded'), ' ', a.summary))) : h('p', null, 'None.');
      }),
      card('Dead letters', async () => {
        const { deadLetters } = await call('getTenantsByTenantDeadLetters', { ...T, limit: 100 });
        return h('p', null, h('a', { href: link(tenant, 'outbox') }, `${deadLetters.length}${deadLetters.length === 100 ? '+' : ''} dead letter${deadLetters.length === 1 ? '' : 's'}`));
      }),
      card('Pending reviews', async () => {
        const stats = await call('getTenantsByTenantModerationStats', T);
        return h('p', null, h('a', { href: link(tenant, 'queue') }, `${stats.pending} pending`), stats.oldestPendingSeconds ? ` · oldest ${Math.round(stats.oldestPendingSeconds / 60)} min` : '');
      }),
      card('Budget', async () => costSummary(await call('getTenantsByTenantCosts', { ...T, period: 'day' }))),
    ),
  ];
}

// ---- conversations ---------------------------------------------------------------------------------

async function conversationsView(/** @type {string} */ tenant, /** @type {string | null} */ id, /** @type {RenderScope} */ scope) {
  if (id) return threadView(tenant, id, scope);
  const T = { tenant };
  const list = h('div', null, h('p', { className: 'muted' }, 'Loading…'));
  const input = /** @type {HTMLInputElement} */ (h('input', { id: 'search', type: 'search', inputmode: 'tel', placeholder: '+15551234567', autocomplete: 'off' }));
  const load = async () => {
    const q = input.value.trim();
    const [needsPerson, recent] = await Promise.all([
      call('getTenantsByTenantConversations', { ...T, mask: 'true', handoff: 'human', limit: 50, participant: q || undefined }),
      call('getTenantsByTenantConversations', { ...T, mask: 'true', limit: 50, participant: q || undefined }),
    ]);
    // Hand-offs first, crisis ones at the very top; then the rest, most recent first.
    const human = needsPerson.conversations.sort((/** @type {any} */ a, /** @type {any} */ b) => Number(/crisis/i.test(b.handoffReason ?? '')) - Number(/crisis/i.test(a.handoffReason ?? '')));
    const rest = recent.conversations.filter((/** @type {any} */ c) => c.handoff !== 'human');
    const rows = [...human, ...rest].map((/** @type {any} */ c) =>
      h(
        'tr',
        { className: c.handoff === 'human' ? 'attention' : undefined },
        h('td', null, h('a', { href: link(tenant, 'conversations', c.id) }, c.participant)),
        h('td', null, c.channel),
        h('td', null, c.handoff === 'human' ? statusBadge('human') : badge('bot'), c.handoffReason && c.handoff === 'human' ? h('span', { className: 'muted' }, ` ${c.handoffReason}`) : ''),
        h('td', null, timeEl(c.lastMessageAt)),
      ),
    );
    list.replaceChildren(
      rows.length
        ? h('table', { className: 'list' }, h('caption', null, q ? `Conversations with ${q}` : 'Hand-offs first, then the most recent'), h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Who'), h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'Answered by'), h('th', { scope: 'col' }, 'Last message'))), h('tbody', null, ...rows))
        : h('p', null, 'No conversations.'),
    );
  };
  await load();
  every(scope, 5_000, () => load().catch(() => undefined));
  return [
    h('h1', null, 'Conversations'),
    h(
      'form',
      { className: 'inline', role: 'search', onsubmit: (/** @type {Event} */ e) => (e.preventDefault(), load().catch((err) => toast(err.message, true))) },
      h('label', { for: 'search' }, 'Number'),
      input,
      h('button', { type: 'submit' }, 'Search'),
    ),
    list,
  ];
}

async function threadView(/** @type {string} */ tenant, /** @type {string} */ id, /** @type {RenderScope} */ scope) {
  const C = { tenant, id };
  const [{ handoff }, first] = await Promise.all([call('getTenantsByTenantConversationsByIdHandoff', C), call('getTenantsByTenantConversationsByIdMessages', { ...C, mask: 'true', limit: 200 })]);
  const who = h('span', null, first.messages.find((/** @type {any} */ m) => m.direction === 'in')?.from ?? first.messages[0]?.to ?? 'this person');
  const thread = h('ol', { className: 'thread', 'aria-live': 'polite', 'aria-label': 'Messages' });
  const state = h('p', { className: 'handoff' });
  const buttons = h('div', { className: 'actions' });

  const showHandoff = (/** @type {any} */ hand) => {
    state.replaceChildren(hand.state === 'human' ? statusBadge('human') : badge('bot'), ' ', hand.state === 'human' ? `A person answers${hand.reason ? ` (${hand.reason})` : ''}; the bot is paused.` : 'The bot answers.');
    const take = h('button', { type: 'button', id: 'take-over', onclick: () => setHandoff('human', /** @type {HTMLButtonElement} */ (take)) }, 'Take over');
    const back = h('button', { type: 'button', id: 'hand-back', className: 'secondary', onclick: () => setHandoff('bot', /** @type {HTMLButtonElement} */ (back)) }, 'Hand back to the bot');
    buttons.replaceChildren(hand.state === 'human' ? back : take);
  };
  const setHandoff = async (/** @type {'bot' | 'human'} */ to, /** @type {HTMLButtonElement} */ button) => {
    let next = null;
    await act(button, async () => (next = (await call('putTenantsByTenantConversationsByIdHandoff', C, { state: to, reason: to === 'human' ? 'taken over in the console' : 'handed back in the console' })).handoff), to === 'human' ? 'You answer this conversation now.' : 'The bot answers again.');
    if (next) showHandoff(next);
  };
  const showMessages = (/** @type {any[]} */ messages) => {
    thread.replaceChildren(
      ...messages.map((m) =>
        h(
          'li',
          { className: `msg ${m.direction}` },
          h('p', { className: 'text' }, m.text),
          h('p', { className: 'meta' }, m.direction === 'in' ? 'received ' : 'sent ', timeEl(m.at), ' · ', m.channel, ' · ', statusBadge(m.status), m.direction === 'in' ? detailsToggle(tenant, m.id) : ''),
        ),
      ),
    );
  };
  showHandoff(handoff);
  showMessages(first.messages);
  let last = JSON.stringify(first.messages.map((/** @type {any} */ m) => [m.id, m.status]));
  every(scope, 3_000, async () => {
    try {
      const [{ messages }, hand] = await Promise.all([call('getTenantsByTenantConversationsByIdMessages', { ...C, mask: 'true', limit: 200 }), call('getTenantsByTenantConversationsByIdHandoff', C)]);
      const now = JSON.stringify(messages.map((/** @type {any} */ m) => [m.id, m.status]));
      if (now !== last) showMessages(messages), (last = now);
      if (!buttons.contains(document.activeElement)) showHandoff(hand.handoff);
    } catch {
      // the next poll tries again
    }
  });

  const text = /** @type {HTMLTextAreaElement} */ (h('textarea', { id: 'reply', rows: 3, required: true, maxlength: 1600 }));
  const by = /** @type {HTMLInputElement} */ (h('input', { id: 'reply-by', autocomplete: 'name' }));
  const reply = h(
    'form',
    {
      className: 'reply',
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        const button = /** @type {HTMLButtonElement} */ (reply.querySelector('button[type=submit]'));
        const ok = await act(button, () => call('postTenantsByTenantConversationsByIdMessages', C, { text: text.value, ...(by.value.trim() ? { by: by.value.trim() } : {}) }), 'Sent.');
        if (ok) {
          text.value = '';
          const { messages } = await call('getTenantsByTenantConversationsByIdMessages', { ...C, mask: 'true', limit: 200 });
          showMessages(messages);
        }
      },
    },
    h('label', { for: 'reply' }, 'Reply as a person'),
    text,
    h('label', { for: 'reply-by' }, 'Your name (optional)'),
    by,
    h('button', { type: 'submit' }, 'Send'),
  );

  const reveal = h(
    'button',
    {
      type: 'button',
      className: 'link',
      id: 'reveal',
      onclick: async () => {
        await act(/** @type {HTMLButtonElement} */ (reveal), async () => {
          const { participant } = await call('postTenantsByTenantConversationsByIdReveal', C, { reason: 'shown in the console' });
          who.textContent = participant;
          reveal.replaceWith(consentBlock(tenant, participant));
        }, 'Shown (recorded in the audit trail).');
      },
    },
    'Show number',
  );
  return [h('p', null, h('a', { href: link(tenant, 'conversations') }, '← Conversations')), h('h1', null, 'Conversation with ', who), h('p', null, reveal), state, buttons, thread, reply];
}

/** The consent history of a number, shown after it was revealed. */
function consentBlock(/** @type {string} */ tenant, /** @type {string} */ address) {
  const el = h('details', null, h('summary', null, 'Consent'), h('p', { className: 'muted' }, 'Loading…'));
  el.addEventListener('toggle', async () => {
    if (!(/** @type {HTMLDetailsElement} */ (el).open)) return;
    try {
      const c = await call('getTenantsByTenantConsentByAddress', { tenant, address });
      const consent = c.consent ?? c;
      el.replaceChildren(
        h('summary', null, 'Consent'),
        h('p', null, statusBadge(consent.status ?? 'unknown')),
        h('ul', { className: 'plain' }, ...(consent.history ?? []).map((/** @type {any} */ e) => h('li', null, statusBadge(e.status), ' ', e.source ?? '', ' ', e.channel ?? '', ' ', e.at ? timeEl(e.at) : ''))),
      );
    } catch (error) {
      el.replaceChildren(h('summary', null, 'Consent'), h('p', { className: 'error' }, error instanceof Error ? error.message : String(error)));
    }
  });
  return el;
}

/** "Stages" under an inbound message: what each stage did, loaded when opened. */
function detailsToggle(/** @type {string} */ tenant, /** @type {string} */ messageId) {
  const el = h('details', { className: 'stages' }, h('summary', null, 'stages'));
  el.addEventListener('toggle', async () => {
    if (!(/** @type {HTMLDetailsElement} */ (el).open) || el.dataset.loaded) return;
    el.dataset.loaded = '1';
    try {
      const { message } = await call('getTenantsByTenantMessagesById', { tenant, id: messageId });
      el.append(h('ul', { className: 'plain' }, ...(message.stages ?? []).map((/** @type {any} */ s) => h('li', null, s.stage, ': ', statusBadge(s.outcome), s.selfMs !== undefined ? ` ${s.selfMs} ms` : ''))));
    } catch (error) {
      el.append(h('p', { className: 'error' }, error instanceof Error ? error.message : String(error)));
    }
  });
  return el;
}

// ---- review queue ----------------------------------------------------------------------------------

async function queueView(/** @type {string} */ tenant, /** @type {string | null} */ id, /** @type {RenderScope} */ scope) {
  const T = { tenant };
  if (id) return queueItemView(tenant, id);
  const list = h('div');
  const load = async () => {
    const { items } = await call('getTenantsByTenantModerationQueue', { ...T, status: 'pending,in_review,escalated', limit: 100 });
    list.replaceChildren(
      items.length
        ? h(
            'table',
            { className: 'list' },
            h('caption', null, 'Open items, oldest first'),
            h('thead', null, h('tr', null, ...['Item', 'Categories', 'Confidence', 'Status', 'Waiting'].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              null,
              ...items.map((/** @type {any} */ i) =>
                h('tr', null, h('td', null, h('a', { href: link(tenant, 'queue', i.id) }, `${i.direction === 'inbound' ? 'Message' : 'Reply'} ${i.direction === 'inbound' ? 'from' : 'to'} ••••${String(i.participant).slice(-4)}`)), h('td', null, i.categories.join(', ')), h('td', { className: 'num' }, i.confidence.toFixed(2)), h('td', null, statusBadge(i.status), i.assignee ? ` ${i.assignee}` : ''), h('td', null, timeEl(i.createdAt))),
              ),
            ),
          )
        : h('p', null, 'Nothing waits for review.'),
    );
  };
  await load();
  every(scope, 5_000, () => load().catch(() => undefined));
  return [h('h1', null, 'Review queue'), list];
}

async function queueItemView(/** @type {string} */ tenant, /** @type {string} */ id) {
  const Q = { tenant, id };
  const data = await call('getTenantsByTenantModerationQueueById', Q);
  const { item } = data;
  const reason = /** @type {HTMLInputElement} */ (h('input', { id: 'decision-reason', maxlength: 500 }));
  const decided = !['pending', 'in_review', 'escalated'].includes(item.status);
  const decide = (/** @type {string} */ verb, /** @type {string} */ label, /** @type {string} */ className) => {
    const b = /** @type {HTMLButtonElement} */ (
      h('button', {
        type: 'button',
        className,
        'data-verb': verb,
        disabled: decided && verb !== 'claim',
        onclick: async () => {
          const ok = await act(b, () => call(QUEUE_DECISIONS[verb], Q, reason.value.trim() ? { reason: reason.value.trim() } : {}), `${label}: done.`);
          if (ok) render();
        },
      }, label)
    );
    return b;
  };
  return [
    h('p', null, h('a', { href: link(tenant, 'queue') }, '← Review queue')),
    h('h1', null, `${item.direction === 'inbound' ? 'Held message' : 'Held reply'} · `, statusBadge(item.status)),
    h('p', null, 'Categories: ', item.categories.join(', '), ` · confidence ${item.confidence.toFixed(2)} · `, timeEl(item.createdAt)),
    h('blockquote', { className: 'held' }, data.message ?? '(no text)'),
    data.context?.length ? h('details', { open: true }, h('summary', null, 'Earlier in the conversation'), h('ol', { className: 'thread small' }, ...data.context.map((/** @type {any} */ m) => h('li', { className: `msg ${m.direction}` }, h('p', { className: 'text' }, m.text))))) : '',
    h('ul', { className: 'plain' }, ...item.flags.map((/** @type {any} */ f) => h('li', null, badge(f.category, 'warn'), ` ${f.detector ?? ''} ${typeof f.score === 'number' ? f.score.toFixed(2) : ''}`))),
    h('div', { className: 'field' }, h('label', { for: 'decision-reason' }, 'Reason (kept in the audit trail)'), reason),
    h('div', { className: 'actions' }, decide('claim', 'Claim', 'secondary'), decide('approve', 'Approve', ''), decide('reject', 'Reject', 'danger'), decide('escalate', 'Escalate', 'secondary'), decide('dismiss', 'Dismiss', 'secondary')),
    h('h2', null, 'Audit'),
    data.audit.length ? '' : h('p', { className: 'muted' }, 'No decisions yet.'),
    h('ul', { className: 'plain' }, ...data.audit.map((/** @type {any} */ a) => h('li', null, timeEl(a.at), ` ${a.actor}: ${a.action}${a.reason ? ` (${a.reason})` : ''}`))),
  ];
}

/** @type {Record<string, string>} */
const QUEUE_DECISIONS = {
  claim: 'postTenantsByTenantModerationQueueByIdClaim',
  approve: 'postTenantsByTenantModerationQueueByIdApprove',
  reject: 'postTenantsByTenantModerationQueueByIdReject',
  escalate: 'postTenantsByTenantModerationQueueByIdEscalate',
  dismiss: 'postTenantsByTenantModerationQueueByIdDismiss',
};

// ---- outbox ----------------------------------------------------------------------------------------

async function outboxView(/** @type {string} */ tenant) {
  const T = { tenant };
  const [{ deadLetters }, { outbox }] = await Promise.all([call('getTenantsByTenantDeadLetters', { ...T, limit: 100 }), call('getTenantsByTenantOutbox', { ...T, limit: 50 })]);
  const row = (/** @type {any} */ i, /** @type {boolean} */ retry) =>
    h(
      'tr',
      null,
      h('td', null, `••••${String(i.to).slice(-4)}`),
      h('td', null, i.channel),
      h('td', null, statusBadge(i.status), i.errorCode ? ` ${i.errorCode}` : ''),
      h('td', { className: 'clip' }, i.text),
      h('td', null, timeEl(i.createdAt)),
      h(
        'td',
        null,
        retry
          ? h('button', {
              type: 'button',
              className: 'small',
              'data-retry': i.id,
              onclick: async (/** @type {Event} */ e) => {
                const ok = await act(/** @type {HTMLButtonElement} */ (e.currentTarget), () => call('postTenantsByTenantOutboxByIdRetry', { ...T, id: i.id }), 'Queued again.');
                if (ok) render();
              },
            }, 'Retry')
          : '',
      ),
    );
  const table = (/** @type {string} */ caption, /** @type {any[]} */ items, /** @type {boolean} */ retry) =>
    items.length
      ? h('table', { className: 'list' }, h('caption', null, caption), h('thead', null, h('tr', null, ...['To', 'Channel', 'Status', 'Text', 'Created', ''].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, ...items.map((i) => row(i, retry))))
      : h('p', null, `No ${caption.toLowerCase()}.`);
  return [h('h1', null, 'Outbox'), h('h2', null, 'Dead letters'), table('Dead letters', deadLetters, true), h('h2', null, 'Recent'), table('Recent messages', outbox, false)];
}

/** @type {Record<string, string>} */
const REQUEST_DECISIONS = {
  approve: 'postTenantsByTenantDataSubjectsRequestsByIdApprove',
  reject: 'postTenantsByTenantDataSubjectsRequestsByIdReject',
  retry: 'postTenantsByTenantDataSubjectsRequestsByIdRetry',
};

// ---- data-subject requests -------------------------------------------------------------------------

async function requestsView(/** @type {string} */ tenant, /** @type {string | null} */ id) {
  const T = { tenant };
  if (id) {
    const [{ request: r }, { audit }] = await Promise.all([call('getTenantsByTenantDataSubjectsRequestsById', { ...T, id }), call('getTenantsByTenantDataSubjectsRequestsByIdAudit', { ...T, id })]);
    const note = /** @type {HTMLInputElement} */ (h('input', { id: 'note', maxlength: 1000 }));
    const decide = (/** @type {string} */ verb, /** @type {string} */ label, /** @type {string} */ cls) => {
      const b = /** @type {HTMLButtonElement} */ (
        h('button', { type: 'button', className: cls, 'data-verb': verb, onclick: async () => (await act(b, () => call(REQUEST_DECISIONS[verb], { ...T, id }, note.value.trim() ? { note: note.value.trim() } : {}), `${label}: done.`)) && render() }, label)
      );
      return b;
    };
    const linkOut = h('p');
    const getLink = /** @type {HTMLButtonElement} */ (
      h('button', {
        type: 'button',
        className: 'secondary',
        onclick: async () =>
          act(getLink, async () => {
            const { url } = await call('postTenantsByTenantDataSubjectsRequestsByIdLink', { ...T, id });
            linkOut.replaceChildren(h('a', { href: url, rel: 'noreferrer' }, 'Download the export (works once)'));
          }, ''),
      }, 'New download link')
    );
    return [
      h('p', null, h('a', { href: link(tenant, 'requests') }, '← Data requests')),
      h('h1', null, `${r.type === 'erase' ? 'Erasure' : 'Export'} · `, statusBadge(r.status)),
      h('p', null, `Requested by ${r.requestedBy} ${r.requesterName ? `(${r.requesterName})` : ''} · due `, timeEl(r.dueAt), r.overdue ? badge('overdue', 'bad') : ''),
      h('p', null, 'Progress ', h('progress', { max: 1, value: r.progress, 'aria-label': 'Progress' }), ` ${Math.round(r.progress * 100)}%`),
      r.reason ? h('p', null, `Reason: ${r.reason}`) : '',
      r.status === 'pending-approval' || r.status === 'unverified'
        ? h('div', null, h('div', { className: 'field' }, h('label', { for: 'note' }, 'Note'), note), h('div', { className: 'actions' }, decide('approve', 'Approve', ''), decide('reject', 'Reject', 'danger')))
        : '',
      r.status === 'failed' ? h('div', { className: 'actions' }, decide('retry', 'Run again', 'secondary')) : '',
      r.type === 'export' && r.status === 'completed' ? h('div', null, getLink, linkOut) : '',
      h('h2', null, 'Audit trail'),
      h('ul', { className: 'plain' }, ...audit.map((/** @type {any} */ a) => h('li', null, a.at ? timeEl(a.at) : '', ` ${a.actor ?? ''}: ${a.action ?? ''}${a.note ? ` (${a.note})` : ''}`))),
    ];
  }
  const { requests } = await call('getTenantsByTenantDataSubjectsRequests', { ...T, limit: 100 });
  const type = /** @type {HTMLSelectElement} */ (h('select', { id: 'dsr-type' }, h('option', { value: 'export' }, 'Export'), h('option', { value: 'erase' }, 'Erasure')));
  const address = /** @type {HTMLInputElement} */ (h('input', { id: 'dsr-address', required: true, autocomplete: 'off', inputmode: 'tel' }));
  const by = /** @type {HTMLInputElement} */ (h('input', { id: 'dsr-by', required: true, autocomplete: 'name' }));
  const reason = /** @type {HTMLInputElement} */ (h('input', { id: 'dsr-reason' }));
  const form = h(
    'form',
    {
      className: 'stack',
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        let made = null;
        await act(/** @type {HTMLButtonElement} */ (form.querySelector('button')), async () => (made = (await call('postTenantsByTenantDataSubjectsRequests', T, { type: type.value, subject: { addresses: [address.value.trim()] }, requestedBy: by.value.trim(), reason: reason.value.trim() })).request), 'Request created.');
        if (made) location.hash = link(tenant, 'requests', /** @type {any} */ (made).id);
      },
    },
    h('h2', null, 'New request'),
    h('div', { className: 'field' }, h('label', { for: 'dsr-type' }, 'Type'), type),
    h('div', { className: 'field' }, h('label', { for: 'dsr-address' }, 'Address of the person'), address),
    h('div', { className: 'field' }, h('label', { for: 'dsr-by' }, 'Requested by'), by),
    h('div', { className: 'field' }, h('label', { for: 'dsr-reason' }, 'Reason'), reason),
    h('button', { type: 'submit' }, 'Create'),
  );
  return [
    h('h1', null, 'Data requests'),
    requests.length
      ? h('table', { className: 'list' }, h('caption', null, 'Requests, newest first'), h('thead', null, h('tr', null, ...['Request', 'Status', 'Due', 'Progress'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, ...requests.map((/** @type {any} */ r) => h('tr', null, h('td', null, h('a', { href: link(tenant, 'requests', r.id) }, `${r.type === 'erase' ? 'Erasure' : 'Export'} ${r.id.slice(0, 8)}`)), h('td', null, statusBadge(r.status), r.overdue ? badge('overdue', 'bad') : ''), h('td', null, timeEl(r.dueAt)), h('td', { className: 'num' }, `${Math.round(r.progress * 100)}%`)))))
      : h('p', null, 'No requests.'),
    form,
  ];
}

// ---- contacts and schedules ------------------------------------------------------------------------

async function contactsView(/** @type {string} */ tenant) {
  const T = { tenant };
  const list = h('div');
  const input = /** @type {HTMLInputElement} */ (h('input', { id: 'contact-q', type: 'search', autocomplete: 'off' }));
  const tag = /** @type {HTMLInputElement} */ (h('input', { id: 'contact-tag', autocomplete: 'off' }));
  const load = async () => {
    const { contacts, total } = await call('getTenantsByTenantContacts', { ...T, limit: 100, q: input.value.trim() || undefined, tag: tag.value.trim() || undefined });
    list.replaceChildren(
      contacts.length
        ? h(
            'table',
            { className: 'list' },
            h('caption', null, `${total} contact${total === 1 ? '' : 's'}${total > contacts.length ? `, the first ${contacts.length}` : ''}`),
            h('thead', null, h('tr', null, ...['Name', 'Addresses', 'Tags', 'Last message in'].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              null,
              ...contacts.map((/** @type {any} */ c) =>
                h('tr', null, h('td', null, c.name ?? '—'), h('td', null, (c.addresses ?? []).map((/** @type {any} */ a) => `${a.channel} ••••${String(a.address).slice(-4)}`).join(', ')), h('td', null, (c.tags ?? []).join(', ')), h('td', null, c.lastInboundAt ? timeEl(c.lastInboundAt) : '')),
              ),
            ),
          )
        : h('p', null, 'No contacts match.'),
    );
  };
  await load();
  return [
    h('h1', null, 'Contacts'),
    h(
      'form',
      { className: 'inline', role: 'search', onsubmit: (/** @type {Event} */ e) => (e.preventDefault(), load().catch((err) => toast(err.message, true))) },
      h('label', { for: 'contact-q' }, 'Name or address'),
      input,
      h('label', { for: 'contact-tag' }, 'Tag'),
      tag,
      h('button', { type: 'submit' }, 'Search'),
    ),
    list,
  ];
}

// ---- health answers (medical-answers) -------------------------------------------------------------

const ERRANDS = ['appointment', 'refill', 'results', 'billing', 'service', 'message', 'social', 'unknown'];
const OUTCOMES = ['answered', 'fallback', 'passed', 'crisis', 'loading'];

/** The tenant's health library, last week's outcomes and errands, and the answer log (no texts), filtered. */
async function answersView(/** @type {string} */ tenant) {
  const T = { tenant };
  let status;
  try {
    status = await call('getTenantsByTenantMedicalAnswers', T);
  } catch (error) {
    // Another tenant's page is refused (403, shown as such); a tenant without medical-answers has no such route.
    if (error instanceof ApiError && error.status === 404) return [h('h1', null, 'Health answers'), h('p', null, 'Not used by this tenant.')];
    throw error;
  }
  const counts = (/** @type {string} */ caption, /** @type {string} */ id, /** @type {Record<string, number>} */ data) =>
    Object.keys(data ?? {}).length
      ? h('table', { id }, h('caption', null, caption), h('tbody', null, ...Object.entries(data).sort((a, b) => b[1] - a[1]).map(([k, n]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', { className: 'num' }, String(n))))))
      : h('p', { className: 'muted' }, `${caption}: none.`);
  const select = (/** @type {string} */ id, /** @type {string[]} */ values) => /** @type {HTMLSelectElement} */ (h('select', { id }, h('option', { value: '' }, 'all'), ...values.map((v) => h('option', { value: v }, v))));
  const outcome = select('answers-outcome', OUTCOMES);
  const errand = select('answers-errand', ERRANDS);
  const list = h('div');
  const load = async () => {
    const { answers } = await call('getTenantsByTenantMedicalAnswersAnswers', { ...T, limit: 100, outcome: outcome.value || undefined, errand: errand.value || undefined });
    list.replaceChildren(
      answers.length
        ? h(
            'table',
            { className: 'list', id: 'answer-log' },
            h('caption', null, `${answers.length === 100 ? 'The latest 100' : answers.length} message${answers.length === 1 ? '' : 's'}`),
            h('thead', null, h('tr', null, ...['When', 'Outcome', 'Errand', 'Confidence', 'Cited', 'Conversation'].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              null,
              ...answers.map((/** @type {any} */ a) =>
                h(
                  'tr',
                  null,
                  h('td', null, timeEl(a.at)),
                  h('td', null, a.outcome),
                  h('td', null, a.errand ?? ''),
                  h('td', { className: 'num' }, a.confidence === null ? '' : Number(a.confidence).toFixed(2)),
                  h('td', null, (a.docIds ?? []).join(', ')),
                  h('td', null, a.conversationId ? h('a', { href: link(tenant, 'conversations', a.conversationId) }, 'open') : ''),
                ),
              ),
            ),
          )
        : h('p', null, 'No messages match.'),
    );
  };
  await load();
  return [
    h('h1', null, 'Health answers'),
    h(
      'div',
      { className: 'grid' },
      h(
        'section',
        { className: 'card', 'aria-label': 'Library' },
        h('h2', null, 'Library'),
        h(
          'ul',
          { className: 'plain', id: 'library' },
          h('li', null, `${status.docs} documents, ${status.chunks} chunks, ${status.mode} retrieval`),
          h('li', null, status.lastIngestAt ? ['last ingest ', timeEl(status.lastIngestAt)] : 'not ingested yet'),
          status.ingest ? h('li', null, `ingesting: ${status.ingest.phase} ${status.ingest.done}${status.ingest.total ? ` of ${status.ingest.total}` : ''}`) : '',
          status.lastError ? h('li', { className: 'error' }, `last error: ${status.lastError.message}`) : '',
        ),
      ),
      h('section', { className: 'card', 'aria-label': 'Last 7 days' }, h('h2', null, 'Last 7 days'), counts('Messages by outcome', 'answers-outcomes', status.last7Days), counts('Not health questions, by errand', 'answers-errands', status.errandsLast7Days)),
    ),
    h('h2', null, 'Answer log'),
    h('p', { className: 'muted' }, 'What happened to each message, never its text: open the conversation to read it.'),
    h(
      'form',
      { className: 'inline', onsubmit: (/** @type {Event} */ e) => (e.preventDefault(), load().catch((err) => toast(err.message, true))) },
      h('label', { for: 'answers-outcome' }, 'Outcome'),
      outcome,
      h('label', { for: 'answers-errand' }, 'Errand'),
      errand,
      h('button', { type: 'submit' }, 'Show'),
    ),
    list,
  ];
}

async function schedulesView(/** @type {string} */ tenant, /** @type {string | null} */ id) {
  const T = { tenant };
  if (id) return scheduleView(tenant, id);
  const [{ schedules }, stats] = await Promise.all([call('getTenantsByTenantSchedules', T), call('getTenantsByTenantSchedulesStats', T)]);
  return [
    h('h1', null, 'Scheduled deliveries'),
    h('p', null, `${stats.totalSchedules} schedules, ${stats.activeSchedules} active · ${stats.successfulRuns} runs completed, ${stats.failedRuns} failed`),
    schedules.length
      ? h(
          'table',
          { className: 'list' },
          h('caption', null, 'Schedules'),
          h('thead', null, h('tr', null, ...['Name', 'When', 'Channel', 'State', 'Next run'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', null, ...schedules.map((/** @type {any} */ sc) => h('tr', null, h('td', null, h('a', { href: link(tenant, 'schedules', sc.id) }, sc.name)), h('td', null, h('code', null, sc.cron ?? `once ${new Date(sc.runAt).toLocaleString()}`), ` ${sc.timezone}`), h('td', null, sc.channel), h('td', null, sc.active ? badge('active', 'ok') : badge('paused', 'warn')), h('td', null, sc.nextRun ? timeEl(sc.nextRun) : '—')))),
        )
      : h('p', null, 'No schedules.'),
  ];
}

async function scheduleView(/** @type {string} */ tenant, /** @type {string} */ id) {
  const S = { tenant, id };
  const [{ schedule: sc }, { runs }] = await Promise.all([call('getTenantsByTenantSchedulesById', S), call('getTenantsByTenantSchedulesByIdRuns', S)]);
  const preview = h('div', { 'aria-live': 'polite' });
  const button = (/** @type {string} */ label, /** @type {string} */ cls, /** @type {() => Promise<unknown>} */ work, /** @type {string} */ done, /** @type {string} */ idAttr) => {
    const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: cls, id: idAttr, onclick: () => act(b, work, done) }, label));
    return b;
  };
  const showPreview = async () => {
    const { preview: p } = await call('postTenantsByTenantSchedulesByIdPreview', S, { limit: 5 });
    preview.replaceChildren(
      h('h2', null, 'Preview'),
      h('p', { className: 'muted' }, p.note ?? ''),
      h('p', null, `${p.count} recipient${p.count === 1 ? '' : 's'}`, p.skippedOptOut ? ` · ${p.skippedOptOut} opted out` : '', p.cappedBy ? ` · capped at ${p.cappedBy}` : ''),
      h('ol', null, ...(p.messages ?? []).map((/** @type {any} */ m) => h('li', null, h('strong', null, m.name ?? 'someone'), ': ', m.text))),
    );
  };
  const runRows = runs.map((/** @type {any} */ r) =>
    h('tr', null, h('td', null, timeEl(r.createdAt)), h('td', null, r.trigger ?? ''), h('td', null, statusBadge(r.status)), ...['recipients', 'sent', 'delivered', 'failed', 'skippedOptOut'].map((k) => h('td', { className: 'num' }, String(r[k] ?? 0)))),
  );
  return [
    h('p', null, h('a', { href: link(tenant, 'schedules') }, '← Schedules')),
    h('h1', null, sc.name, ' ', sc.active ? badge('active', 'ok') : badge('paused', 'warn')),
    h('p', null, h('code', null, sc.cron ?? `once ${new Date(sc.runAt).toLocaleString()}`), ` in ${sc.timezone} on ${sc.channel} · at most ${sc.maxMessages} · next `, sc.nextRun ? timeEl(sc.nextRun) : '—'),
    h('blockquote', { className: 'held' }, sc.template),
    h(
      'div',
      { className: 'actions' },
      button('Preview', 'secondary', showPreview, '', 'schedule-preview'),
      button('Run now', '', async () => (await call('postTenantsByTenantSchedulesByIdRunNow', S), render()), 'Started.', 'schedule-run-now'),
      button(sc.active ? 'Pause' : 'Resume', 'secondary', async () => (await call(sc.active ? 'postTenantsByTenantSchedulesByIdPause' : 'postTenantsByTenantSchedulesByIdResume', S), render()), sc.active ? 'Paused.' : 'Resumed.', 'schedule-toggle'),
    ),
    preview,
    h('h2', null, 'Runs'),
    runRows.length
      ? h('table', { className: 'list' }, h('caption', null, 'Newest first'), h('thead', null, h('tr', null, ...['Started', 'By', 'Status', 'Recipients', 'Sent', 'Delivered', 'Failed', 'Opted out'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, ...runRows))
      : h('p', null, 'No runs yet.'),
  ];
}

// ---- costs -----------------------------------------------------------------------------------------

/** @param {any} c */
function costSummary(c) {
  const rows = Object.entries(c.byCategory ?? {}).map(([cat, v]) => h('tr', null, h('td', null, cat), h('td', { className: 'num' }, `$${Number(/** @type {any} */ (v).spent ?? v).toFixed(2)}`)));
  const budget = c.budget ?? null;
  const spent = Number(c.spent ?? 0);
  return [
    h('p', null, `$${spent.toFixed(2)} spent`, budget !== null && budget !== undefined ? ` of $${Number(budget).toFixed(2)}` : '', c.allowed === false ? badge('blocked', 'bad') : ''),
    budget ? h('meter', { min: 0, max: Number(budget), value: Math.min(spent, Number(budget)), 'aria-label': 'Budget used' }) : '',
    rows.length ? h('table', null, h('caption', null, 'By category'), h('tbody', null, ...rows)) : '',
  ];
}

async function costsView(/** @type {string} */ tenant) {
  const T = { tenant };
  const [day, month] = await Promise.all([call('getTenantsByTenantCosts', { ...T, period: 'day' }), call('getTenantsByTenantCosts', { ...T, period: 'month' })]);
  const budgets = await call('getTenantsByTenantBudgets', T).catch(() => ({ budgets: [] }));
  const { blocks } = await call('getTenantsByTenantBlocks', T).catch(() => ({ blocks: [] }));
  const limits = await call('getTenantsByTenantLimits', T).catch(() => null);
  const perMinute = (/** @type {any} */ l) => (l ? `${l.perMinute} a minute` : 'no limit');
  const byTable = (/** @type {string} */ caption, /** @type {Record<string, any>} */ data) =>
    Object.keys(data ?? {}).length ? h('table', null, h('caption', null, caption), h('tbody', null, ...Object.entries(data).map(([k, v]) => h('tr', null, h('td', null, k), h('td', { className: 'num' }, `$${Number(v?.spent ?? v).toFixed(4)}`))))) : '';
  return [
    h('h1', null, 'Costs'),
    h('div', { className: 'grid' }, h('section', { className: 'card' }, h('h2', null, 'Today'), ...costSummary(day)), h('section', { className: 'card' }, h('h2', null, 'This month'), ...costSummary(month))),
    byTable('By provider, this month', month.byProvider),
    byTable('By model, this month', month.byModel),
    byTable('By channel, this month', month.byChannel),
    h('h2', null, 'Budgets'),
    budgets.budgets.length
      ? h('table', { className: 'list' }, h('thead', null, h('tr', null, ...['Category', 'Period', 'Limit', 'Spent', 'Action'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, ...budgets.budgets.map((/** @type {any} */ b) => h('tr', null, h('td', null, b.category), h('td', null, b.period), h('td', { className: 'num' }, b.limitUsd === null ? 'none' : `$${b.limitUsd}`), h('td', { className: 'num' }, `$${Number(b.spentUsd ?? 0).toFixed(2)}`), h('td', null, b.action ?? '')))))
      : h('p', null, 'No budgets.'),
    h('h2', null, 'Limits in force'),
    limits
      ? h(
          'ul',
          { className: 'plain', id: 'limits' },
          h('li', null, `API requests with a tenant key: ${perMinute(limits.rateLimits.api)}`),
          h('li', null, `Inbound messages, whole tenant: ${perMinute(limits.rateLimits.inbound)}`),
          h('li', null, `Inbound messages per sender: ${limits.rateLimits.user ? [limits.rateLimits.user.perMinute ? `${limits.rateLimits.user.perMinute} a minute` : '', limits.rateLimits.user.perDay ? `${limits.rateLimits.user.perDay} a day` : ''].filter(Boolean).join(', ') : 'no limit'}`),
          h('li', null, `At 100% of a budget: ${limits.action}${limits.degradeTo ? ` (to ${limits.degradeTo})` : ''}; paid sends ${limits.paidSends === 'hold' ? 'held for review' : 'blocked'}; warning at ${Math.round(limits.warnAt * 100)}%`),
        )
      : h('p', null, 'No limits (cost-guard is not used by this tenant).'),
    h('h2', null, 'Blocked senders and addresses'),
    blocks.length
      ? h('table', { className: 'list' }, h('caption', null, 'Blocks (senders are shown by their hash)'), h('thead', null, h('tr', null, ...['What', 'Value', 'Reason', 'By', 'Since'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, ...blocks.map((/** @type {any} */ b) => h('tr', null, h('td', null, b.type), h('td', null, h('code', null, b.value)), h('td', null, b.reason ?? ''), h('td', null, b.createdBy), h('td', null, timeEl(b.createdAt))))))
      : h('p', null, 'None.'),
  ];
}

// ---- channels --------------------------------------------------------------------------------------

async function channelsView(/** @type {string} */ tenant, /** @type {string | null} */ _id, /** @type {RenderScope} */ scope) {
  const T = { tenant };
  const wa = h('section', { className: 'card', 'aria-label': 'WhatsApp Web' }, h('h2', null, 'WhatsApp Web'), h('p', { className: 'muted' }, 'Loading…'));
  let shownQr = '';
  const showWa = async () => {
    let status;
    try {
      status = await call('getTenantsByTenantWhatsappWebStatus', T);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return wa.replaceChildren(h('h2', null, 'WhatsApp Web'), h('p', null, 'Not used by this tenant.'));
      throw error;
    }
    const body = [h('h2', null, 'WhatsApp Web'), h('p', { id: 'wa-state' }, statusBadge(status.state), ` ${status.number}`, status.loggedInAs ? ` · signed in as ${status.loggedInAs}` : '', ' · since ', timeEl(status.since))];
    if (status.qr?.available) {
      // A new code every ~20 s: the image's address changes with it, so the browser fetches it again.
      const key = `${status.since}`;
      if (shownQr !== key || !wa.querySelector('img')) shownQr = key;
      body.push(h('p', null, 'Scan with the phone: WhatsApp → Linked devices → Link a device.'), h('img', { id: 'wa-qr', src: `${status.qr.png}?t=${Date.now()}`, alt: 'QR code to link WhatsApp', width: 264, height: 264 }));
    }
    wa.replaceChildren(...body);
  };
  await showWa().catch((error) => wa.replaceChildren(h('h2', null, 'WhatsApp Web'), h('p', { className: 'error' }, error.message)));
  every(scope, 2_000, () => showWa().catch(() => undefined));
  const tenantInfo = (await call('getTenantsByTenant', T)).tenant;
  const twilioNumbers = card('Twilio numbers', async () => {
    const t = await call('getTenantsByTenantTwilioSmsNumbers', T);
    return [
      t.channelOn ? '' : h('p', null, badge('off', 'bad'), ` ${t.off}`),
      h(
        'table',
        { className: 'list' },
        h('caption', null, 'As the Twilio account has them (checked ', timeEl(t.checkedAt), ')'),
        h('thead', null, h('tr', null, ...['Number', 'Kind', 'Status', 'Messaging webhook'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', null, ...t.numbers.map((/** @type {any} */ n) => h('tr', null, h('td', null, n.number), h('td', null, n.kind), h('td', null, statusBadge(n.status), n.detail ? h('span', { className: 'muted' }, ` ${n.detail}`) : ''), h('td', { className: 'clip' }, n.smsUrl ?? '—')))),
      ),
    ];
  });
  return [h('h1', null, 'Channels'), wa, twilioNumbers, h('section', { className: 'card' }, h('h2', null, 'Pipeline'), h('ol', null, ...tenantInfo.pipeline.map((/** @type {string} */ s) => h('li', null, s))))];
}

// ---- keys ------------------------------------------------------------------------------------------

async function keysView(/** @type {string} */ tenant) {
  const T = { tenant };
  const { keys } = await call('getTenantsByTenantKeys', T);
  const operator = session?.principal.kind === 'operator';
  const shown = h('div', { 'aria-live': 'polite' });
  const label = /** @type {HTMLInputElement} */ (h('input', { id: 'key-label', maxlength: 100 }));
  return [
    h('h1', null, 'Keys'),
    keys.length
      ? h(
          'table',
          { className: 'list' },
          h('caption', null, 'Stored keys (keys in the configuration file are not listed)'),
          h('thead', null, h('tr', null, ...['Label', 'Created', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            null,
            ...keys.map((/** @type {any} */ k) => {
              const revoke = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'small danger', onclick: async () => (await act(revoke, () => call('deleteTenantsByTenantKeysById', { ...T, id: k.id }), 'Revoked.')) && render() }, 'Revoke'));
              return h('tr', null, h('td', null, k.label || k.id.slice(0, 8)), h('td', null, timeEl(k.createdAt)), h('td', null, k.revokedAt ? badge('revoked', 'bad') : badge('active', 'ok')), h('td', null, operator && !k.revokedAt ? revoke : ''));
            }),
          ),
        )
      : h('p', null, 'No stored keys.'),
    operator
      ? h(
          'form',
          {
            className: 'inline',
            onsubmit: async (/** @type {Event} */ e) => {
              e.preventDefault();
              await act(/** @type {HTMLButtonElement} */ (/** @type {HTMLElement} */ (e.currentTarget).querySelector('button')), async () => {
                const made = await call('postTenantsByTenantKeys', T, { label: label.value.trim() });
                shown.replaceChildren(h('p', null, 'The new key, shown once: ', h('code', null, made.key)));
              }, 'Key created.');
            },
          },
          h('label', { for: 'key-label' }, 'Label'),
          label,
          h('button', { type: 'submit' }, 'Create a key'),
        )
      : h('p', { className: 'muted' }, 'Only the operator creates and revokes keys.'),
    shown,
  ];
}

/** @type {Record<string, (tenant: string, id: string | null, scope: RenderScope) => Promise<Node | Node[]>>} */
const VIEW_RENDERERS = {
  overview: overviewView,
  conversations: conversationsView,
  queue: queueView,
  outbox: outboxView,
  requests: requestsView,
  contacts: contactsView,
  schedules: schedulesView,
  answers: answersView,
  costs: costsView,
  channels: channelsView,
  keys: keysView,
};

window.addEventListener('hashchange', () => render());
render();
