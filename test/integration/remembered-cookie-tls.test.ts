import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rememberCookieName } from '../../src/session/remembered-devices.ts';
import { device, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Under TLS (PUBLIC_URL https) the remembered-device cookie is written with cookie-prefix rules a
 * browser accepts: a `__Host-` cookie must have `Path=/`, and this one is scoped to the login
 * routes — so it is `__Secure-` prefixed. A stale or forged one presented at a login start is
 * cleared, and the login goes on (it once answered 500: the framework refuses a `__Host-` cookie
 * with another path).
 */
describe('remembered-device cookie under TLS', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PUBLIC_URL: 'https://login.example.test' });
  });
  afterAll(async () => t?.close());

  it('a stale token at a login start is cleared with a cookie browsers keep, and the flow starts', async () => {
    const name = rememberCookieName(true);
    const r = await fetch(`${t.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-device-id': device('tls-remember'), cookie: `${name}=${'A'.repeat(43)}` },
      body: '{}',
    });
    expect(r.status).toBe(201);
    const cleared = r.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
    expect(cleared).toBeDefined();
    const attrs = cleared!.split(';').map((a) => a.trim().toLowerCase());
    expect(attrs).toContain('secure');
    const path = attrs.find((a) => a.startsWith('path='));
    // The prefix rules (RFC 6265bis §4.1.3): __Host- needs Path=/ and Secure; __Secure- needs Secure.
    if (name.startsWith('__Host-')) expect(path).toBe('path=/');
    expect(name.startsWith('__Host-') || name.startsWith('__Secure-')).toBe(true);
    expect(path).toBe('path=/auth/login');
  });
});
