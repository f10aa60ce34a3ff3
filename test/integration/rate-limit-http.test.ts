import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { Redis } from 'ioredis';
import { createApp } from '../../src/http/app.ts';
import { createLoginLimiter, LIMITER_UNAVAILABLE_CODE, limiterRedis, redisReady, type LoginLimiterOptions } from '../../src/security/limits.ts';
import { ipGetter, loginAttemptGuard, rateLimit } from '../../src/http/middleware/rate-limit.ts';
import { Client, device, startTestServer, type TestServer } from '../helpers/server.ts';
import { TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

/**
 * Threshold as the lead will wire it: the flow-start limiter on POST /auth/login and the
 * password-attempt guard on POST /auth/login/:id, in front of the real app (real Postgres,
 * Redis, BullMQ risk worker), over a real socket.
 */
type Front = { url: string; prefix: string; delays: number[]; close: () => Promise<void> };

const fronts: Front[] = [];
const admin = new Redis(TEST_REDIS_URL);

async function front(
  t: TestServer,
  o: Partial<Omit<LoginLimiterOptions, 'redis'>> & { startsPerMinute?: number; redisUrl?: string } = {},
): Promise<Front> {
  const prefix = uniqueName('rl-http');
  const redis = limiterRedis(o.redisUrl ?? TEST_REDIS_URL);
  if (!o.redisUrl) await redisReady(redis);
  const limiter = createLoginLimiter({
    redis,
    prefix,
    hashKey: 'http-test-key',
    perIp: { points: 100, duration: 300 },
    perAccount: { points: 100, duration: 300 },
    perIpAccount: { points: 100, duration: 300 },
    delay: { afterFailures: 100, baseMs: 0, maxMs: 0 },
    storeTimeoutMs: 500,
    ...o,
  });
  const ip = ipGetter(t.config.TRUSTED_PROXIES);
  const delays: number[] = [];
  const app = new Hono();
  app.post(
    '/auth/login',
    rateLimit({ redis, prefix: `${prefix}:start`, points: o.startsPerMinute ?? 1000, duration: 60, key: ip, storeTimeoutMs: 500 }),
  );
  app.use(
    '/auth/login/:id',
    loginAttemptGuard(limiter, ip, {
      sleep: async (ms) => {
        delays.push(ms);
        await sleep(ms);
      },
    }),
  );
  app.route('/', createApp(t.services));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const port = (server.address() as { port: number }).port;
  const f: Front = {
    url: `http://127.0.0.1:${port}`,
    prefix,
    delays,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await limiter.close();
    },
  };
  fronts.push(f);
  return f;
}

const at = (f: Front, ip?: string) => new Client(f.url, { ...(ip ? { 'x-forwarded-for': ip } : {}), 'x-device-id': device('rl') });

const sessionSet = (h: Headers) => h.getSetCookie().some((c) => c.startsWith('threshold_session='));

afterAll(async () => {
  for (const f of fronts.splice(0)) await f.close();
  await admin.quit();
});

describe('behind a trusted proxy (TRUSTED_PROXIES=loopback)', () => {
  let t: TestServer;
  const pw = 'victor-has-a-long-password';
  beforeAll(async () => {
    // A failure window shorter than the lock, so the burst of failures has lapsed from risk when the lock does.
    t = await startTestServer({ LOCKOUT_THRESHOLD: '3', LOCKOUT_SECONDS: '600', RISK_FAILURE_WINDOW_SECONDS: '300' });
    await t.services.users.create({ email: 'victor@example.test', password: pw, roles: [] });
    await t.services.users.create({ email: 'una@example.test', password: pw, roles: [] });
    await t.services.users.create({ email: 'dee@example.test', password: pw, roles: [] });
  });
  afterAll(async () => t?.close());

  it('many IPs against one account: durable lockout, then 429 from any IP; the lock outlives the counters', async () => {
    const f = await front(t, { perAccount: { points: 5, duration: 300 } });
    for (let i = 0; i < 5; i++) {
      const r = await at(f, `100.64.0.${i + 1}`).passwordLogin('victor@example.test', 'not-the-password');
      expect(r.status, JSON.stringify(r.body)).toBe(401);
      expect(r.body.code).toBe('INVALID_CREDENTIALS');
    }
    // Postgres locked the account at the third failure.
    const row = async () =>
      (await t.db.query<{ failed_attempts: number; locked_at: Date | null }>("SELECT failed_attempts, locked_at FROM identities WHERE email = 'victor@example.test'")).rows[0];
    expect((await row()).locked_at).not.toBeNull();

    // Sixth attempt, fresh IP, right password: refused before the password is looked at.
    const c = at(f, '100.64.9.9');
    const r = await c.passwordLogin('victor@example.test', pw);
    expect(r.status).toBe(429);
    expect(r.body.code).toBe('RATE_LIMITED');
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(300);
    expect(sessionSet(r.headers)).toBe(false);
    expect((await c.get(`/auth/login/${r.flowId}`)).body.step).toBe('password'); // the flow never saw it

    // Lose every rate-limit counter (a Redis flush): the Postgres lock still refuses the right password.
    const keys = await admin.keys(`${f.prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await admin.del(...keys);
    const during = await at(f, '100.64.9.10').passwordLogin('victor@example.test', pw);
    expect(during.status).toBe(401);
    expect(during.body.code).toBe('INVALID_CREDENTIALS');
    expect(sessionSet(during.headers)).toBe(false);

    t.clock.advance(601_000);
    const after = await at(f, '100.64.9.10').passwordLogin('victor@example.test', pw);
    expect(after.status).toBe(200);
    expect(after.body.step).toBe('done');
  });

  it('one IP against many accounts: 429, even for a real user with the right password; other IPs unaffected', async () => {
    const f = await front(t, { perIp: { points: 4, duration: 300 } });
    const c = at(f, '100.65.0.1');
    // Malformed password events never reach a password check and cost nothing.
    const s = await c.post('/auth/login', {});
    for (let i = 0; i < 6; i++) {
      const bad = await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: 'x@example.test', password: 'p', admin: true });
      expect(bad.body.code).toBe('VALIDATION_FAILED');
    }
    for (let i = 0; i < 4; i++) expect((await c.passwordLogin(`nobody${i}@example.test`, 'guess-guess-guess')).status).toBe(401);
    const r = await c.passwordLogin('una@example.test', pw);
    expect(r.status).toBe(429);
    expect(r.body.code).toBe('RATE_LIMITED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    const elsewhere = await at(f, '100.65.0.2').passwordLogin('una@example.test', pw);
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.body.step).toBe('done');
  });

  it('per IP+account with a progressive delay, applied before the password check; a success clears it', async () => {
    const f = await front(t, { perIpAccount: { points: 4, duration: 300 }, delay: { afterFailures: 1, baseMs: 100, maxMs: 200 } });
    const c = at(f, '100.66.0.1');
    // dee's durable lock is at 3; use two failures, succeed, two more, succeed: never locked, never 429.
    for (let round = 0; round < 2; round++) {
      expect((await c.passwordLogin('dee@example.test', 'wrong-wrong-wrong')).status).toBe(401);
      const t0 = Date.now();
      expect((await c.passwordLogin('dee@example.test', 'wrong-wrong-wrong')).status).toBe(401);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
      expect((await c.passwordLogin('dee@example.test', pw)).body.step).toBe('done');
    }
    expect(f.delays).toEqual([100, 200, 100, 200]);
    // Without successes the pair is stopped at four: unknown account, so no lockout interferes.
    for (let i = 0; i < 4; i++) expect((await c.passwordLogin('ghost@example.test', 'wrong-wrong-wrong')).status).toBe(401);
    expect((await c.passwordLogin('ghost@example.test', 'wrong-wrong-wrong')).status).toBe(429);
    expect((await at(f, '100.66.0.2').passwordLogin('ghost@example.test', 'wrong-wrong-wrong')).status).toBe(401);
  });

  it('caps flow creation per IP per minute (X-Forwarded-For from the trusted proxy is honoured)', async () => {
    const f = await front(t, { startsPerMinute: 3 });
    const c = at(f, '100.67.0.1');
    for (let i = 0; i < 3; i++) expect((await c.post('/auth/login', {})).status).toBe(201);
    const r = await c.post('/auth/login', {});
    expect(r.status).toBe(429);
    expect(r.body.code).toBe('RATE_LIMITED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
    expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect((await at(f, '100.67.0.2').post('/auth/login', {})).status).toBe(201);
  });

  it('Redis unreachable: 503 with a clear code, the password is never checked, nobody gets in', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    const f = await front(t, { redisUrl: `redis://127.0.0.1:${port}` });
    const ok = at(await front(t), '100.68.0.1');
    const flow = await ok.post('/auth/login', {}); // created through a healthy front: same database
    const c = at(f, '100.68.0.1');
    for (let i = 0; i < 5; i++) {
      const r = await c.post(`/auth/login/${flow.body.id}`, { type: 'password', identifier: 'una@example.test', password: pw });
      expect(r.status).toBe(503);
      expect(r.body.code).toBe(LIMITER_UNAVAILABLE_CODE);
      expect(r.body.requestId).toBeTruthy();
      expect(sessionSet(r.headers)).toBe(false);
    }
    expect((await ok.get(`/auth/login/${flow.body.id}`)).body.step).toBe('password');
    const start = await c.post('/auth/login', {});
    expect(start.status).toBe(503);
    expect(start.body.code).toBe(LIMITER_UNAVAILABLE_CODE);
  });
});

describe('a spoofed X-Forwarded-For from an untrusted peer changes nothing (TRUSTED_PROXIES empty)', () => {
  let u: TestServer;
  beforeAll(async () => {
    u = await startTestServer({ TRUSTED_PROXIES: '' });
  });
  afterAll(async () => u?.close());

  it('rotating X-Forwarded-For values still hit the same per-IP limit', async () => {
    const f = await front(u, { perIp: { points: 3, duration: 300 } });
    const spoof = (n: number) => at(f, `7.7.${n}.${n}`);
    for (let i = 0; i < 3; i++) expect((await spoof(i).passwordLogin(`target${i}@example.test`, 'guess-guess-guess')).status).toBe(401);
    const r = await spoof(99).passwordLogin('target99@example.test', 'guess-guess-guess');
    expect(r.status).toBe(429);
    expect(r.body.code).toBe('RATE_LIMITED');
  });

  it('and the same flow-start cap', async () => {
    const f = await front(u, { startsPerMinute: 2 });
    expect((await at(f, '8.8.1.1').post('/auth/login', {})).status).toBe(201);
    expect((await at(f, '8.8.2.2').post('/auth/login', {})).status).toBe(201);
    expect((await at(f, '8.8.3.3').post('/auth/login', {})).status).toBe(429);
  });
});
