import { createHash } from 'node:crypto';
import type { OpenApiDocument } from './document.ts';

/**
 * The reference page of the OpenAPI document, rendered here as static HTML: no script at all, no
 * third-party asset, one inline stylesheet allowed by its hash. Its CSP forbids everything else,
 * including being framed (clickjacking) and form posts.
 */

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** `code` spans for backticks; everything else escaped. */
const prose = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

const STYLE = `
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{margin-bottom:.25rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.25rem;margin-top:2.5rem}
.op{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
.op h3{font-size:1rem;margin:.25rem 0;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:4.5rem;font-weight:700}.get{color:#0969da}.post{color:#1a7f37}
.delete{color:#cf222e}.patch,.put{color:#9a6700}.head{color:#6e7781}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
pre{background:#f6f8fa;padding:.5rem;overflow:auto;font-size:13px;max-height:24rem}
code{font-family:ui-monospace,monospace;background:#f6f8fa;padding:0 .2rem}
details summary{cursor:pointer}nav a{margin-right:1rem}
`;

const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

export const REFERENCE_CSP = [
  "default-src 'none'",
  `style-src ${STYLE_HASH}`,
  "script-src 'none'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

type Op = {
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Record<string, unknown>[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { $ref?: string; description: string; content?: Record<string, { schema: unknown }>; headers?: Record<string, { description?: string }> }>;
};

function security(op: Op): string {
  const s = op.security ?? [];
  if (s.length === 0) return 'public';
  const named = s.flatMap((x) => Object.keys(x));
  const optional = s.some((x) => Object.keys(x).length === 0);
  return `${optional ? 'optional: ' : ''}${named.join(' or ')}`;
}

function renderOp(path: string, method: string, op: Op): string {
  const parts = [
    `<div class="op" id="${esc(`${method}-${path}`)}"><h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span>${esc(path)}</h3>`,
    `<p>${prose(op.summary ?? '')}</p>`,
    op.description ? `<p>${prose(op.description)}</p>` : '',
    `<p><strong>Authentication:</strong> ${esc(security(op))}</p>`,
  ];
  if (op.parameters?.length) {
    parts.push('<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th></tr>');
    for (const p of op.parameters) {
      parts.push(`<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : 'no'}</td><td>${prose(p.description ?? '')}</td></tr>`);
    }
    parts.push('</table>');
  }
  if (op.requestBody) {
    for (const [type, { schema }] of Object.entries(op.requestBody.content)) {
      parts.push(`<details><summary>Request body: <code>${esc(type)}</code></summary><pre>${esc(JSON.stringify(schema, null, 2))}</pre></details>`);
    }
  }
  parts.push('<table><tr><th>status</th><th>answer</th></tr>');
  for (const [status, r] of Object.entries(op.responses)) {
    // Shared answers (any route) are listed once, at the top of the page.
    if (r.$ref) continue;
    const types = Object.keys(r.content ?? {});
    const headers = Object.keys(r.headers ?? {});
    parts.push(
      `<tr><td>${esc(status)}</td><td>${prose(r.description)}${types.length ? ` <small>(${types.map((t) => `<code>${esc(t)}</code>`).join(', ')})</small>` : ''}` +
        `${headers.length ? `<br><small>headers: ${headers.map((h) => `<code>${esc(h)}</code>`).join(', ')}</small>` : ''}</td></tr>`,
    );
  }
  parts.push('</table></div>');
  return parts.join('');
}

export function renderReference(doc: OpenApiDocument): string {
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, Op>)) {
      const tag = op.tags?.[0] ?? 'Other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), renderOp(path, method, op)]);
    }
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2 id="${esc(tag)}">${esc(tag)}</h2>${ops.join('')}`);
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${esc(doc.info.title)} HTTP API reference</title><style>${STYLE}</style></head><body>` +
    `<h1>${esc(doc.info.title)} HTTP API</h1><p>Version ${esc(doc.info.version)}. The machine-readable contract is ` +
    `<a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p><p>${prose(doc.info.description)}</p>` +
    `<p>Any route may also answer: ${Object.values(doc.components.responses).map((r) => prose(r.description)).join(' · ')} (problem+json).</p>` +
    `<nav>${[...byTag.keys()].map((t) => `<a href="#${esc(t)}">${esc(t)}</a>`).join('')}</nav>` +
    `${sections.join('')}<h2>Problem details</h2><pre>${esc(JSON.stringify(doc.components.schemas.Problem, null, 2))}</pre></body></html>`
  );
}
