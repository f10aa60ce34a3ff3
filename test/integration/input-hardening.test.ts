import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Issue 7 items 1 and 2: text Postgres cannot store as given (NUL, lone UTF-16 surrogates) gave
 * 500s, some unauthenticated, and one signed-in request could break the audit chain for good.
 * Every case answers 400 VALIDATION_FAILED naming the field, and the chain still verifies.
 */

/** Raw bytes over a socket: fetch would turn a lone surrogate into U+FFFD before sending. */
function raw(url: string, method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = text;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body: json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const refused = (r: { status: number; body: any }, field: string) => {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.code).toBe('VALIDATION_FAILED');
  expect(r.body.detail).toMatch(new RegExp(`^${field}: `));
};

describe('NUL and lone surrogates at the boundary', () => {
  let t: TestServer;
  let admin: Client;
  beforeAll(async () => {
    t = await startTestServer({ DEV_MAILBOX: 'on', RATE_LIMIT_FLOW_STARTS_PER_MINUTE: '1000', RATE_LIMIT_DELAY_BASE_MS: '0' });
    admin = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('hardening-admin') });
    expect((await admin.passwordLogin(ADMIN.email, ADMIN.password)).body.step).toBe('done');
  });
  afterAll(async () => t?.close());

  it('a permission name with a lone surrogate is refused and the audit chain stays verifiable', async () => {
    const before = await t.services.audit.verify();
    for (const permission of ['MANAGE_USERS\ud800', '\udc00', 'A\u0000B']) refused(await admin.post('/auth/authorize', { permission }), 'permission');
    // A storable oddity (U+FFFD itself) is still audited, and verifies.
    expect((await admin.post('/auth/authorize', { permission: 'NOPE\ufffd' })).status).toBe(403);
    const after = await t.services.audit.verify();
    expect(after.ok).toBe(true);
    expect(after.checked).toBeGreaterThan(before.checked);
  });

  it('unauthenticated: login start, login events and path parameters', async () => {
    const anon = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('hardening-anon') });
    refused(await anon.post('/auth/login', { identifier: 'a\u0000@example.test' }), 'identifier');
    refused(await anon.post('/auth/login', { identifier: 'x\ud83d@example.test' }), 'identifier');
    const flow = await anon.post('/auth/login', {});
    expect(flow.status).toBe(201);
    refused(await anon.post(`/auth/login/${flow.body.id}`, { type: 'password', identifier: 'admin@example.test\u0000', password: 'x' }), 'identifier');
    refused(await anon.post(`/auth/login/${flow.body.id}`, { type: 'password', identifier: 'admin@example.test', password: 'p\udfff' }), 'password');
    refused(await anon.post(`/auth/login/${flow.body.id}`, { type: 'webauthn', response: { id: 'x', nested: [{ ['k\ud800']: 1 }] } }), 'response.nested.0.\\(invalid member name\\)');
    // The flow is untouched by the refused events.
    expect((await anon.get(`/auth/login/${flow.body.id}`)).body.step).toBe('password');
    refused(await anon.get('/auth/login/%00'), 'path');
    refused(await anon.post('/auth/login/abc%00def', { type: 'resend' }), 'path');
    refused(await anon.get('/auth/check?x=%00'), 'query.x');
    refused(await anon.get('/auth/check?%00=1'), 'query');
  });

  it('signed in: step-up, factor labels, admin user create, dev mailbox query', async () => {
    refused(await admin.post('/auth/stepup', { acr_values: 'urn:x\ud800' }), 'acr_values');
    refused(await admin.post('/auth/stepup', { permission: 'P\u0000' }), 'permission');
    const e = await admin.post('/auth/mfa/totp');
    expect(e.status).toBe(201);
    refused(await admin.req('PATCH', `/auth/mfa/${e.body.id}`, { label: 'phone\u0000' }), 'label');
    refused(await admin.req('PATCH', `/auth/mfa/${e.body.id}`, { label: '\ud800' }), 'label');
    refused(await admin.post('/api/users', { email: 'surrogate@example.test', displayName: 'Eve\udc00' }), 'displayName');
    refused(await admin.post('/api/users', { email: 'nul@example.test\u0000' }), 'email');
    refused(await admin.get('/dev/mailbox?to=a%00b'), 'query.to');
    // The mailbox answers only a local client talking to it directly (no forwarding header).
    expect((await new Client(t.url).get('/dev/mailbox?to=a%EF%BF%BDb')).status).toBe(200);
    expect((await t.services.audit.verify()).ok).toBe(true);
  });

  it('deep nesting, wrong types, huge arrays, many unknown members, a BOM and invalid UTF-8 are 4xx, never 500', async () => {
    const flow = await new Client(t.url, { 'x-forwarded-for': IP.sydney }).post('/auth/login', {});
    const path = `/auth/login/${flow.body.id}`;
    const deep = `{"type":"webauthn","response":{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`;
    refused(await raw(t.url, 'POST', path, deep), 'response.a(\\.0)+');
    refused(await raw(t.url, 'POST', path, JSON.stringify({ type: 'password', identifier: 42, password: ['x'] })), '(identifier|password)');
    refused(await raw(t.url, 'POST', '/auth/login', `[${'0,'.repeat(30_000)}0]`), 'body');
    const many = await raw(t.url, 'POST', '/auth/login', JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]))));
    expect(many.status).toBe(400);
    expect(many.body.detail.length).toBeLessThanOrEqual(1001);
    // Duplicate members: refused, so no reader in front of us can see another value than we do.
    refused(await raw(t.url, 'POST', '/auth/login', '{"returnTokens":false, "returnTokens" :true}'), 'returnTokens');
    refused(await raw(t.url, 'POST', path, '{"type":"webauthn","response":{"a":[{"x":1,"y":{"\\u0078":2,"x":3}}]}}'), 'x');
    // The same name in different objects, or as a value, is fine.
    expect((await raw(t.url, 'POST', '/auth/login', '{"identifier":"returnTokens","returnTokens":false}')).status).toBe(201);
    expect((await raw(t.url, 'POST', '/auth/login', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]))).status).toBe(201);
    // Invalid UTF-8 decodes to U+FFFD (storable): the identifier is simply unknown.
    const bad = Buffer.concat([Buffer.from('{"identifier":"a'), Buffer.from([0xff, 0xed, 0xa0, 0x80]), Buffer.from('@example.test"}')]);
    expect((await raw(t.url, 'POST', '/auth/login', bad)).status).toBe(201);
    // The JSON escape of a NUL is refused as the character itself is.
    refused(await raw(t.url, 'POST', '/auth/login', '{"identifier":"a\\u0000b"}'), 'identifier');
  });

  it('headers cannot carry such text: Node refuses NUL in a header before the app runs', async () => {
    const u = new URL(t.url);
    const head = await new Promise<string>((resolve) => {
      const sock = connect(Number(u.port), u.hostname, () => sock.end('GET /auth/check HTTP/1.1\r\nHost: x\r\nUser-Agent: a\u0000b\r\n\r\n', 'latin1'));
      let out = '';
      sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
      sock.on('close', () => resolve(out));
      sock.on('error', () => resolve(out));
    });
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  });
});
