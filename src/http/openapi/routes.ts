import { Hono } from 'hono';
import { buildOpenApi, type OpenApiOptions } from './document.ts';
import { REFERENCE_CSP, renderReference } from './reference.ts';

/** `GET /openapi.json` (the contract) and `GET /docs` (its reference page), built once at start. */
export function contractRoutes(opts: OpenApiOptions) {
  const doc = buildOpenApi(opts);
  const json = JSON.stringify(doc);
  const html = renderReference(doc);
  const app = new Hono();
  app.get('/openapi.json', (c) => {
    c.header('Cache-Control', 'no-cache');
    return c.body(json, 200, { 'content-type': 'application/json; charset=utf-8' });
  });
  app.get('/docs', (c) => {
    c.header('Content-Security-Policy', REFERENCE_CSP);
    c.header('X-Frame-Options', 'DENY');
    c.header('Cache-Control', 'no-cache');
    return c.html(html);
  });
  return app;
}
