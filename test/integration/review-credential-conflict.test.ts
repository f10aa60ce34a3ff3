import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IP, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Adversarial review: one request, two credentials. Whichever authenticator came first used to
 * win silently (a bearer token over X-API-Key; `Authorization: ApiKey` over X-API-Key), so the
 * other key's allow-list, failure count and audit never saw the request and a proxy judging by
 * the other header disagreed about who called. Now: 400 CREDENTIALS_CONFLICT, before any lookup.
 */
describe('conflicting credentials in one request', () => {
  let t: TestServer;
  let keyA = '';
  let keyB = '';
  let bearer = '';

  const call = async (headers: Record<string, string>) => {
    const r = await fetch(`${t.url}/auth/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': IP.london, ...headers },
      body: JSON.stringify({ permission: 'VIEW_CASES' }),
    });
    return [r.status, r.status === 200 ? 'OK' : ((await r.json()) as { code: string }).code];
  };

  beforeAll(async () => {
    t = await startTestServer();
    for (const name of ['amy', 'bob']) await t.services.users.create({ email: `${name}@example.test`, password: 'a-long-enough-password', roles: ['TECHNICIAN'] });
    const amy = await signIn(t.url, 'amy@example.test', 'a-long-enough-password', { returnTokens: true });
    const bob = await signIn(t.url, 'bob@example.test', 'a-long-enough-password');
    bearer = amy.token;
    // Bob's key may only be used from Mountain View: the conflict must not route around that.
    keyA = (await amy.c.post('/api/api-keys', { name: 'a', permissions: ['VIEW_CASES'] })).body.key;
    keyB = (await bob.c.post('/api/api-keys', { name: 'b', permissions: ['VIEW_CASES'], allowedCidrs: ['8.8.8.0/24'] })).body.key;
    expect(bearer.length).toBeGreaterThan(20);
  });
  afterAll(async () => t?.close());

  it('each credential alone is answered as before', async () => {
    expect(await call({ authorization: `Bearer ${bearer}` })).toEqual([200, 'OK']);
    expect(await call({ 'x-api-key': keyA })).toEqual([200, 'OK']);
    expect(await call({ authorization: `ApiKey ${keyA}` })).toEqual([200, 'OK']);
    expect(await call({ 'x-api-key': keyB })).toEqual([403, 'API_KEY_ADDRESS_REFUSED']);
  });

  it('Authorization (Bearer or ApiKey) beside X-API-Key is refused, whichever key is valid', async () => {
    expect(await call({ authorization: `Bearer ${bearer}`, 'x-api-key': keyB })).toEqual([400, 'CREDENTIALS_CONFLICT']);
    expect(await call({ authorization: `ApiKey ${keyA}`, 'x-api-key': keyB })).toEqual([400, 'CREDENTIALS_CONFLICT']);
    expect(await call({ authorization: `ApiKey ${keyA}`, 'x-api-key': 'garbage' })).toEqual([400, 'CREDENTIALS_CONFLICT']);
    expect(await call({ authorization: 'Bearer not-a-real-token-at-all-x', 'x-api-key': keyA })).toEqual([400, 'CREDENTIALS_CONFLICT']);
  });

  it('a repeated X-API-Key header is refused too; forward-auth answers the same', async () => {
    const twice = new Headers({ 'content-type': 'application/json', 'x-forwarded-for': IP.london });
    twice.append('x-api-key', keyA);
    twice.append('x-api-key', keyB);
    const r = await fetch(`${t.url}/auth/authorize`, { method: 'POST', headers: twice, body: JSON.stringify({ permission: 'VIEW_CASES' }) });
    expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([400, 'CREDENTIALS_CONFLICT']);
    const h = new Headers({ 'x-forwarded-for': IP.london, 'x-required-permission': 'VIEW_CASES' });
    h.append('x-api-key', keyA);
    h.append('x-api-key', keyB);
    const v = await fetch(`${t.url}/auth/verify`, { headers: h });
    expect(v.status).toBe(400); // forward-auth answers with status only
    const both = await fetch(`${t.url}/auth/verify`, { headers: { 'x-forwarded-for': IP.london, authorization: `Bearer ${bearer}`, 'x-api-key': keyB } });
    expect(both.status).toBe(400);
  });
});

describe('PERMISSION_UNKNOWN through a limited API key', () => {
  let t: TestServer;
  afterAll(async () => t?.close());

  it("a key an ADMIN made for one permission is told PERMISSION_DENIED for a name that does not exist, like for one that does", async () => {
    t = await startTestServer();
    const admin = await signInAdmin(t);
    const made = await admin.post('/api/api-keys', { name: 'narrow', permissions: ['VIEW_CASES'] });
    expect(made.status).toBe(201);
    const ask = async (permission: string) => {
      const r = await fetch(`${t.url}/auth/authorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': IP.london, 'x-api-key': made.body.key },
        body: JSON.stringify({ permission }),
      });
      return [r.status, ((await r.json()) as { code: string }).code];
    };
    expect(await ask('NO_SUCH_PERMISSION')).toEqual([403, 'PERMISSION_DENIED']);
    expect(await ask('MANAGE_CONFIG')).toEqual([403, 'PERMISSION_DENIED']);
    // The ADMIN's own session is still told.
    expect((await admin.post('/auth/authorize', { permission: 'NO_SUCH_PERMISSION' })).body.code).toBe('PERMISSION_UNKNOWN');
  });
});
