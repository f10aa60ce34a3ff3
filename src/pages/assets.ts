import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';

/**
 * The pages' static files, read once at start and served by Threshold itself (nothing from a CDN):
 * our stylesheet and small scripts (src/pages/assets/, copied into dist/ by `npm run build`) and
 * @simplewebauthn/browser's own published browser bundle, straight from node_modules.
 */
const OWN = ['pages.css', 'login.js', 'account.js'] as const;

function vendorWebAuthn(): Buffer {
  // The package's exports name only its entry points; its browser bundle sits beside them.
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return readFileSync(join(dirname(dirname(entry)), 'dist/bundle/index.umd.min.js'));
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function load(): Map<string, Asset> {
  const dir = fileURLToPath(new URL('./assets/', import.meta.url));
  const files = new Map<string, Buffer>(OWN.map((n) => [n, readFileSync(join(dir, n))]));
  files.set('webauthn.js', vendorWebAuthn());
  return new Map(
    [...files].map(([name, body]) => [
      name,
      { body, type: name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` },
    ]),
  );
}

let cache: Map<string, Asset> | null = null;
/** Every asset, loaded on first use (a missing file fails the start of the pages, loudly). */
export const assets = () => (cache ??= load());

/** `GET /assets/<name>`: revalidated by ETag, so a deploy is picked up at once. */
export function assetRoutes() {
  const all = assets();
  const app = new Hono();
  app.get('/assets/:name', (c) => {
    const a = all.get(c.req.param('name'));
    if (!a) return c.notFound();
    c.header('Cache-Control', 'no-cache');
    c.header('ETag', a.etag);
    if (c.req.header('if-none-match') === a.etag) return c.body(null, 304);
    return c.body(new Uint8Array(a.body), 200, { 'content-type': a.type });
  });
  return app;
}
