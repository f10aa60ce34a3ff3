import { createHash } from 'node:crypto';
import { inspectRoutes } from 'hono/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { openApiPath } from '../../src/http/openapi/document.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/** What `ALL` (forward-auth) is documented as. */
const ALL_AS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** `METHOD /path/{param}` of every route (not middleware) registered on the app. */
function appOperations(app: ReturnType<typeof createApp>): string[] {
  const ops = inspectRoutes(app)
    .filter((r) => !r.isMiddleware)
    .flatMap((r) => (r.method === 'ALL' ? ALL_AS : [r.method]).map((m) => `${m} ${openApiPath(r.path)}`));
  return [...new Set(ops)].sort();
}

function documentOperations(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths)
    .flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
}

describe('the OpenAPI document', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ DEV_MAILBOX: 'on' });
  });
  afterAll(async () => t?.close());

  it('documents every route registered on the app, and nothing the app lacks (dev mailbox on and off)', async () => {
    for (const devMailbox of [true, false]) {
      const app = createApp({ ...t.services, config: { ...t.services.config, devMailbox } });
      const doc = (await (await app.request('/openapi.json')).json()) as any;
      const inApp = appOperations(app);
      const inDoc = documentOperations(doc);
      // Named, so a new route without docs says which one.
      expect(inApp.filter((o) => !inDoc.includes(o)), 'routes missing from the document').toEqual([]);
      expect(inDoc.filter((o) => !inApp.includes(o)), 'documented routes the app does not have').toEqual([]);
      expect(inApp.length).toBeGreaterThan(30);
      expect(inDoc.includes('GET /dev/mailbox')).toBe(devMailbox);
    }
  });

  it('is served at /openapi.json as OpenAPI 3.1 with the problem component, security schemes and resolvable refs', async () => {
    const r = await fetch(`${t.url}/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await r.json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['bearer', 'sessionCookie']);
    expect(doc.components.securitySchemes.sessionCookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: 'threshold_session' });
    expect(doc.components.schemas.Problem.required).toEqual(expect.arrayContaining(['type', 'title', 'status', 'code']));
    const ids = new Set<string>();
    const text = JSON.stringify(doc);
    for (const [, kind, ref] of text.matchAll(/"\$ref":"#\/components\/(schemas|responses)\/([A-Za-z_]+)"/g)) expect(doc.components[kind][ref], ref).toBeDefined();
    expect(doc.paths['/health'].get.responses['413']).toEqual({ $ref: '#/components/responses/PAYLOAD_TOO_LARGE' });
    for (const item of Object.values(doc.paths) as Record<string, { operationId: string; responses: Record<string, unknown> }>[]) {
      for (const op of Object.values(item)) {
        expect(ids.has(op.operationId), op.operationId).toBe(false);
        ids.add(op.operationId);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }
    // Generated from the schemas the routes validate with, e.g. the login event union.
    const event = doc.paths['/auth/login/{id}'].post.requestBody.content['application/json'].schema;
    expect(event.oneOf.map((o: { properties: { type: { const: string } } }) => o.properties.type.const)).toEqual(
      expect.arrayContaining(['password', 'totp', 'webauthn', 'recovery_code']),
    );
    expect(doc.paths['/auth/login/{id}'].post.responses['401'].content['application/problem+json'].schema.$ref).toBe('#/components/schemas/Problem');
    expect(doc.paths['/auth/mfa/{id}'].patch.security).toEqual([{ sessionCookie: [] }, { bearer: [] }]);
    expect(doc.paths['/auth/login'].post.security).toEqual([]);
  });

  it('has a reference page with no script, no third-party asset and a strict CSP that forbids framing', async () => {
    const r = await fetch(`${t.url}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = r.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    const html = await r.text();
    expect(html).not.toMatch(/<script|\son[a-z]+=|javascript:/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    // The one inline stylesheet is the one the CSP hash allows.
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1];
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    for (const path of ['/auth/login/{id}', '/auth/stepup', '/api/users', '/auth/token', '/openapi.json']) expect(html).toContain(`${path}</h3>`);
  });
});

describe('405 for a wrong method on a path that exists', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t?.close());

  it('answers 405 problem+json METHOD_NOT_ALLOWED with Allow, anywhere in the app', async () => {
    const cases: [string, string, string][] = [
      ['GET', '/auth/login', 'POST'],
      ['DELETE', '/auth/login/abc', 'GET, HEAD, POST'],
      ['PUT', '/auth/mfa/123', 'DELETE, PATCH'],
      ['POST', '/health', 'GET, HEAD'],
      ['GET', '/auth/token', 'POST'],
      ['PUT', '/api/users', 'GET, HEAD, POST'],
      ['PATCH', '/openapi.json', 'GET, HEAD'],
      ['GET', '/auth/logout', 'POST'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await fetch(`${t.url}${path}`, { method });
      expect([method, path, r.status]).toEqual([method, path, 405]);
      expect(r.headers.get('allow')).toBe(allow);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(((await r.json()) as any).code).toBe('METHOD_NOT_ALLOWED');
    }
  });

  it('keeps 404 for paths that do not exist, and forward-auth answers every method', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/auth/login/a/b'], ['GET', '/dev/mailbox']]) {
      const r = await fetch(`${t.url}${path}`, { method });
      expect(r.status).toBe(404);
      expect(((await r.json()) as any).code).toBe('NOT_FOUND');
    }
    expect((await fetch(`${t.url}/auth/verify`, { method: 'PUT' })).status).toBe(401);
  });
});
