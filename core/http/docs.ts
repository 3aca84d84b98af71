/**
 * `GET /v1/openapi.json` (the OpenAPI 3.1 document of this gateway: the kernel's routes and those of
 * the plugins it runs) and `GET /docs` (a reference page rendered from it in the browser by a small
 * script bundled here: no CDN, nothing fetched but the document).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Gateway } from '../gateway.js';
import type { RouteHelpers } from '../plugin.js';
import type { ApiCatalogue } from './contract.js';
import { buildOpenApiDocument } from './openapi.js';

/** Parley's version, from the package.json above this file (source tree or dist/). */
export function parleyVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'parley' && pkg.version) return pkg.version;
    } catch {
      // not here: one folder up
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

const documents = new WeakMap<ApiCatalogue, ReturnType<typeof buildOpenApiDocument>>();

/**
 * The gateway's OpenAPI document, built once on first use (by then every plugin registered its
 * routes) and shared by `/v1/openapi.json` and the console's `/console/operations.js`.
 */
export function gatewayDocument(gateway: Gateway, catalogue: ApiCatalogue): ReturnType<typeof buildOpenApiDocument> {
  let document = documents.get(catalogue);
  if (!document) {
    document = buildOpenApiDocument(catalogue, { version: parleyVersion(), serverUrl: gateway.config.server.publicBaseUrl, plugins: gateway.pluginNames() });
    documents.set(catalogue, document);
  }
  return document;
}

export const documentRoutes =
  (gateway: Gateway, catalogue: ApiCatalogue) =>
  ({ route }: RouteHelpers): void => {
    let document: string | undefined;
    route(
      {
        method: 'get',
        path: '/v1/openapi.json',
        auth: 'none',
        tags: ['reference'],
        summary: 'This document: the OpenAPI 3.1 description of the routes this gateway serves',
        description: 'Built from the route contracts of the kernel and of the plugins this gateway runs; it names no tenant.',
        responses: { 200: { description: 'The OpenAPI document', schema: z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.record(z.string(), z.unknown()) }) } },
      },
      (_req, res) => {
        document ??= JSON.stringify(gatewayDocument(gateway, catalogue));
        res.type('application/json').send(document);
      },
    );
    route(
      { method: 'get', path: '/docs', auth: 'none', tags: ['reference'], summary: 'The API reference, rendered from /v1/openapi.json', responses: { 200: { description: 'An HTML page', contentType: 'text/html' } } },
      (_req, res) => {
        res.set({ 'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'", 'cache-control': 'no-cache' });
        res.type('text/html').send(DOCS_PAGE);
      },
    );
  };

/**
 * The reference page. The script fetches the document and renders each operation: method, path,
 * auth, parameters, body and response schemas, error codes, deprecation. All text goes through
 * `textContent`, never `innerHTML`: a plugin's description cannot inject markup.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley API reference</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; display: flex; }
  nav { width: 260px; flex: none; height: 100vh; overflow: auto; position: sticky; top: 0; background: #f4f5f8; padding: 16px; box-sizing: border-box; font-size: 13px; }
  nav a { display: block; color: inherit; text-decoration: none; padding: 2px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  nav h3 { margin: 14px 0 4px; font-size: 12px; text-transform: uppercase; color: #667; }
  main { padding: 24px 40px; max-width: 980px; flex: 1; min-width: 0; }
  .op { border: 1px solid #dde; border-radius: 6px; margin: 18px 0; padding: 12px 16px; }
  .op.deprecated { opacity: .8; border-style: dashed; }
  .method { display: inline-block; min-width: 58px; font-weight: 700; text-transform: uppercase; font-size: 12px; }
  .get { color: #1565c0 } .post { color: #2e7d32 } .put, .patch { color: #ef6c00 } .delete { color: #c62828 }
  code, pre { font: 12.5px ui-monospace, monospace; }
  pre { background: #f7f7fa; padding: 8px; overflow: auto; max-height: 320px; }
  table { border-collapse: collapse; margin: 6px 0; } td, th { border-bottom: 1px solid #eee; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
  .badge { font-size: 11px; background: #eef; border-radius: 3px; padding: 1px 5px; margin-left: 6px; }
  .warn { background: #fff3e0; }
  details summary { cursor: pointer; color: #445; }
</style>
</head>
<body>
<nav id="nav"><strong>Parley API</strong></nav>
<main id="main"><p id="status">Loading /v1/openapi.json…</p></main>
<script>
(function () {
  'use strict';
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function resolve(doc, schema) {
    if (schema && schema.$ref && schema.$ref.indexOf('#/components/schemas/') === 0) {
      return doc.components.schemas[schema.$ref.slice(21)] || schema;
    }
    return schema;
  }
  function schemaBlock(doc, schema) {
    var seen = {};
    function inline(s, depth) {
      if (!s || typeof s !== 'object' || depth > 6) return s;
      if (Array.isArray(s)) return s.map(function (x) { return inline(x, depth + 1); });
      if (s.$ref) {
        var name = s.$ref.split('/').pop();
        if (seen[name]) return { $ref: name };
        seen[name] = true;
        var out = inline(resolve(doc, s), depth + 1);
        seen[name] = false;
        return out;
      }
      var copy = {};
      Object.keys(s).forEach(function (k) { if (k !== 'pattern') copy[k] = inline(s[k], depth + 1); });
      return copy;
    }
    return el('pre', {}, [JSON.stringify(inline(schema, 0), null, 2)]);
  }
  function render(doc) {
    var main = document.getElementById('main');
    var nav = document.getElementById('nav');
    main.textContent = '';
    main.appendChild(el('h1', {}, [doc.info.title + ' ', el('small', {}, ['v' + doc.info.version])]));
    if (doc.info.description) main.appendChild(el('p', {}, [doc.info.description]));
    main.appendChild(el('p', {}, ['Machine-readable: ', el('a', { href: '/v1/openapi.json' }, ['/v1/openapi.json']), ' (OpenAPI ' + doc.openapi + ').']));
    var byTag = {};
    Object.keys(doc.paths).forEach(function (path) {
      Object.keys(doc.paths[path]).forEach(function (method) {
        var op = doc.paths[path][method];
        var tag = (op.tags && op.tags[0]) || 'other';
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: method, op: op });
      });
    });
    Object.keys(byTag).sort().forEach(function (tag) {
      nav.appendChild(el('h3', {}, [tag]));
      main.appendChild(el('h2', { id: 'tag-' + tag }, [tag]));
      byTag[tag].forEach(function (entry) {
        var op = entry.op;
        var id = op.operationId;
        nav.appendChild(el('a', { href: '#' + id, title: entry.method.toUpperCase() + ' ' + entry.path }, [el('span', { 'class': 'method ' + entry.method }, [entry.method]), entry.path]));
        var section = el('section', { 'class': 'op' + (op.deprecated ? ' deprecated' : ''), id: id, 'data-operation': id }, [
          el('h3', {}, [el('span', { 'class': 'method ' + entry.method }, [entry.method]), ' ', el('code', {}, [entry.path]), op.deprecated ? el('span', { 'class': 'badge warn' }, ['deprecated']) : null, el('span', { 'class': 'badge' }, ['auth: ' + op['x-parley-auth']])]),
          el('p', {}, [op.summary || '']),
        ]);
        (op.description || '').split('\\n\\n').forEach(function (para) { if (para) section.appendChild(el('p', {}, [para])); });
        if (op.parameters && op.parameters.length) {
          var rows = op.parameters.map(function (p) {
            return el('tr', {}, [el('td', {}, [el('code', {}, [p.name])]), el('td', {}, [p.in + (p.required ? ', required' : '')]), el('td', {}, [el('code', {}, [JSON.stringify(Object.assign({}, p.schema, { pattern: undefined }))])]), el('td', {}, [p.description || ''])]);
          });
          section.appendChild(el('h4', {}, ['Parameters']));
          section.appendChild(el('table', {}, [el('tr', {}, [el('th', {}, ['name']), el('th', {}, ['in']), el('th', {}, ['schema']), el('th', {}, [''])])].concat(rows)));
        }
        if (op.requestBody) {
          var types = Object.keys(op.requestBody.content);
          var body = op.requestBody.content[types[0]];
          section.appendChild(el('h4', {}, ['Body (' + types[0] + ')']));
          section.appendChild(schemaBlock(doc, body.schema));
          if (body.example !== undefined) section.appendChild(el('details', {}, [el('summary', {}, ['Example']), el('pre', {}, [JSON.stringify(body.example, null, 2)])]));
        }
        section.appendChild(el('h4', {}, ['Responses']));
        Object.keys(op.responses).forEach(function (status) {
          var r = op.responses[status];
          var codes = r['x-parley-error-codes'];
          var block = el('details', { 'data-status': status }, [el('summary', {}, [status + ' ', r.description || '', codes ? ' ' : '', codes ? el('code', {}, [codes.join(', ')]) : null])]);
          var content = r.content && r.content[Object.keys(r.content)[0]];
          if (content && content.schema && !codes) block.appendChild(schemaBlock(doc, content.schema));
          if (content && content.example !== undefined && !codes) block.appendChild(el('pre', {}, [JSON.stringify(content.example, null, 2)]));
          section.appendChild(block);
        });
        main.appendChild(section);
      });
    });
    document.body.setAttribute('data-rendered', String(Object.keys(doc.paths).length));
  }
  fetch('/v1/openapi.json').then(function (r) { return r.json(); }).then(render).catch(function (e) {
    document.getElementById('status').textContent = 'Could not load /v1/openapi.json: ' + e.message;
  });
})();
</script>
</body>
</html>
`;
