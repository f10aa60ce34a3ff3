import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { ADMIN, Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

/** Requests and flow transitions at LOG_LEVEL=debug: there, and with nothing secret in them. */
describe('debug logging', () => {
  let t: TestServer;
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        raw += chunk.toString();
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    t = await startTestServer({}, { logger: createLogger('debug', sink) });
  });
  afterAll(async () => t?.close());

  it('logs each request by route and each flow transition by event and state, without passwords, ids, tokens, cookies or addresses', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.sydney, 'x-device-id': device('debug') });
    const wrong = await c.passwordLogin(ADMIN.email, 'not-the-password-4711');
    expect(wrong.status).toBe(401);
    const ok = await c.passwordLogin(ADMIN.email, ADMIN.password, { returnTokens: true });
    expect(ok.body.step).toBe('done');
    const access = ok.body.tokens.access_token as string;
    const refresh = ok.body.tokens.refresh_token as string;
    expect((await c.get('/auth/me', { authorization: `Bearer ${access}` })).status).toBe(200);

    const requests = () => lines.filter((l) => l.msg === 'request');
    await vi.waitFor(() => expect(requests().some((l) => l.route === '/auth/me')).toBe(true));
    expect(requests()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 20, method: 'POST', route: '/auth/login', status: 201, requestId: expect.any(String), ms: expect.any(Number) }),
        expect.objectContaining({ method: 'POST', route: '/auth/login/:id', status: 401 }),
        expect.objectContaining({ method: 'POST', route: '/auth/login/:id', status: 200 }),
        expect.objectContaining({ method: 'GET', route: '/auth/me', status: 200 }),
      ]),
    );
    const transitions = lines.filter((l) => l.msg === 'flow transition');
    expect(transitions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 20, flowType: 'login', event: 'password', from: expect.any(String), to: expect.any(String), flow: expect.stringMatching(/^[0-9a-f]{12}$/) }),
      ]),
    );
    expect(lines.filter((l) => l.msg === 'flow created').length).toBeGreaterThanOrEqual(2);

    // Nothing an attacker could use, and no client address.
    const sessionCookie = [...c.cookies.values()];
    for (const secret of [ADMIN.password, 'not-the-password-4711', ok.flowId, wrong.flowId, access, refresh, ...sessionCookie, IP.sydney])
      expect(raw).not.toContain(secret);
    // Health probes are not logged (a load balancer asks every few seconds).
    await c.get('/health/live');
    await c.get('/auth/check');
    await vi.waitFor(() => expect(requests().some((l) => l.route === '/auth/check')).toBe(true));
    expect(requests().some((l) => String(l.route).startsWith('/health'))).toBe(false);
  });
});
