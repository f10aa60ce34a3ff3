import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

/** Issue 11 §5: OAuth client_credentials for registered machine clients (RFC 6749 §4.4). */
let srv: TestServer;
let admin: Client;
let secret: string;

const form = (params: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${srv.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) }).then(async (r) => ({
    status: r.status,
    headers: r.headers,
    body: (await r.json()) as Record<string, any>,
  }));
const basic = (id: string, s: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(s)}`).toString('base64')}` });

beforeAll(async () => {
  srv = await startTestServer();
  admin = await signInAdmin(srv);
  const r = await admin.post('/api/machine-clients', { clientId: 'billing-sync', roles: ['TECHNICIAN'], scopes: ['cases:read', 'cases:write'] });
  expect(r.status).toBe(201);
  secret = r.body.clientSecret;
  expect(secret).toMatch(/^thr_cs_/);
}, 60_000);

afterAll(async () => {
  await srv?.close();
});

describe('client_credentials', () => {
  it('issues an access token with sub = client id, its roles and scopes, signed with the published keys', async () => {
    const r = await form({ grant_type: 'client_credentials' }, basic('billing-sync', secret));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'cases:read cases:write' });
    expect(r.body.refresh_token).toBeUndefined();
    const jwks = (await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as Parameters<typeof createLocalJWKSet>[0];
    const { payload, protectedHeader } = await jwtVerify(r.body.access_token, createLocalJWKSet(jwks), { issuer: srv.config.PUBLIC_URL, typ: 'at+jwt' });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ sub: 'billing-sync', client_id: 'billing-sync', roles: ['TECHNICIAN'], scope: 'cases:read cases:write' });
    expect(payload.sid).toBeUndefined();
    // Not a session: routes for people do not take it.
    expect((await new Client(srv.url).get('/auth/me', { authorization: `Bearer ${r.body.access_token}` })).status).toBe(401);
  });

  it('the token authorizes what the client\'s roles grant, at /auth/authorize and /auth/verify; a tampered one is 401', async () => {
    const { body } = await form({ grant_type: 'client_credentials' }, basic('billing-sync', secret));
    const bearer = { authorization: `Bearer ${body.access_token}` };
    const c = new Client(srv.url);
    expect((await c.post('/auth/authorize', { permission: 'VIEW_CASES', namespace: 'any' }, bearer)).status).toBe(200);
    expect((await c.post('/auth/authorize', { permission: 'VIEW_CASES' }, bearer)).status).toBe(200);
    const denied = await c.post('/auth/authorize', { permission: 'MANAGE_USERS' }, bearer);
    expect(denied.status).toBe(403);
    const fwd = await c.get('/auth/verify', { ...bearer, 'x-required-permission': 'VIEW_CASES' });
    expect(fwd.status).toBe(200);
    expect(fwd.headers.get('x-auth-credential')).toBe('service_account:billing-sync');
    expect(fwd.headers.get('x-auth-user')).toBe('client:billing-sync');
    // Claims changed (more roles), signature kept: refused.
    const [h, p, sig] = body.access_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, roles: ['ADMIN'] })).toString('base64url')}.${sig}`;
    expect((await c.post('/auth/authorize', { permission: 'MANAGE_USERS' }, { authorization: `Bearer ${forged}` })).status).toBe(401);
  });

  it('client_secret_post with a narrower scope', async () => {
    const r = await form({ grant_type: 'client_credentials', client_id: 'billing-sync', client_secret: secret, scope: 'cases:read' });
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('cases:read');
  });

  it('refuses a wrong secret, an unknown client, two methods at once, a scope beyond the client', async () => {
    const wrong = await form({ grant_type: 'client_credentials' }, basic('billing-sync', `${secret.slice(0, -1)}A`));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic/);
    const unknown = await form({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: secret });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toBe('invalid_client');
    expect((await form({ grant_type: 'client_credentials', client_id: 'billing-sync' }, basic('billing-sync', secret))).body.error).toBe('invalid_request');
    const scope = await form({ grant_type: 'client_credentials', scope: 'cases:read admin' }, basic('billing-sync', secret));
    expect(scope.status).toBe(400);
    expect(scope.body.error).toBe('invalid_scope');
    const reasons = (await srv.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'client_credentials.refused' ORDER BY seq")).rows.map((x) => x.reason);
    expect(reasons).toEqual(['INVALID_CLIENT', 'INVALID_CLIENT', 'INVALID_SCOPE']);
  });

  it('stores no secret, lists none, refuses unknown roles, and a removed client stops at once', async () => {
    const row = await srv.db.query<{ secret_hash: string }>("SELECT secret_hash FROM machine_clients WHERE client_id = 'billing-sync'");
    expect(row.rows[0].secret_hash).not.toContain(secret.slice(7));
    const list = await admin.get('/api/machine-clients');
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(list.body.map((x: { clientId: string }) => x.clientId)).toContain('billing-sync');
    expect((await admin.post('/api/machine-clients', { roles: ['NO_SUCH_ROLE'] })).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.post('/api/machine-clients', { clientId: 'billing-sync' })).body.code).toBe('CONFLICT');
    expect((await admin.req('DELETE', '/api/machine-clients/billing-sync')).status).toBe(204);
    expect((await form({ grant_type: 'client_credentials' }, basic('billing-sync', secret))).status).toBe(401);
  });
});
