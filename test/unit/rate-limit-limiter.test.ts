import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import {
  createLoginLimiter,
  ipBucket,
  keyHasher,
  limitSettings,
  LIMIT_DEFAULTS,
  loginLimiterOptions,
  progressiveDelay,
  retryAfterSeconds,
  type LoginLimiterOptions,
} from '../../src/security/limits.ts';
import { ipGetter, loginAttemptGuard, rateLimit } from '../../src/http/middleware/rate-limit.ts';
import { problem } from '../../src/http/present.ts';
import { AppError } from '../../src/errors.ts';

const opts = (o: Partial<LoginLimiterOptions> = {}): LoginLimiterOptions => ({
  redis: null,
  perIp: { points: 100, duration: 60 },
  perAccount: { points: 100, duration: 60 },
  perIpAccount: { points: 100, duration: 60 },
  delay: { afterFailures: 100, baseMs: 0, maxMs: 0 },
  ...o,
});

/** One failed attempt, the way the guard drives the limiter. */
async function fail(l: ReturnType<typeof createLoginLimiter>, ip: string, id: string) {
  const r = await l.beforeAttempt(ip, id);
  await l.onFailure(ip, id);
  return r;
}

async function refused(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe('progressive delay', () => {
  const p = { afterFailures: 3, baseMs: 100, maxMs: 1000 };
  it('is zero until the threshold, then doubles, capped', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50].map((n) => progressiveDelay(n, p))).toEqual([0, 0, 0, 100, 200, 400, 800, 1000, 1000]);
    expect(progressiveDelay(10_000, p)).toBe(1000); // no overflow
    expect(progressiveDelay(5, { afterFailures: 0, baseMs: 0, maxMs: 0 })).toBe(0);
  });
  it('Retry-After is whole seconds, at least 1', () => {
    expect([0, 1, 999, 1000, 1001, 59_500].map(retryAfterSeconds)).toEqual([1, 1, 1, 1, 2, 60]);
  });
});

describe('keys', () => {
  it('hash identifiers and IPs (no email or address in a key), normalised like the password service', () => {
    const k = keyHasher(Buffer.alloc(32, 7));
    const a = k('81.2.69.142', '  Alice@Example.TEST ');
    const b = k('81.2.69.142', 'alice@example.test');
    expect(a).toEqual(b);
    for (const v of Object.values(a)) {
      expect(v).toMatch(/^[0-9a-f]{32}$/);
      expect(v).not.toContain('alice');
    }
    expect(new Set(Object.values(a)).size).toBe(3);
    // A different HMAC key gives different keys (a Redis dump cannot be matched against a list of emails).
    expect(keyHasher(Buffer.alloc(32, 8))('81.2.69.142', 'alice@example.test').acct).not.toBe(a.acct);
  });
  it('counts IPv6 per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(ipBucket('2001:db8:1:2:aaaa::1')).toBe(ipBucket('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(ipBucket('2001:db8:1:2::1')).not.toBe(ipBucket('2001:db8:1:3::1'));
    expect(ipBucket('::ffff:81.2.69.142')).toBe('81.2.69.142');
    expect(ipBucket('81.2.69.142')).toBe('81.2.69.142');
  });
});

describe('settings', () => {
  it('takes config values when present and defaults otherwise', () => {
    const s = limitSettings({ RATE_LIMIT_IP_FAILURES: 7, RATE_LIMIT_DELAY_MAX_MS: 'nope' });
    expect(s.RATE_LIMIT_IP_FAILURES).toBe(7);
    expect(s.RATE_LIMIT_DELAY_MAX_MS).toBe(LIMIT_DEFAULTS.RATE_LIMIT_DELAY_MAX_MS);
    const o = loginLimiterOptions(s);
    expect(o.perIp).toEqual({ points: 7, duration: LIMIT_DEFAULTS.RATE_LIMIT_IP_WINDOW_SECONDS });
  });
  it('refuses nonsensical windows at creation', () => {
    expect(() => createLoginLimiter(opts({ perIp: { points: 0, duration: 60 } }))).toThrow(/points/);
    expect(() => createLoginLimiter(opts({ perAccount: { points: 5, duration: 0.5 } }))).toThrow(/duration/);
    expect(() => createLoginLimiter(opts({ delay: { afterFailures: 1, baseMs: 10, maxMs: 5 } }))).toThrow(/delay/);
  });
});

describe('login limiter in memory (embedded default)', () => {
  it('one IP against many accounts: 429 with Retry-After once the per-IP budget is spent', async () => {
    const l = createLoginLimiter(opts({ perIp: { points: 5, duration: 60 } }));
    for (let i = 0; i < 5; i++) await fail(l, '10.0.0.1', `user${i}@example.test`);
    const e = await refused(l.beforeAttempt('10.0.0.1', 'user99@example.test'));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.status).toBe(429);
    expect(Number(e.headers?.['Retry-After'])).toBeGreaterThanOrEqual(59);
    expect(Number(e.headers?.['Retry-After'])).toBeLessThanOrEqual(60);
    // Another IP is unaffected.
    expect(await l.beforeAttempt('10.0.0.2', 'user99@example.test')).toEqual({ delayMs: 0 });
  });

  it('many IPs against one account: 429 once the per-account budget is spent, whatever the IP', async () => {
    const l = createLoginLimiter(opts({ perAccount: { points: 4, duration: 60 } }));
    for (let i = 0; i < 4; i++) await fail(l, `10.0.1.${i}`, 'Victim@Example.test');
    const e = await refused(l.beforeAttempt('10.0.1.200', 'victim@example.test '));
    expect(e.code).toBe('RATE_LIMITED');
    await l.beforeAttempt('10.0.1.200', 'someone-else@example.test');
  });

  it('per IP+account: one pair is stopped, the same IP on another account and the account from another IP are not', async () => {
    const l = createLoginLimiter(opts({ perIpAccount: { points: 3, duration: 60 } }));
    for (let i = 0; i < 3; i++) await fail(l, '10.0.2.1', 'pat@example.test');
    expect((await refused(l.beforeAttempt('10.0.2.1', 'pat@example.test'))).code).toBe('RATE_LIMITED');
    await l.beforeAttempt('10.0.2.1', 'quinn@example.test');
    await l.beforeAttempt('10.0.2.2', 'pat@example.test');
  });

  it('a refused attempt spends no budget: a blocked IP cannot exhaust the account for others', async () => {
    const l = createLoginLimiter(opts({ perIp: { points: 2, duration: 60 }, perAccount: { points: 5, duration: 60 } }));
    await fail(l, '10.0.3.1', 'a@example.test');
    await fail(l, '10.0.3.1', 'b@example.test');
    for (let i = 0; i < 20; i++) expect((await refused(l.beforeAttempt('10.0.3.1', 'victim@example.test'))).code).toBe('RATE_LIMITED');
    // The victim's per-account budget is untouched: five attempts from elsewhere still pass.
    for (let i = 0; i < 5; i++) await fail(l, `10.0.3.${10 + i}`, 'victim@example.test');
    expect((await refused(l.beforeAttempt('10.0.3.99', 'victim@example.test'))).code).toBe('RATE_LIMITED');
  });

  it('parallel attempts cannot slip past a limit (reservation, not check-then-count)', async () => {
    const l = createLoginLimiter(opts({ perAccount: { points: 5, duration: 60 } }));
    const rs = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => l.beforeAttempt(`10.0.4.${i}`, 'target@example.test')));
    expect(rs.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(rs.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.code === 'RATE_LIMITED')).toBe(true);
  });

  it('progressive delay grows with consecutive IP+account failures and caps', async () => {
    const l = createLoginLimiter(opts({ delay: { afterFailures: 2, baseMs: 100, maxMs: 500 } }));
    const delays = [];
    for (let i = 0; i < 8; i++) delays.push((await fail(l, '10.0.5.1', 'slow@example.test')).delayMs);
    expect(delays).toEqual([0, 0, 100, 200, 400, 500, 500, 500]);
    // Per pair: the same IP on another account starts at zero.
    expect((await l.beforeAttempt('10.0.5.1', 'other@example.test')).delayMs).toBe(0);
  });

  it('the delay follows confirmed failures: parallel attempts in flight are not slowed down', async () => {
    const l = createLoginLimiter(opts({ delay: { afterFailures: 1, baseMs: 100, maxMs: 1000 } }));
    const rs = await Promise.all(Array.from({ length: 10 }, () => l.beforeAttempt('10.0.5.9', 'busy@example.test')));
    expect(rs.map((r) => r.delayMs)).toEqual(Array(10).fill(0));
    await l.onFailure('10.0.5.9', 'busy@example.test');
    expect((await l.beforeAttempt('10.0.5.9', 'busy@example.test')).delayMs).toBe(100);
  });

  it('a success clears the IP+account streak and refunds its per-IP and per-account points', async () => {
    const l = createLoginLimiter(
      opts({ perIp: { points: 4, duration: 60 }, perIpAccount: { points: 3, duration: 60 }, delay: { afterFailures: 1, baseMs: 50, maxMs: 400 } }),
    );
    await fail(l, '10.0.6.1', 'rita@example.test');
    await fail(l, '10.0.6.1', 'rita@example.test');
    expect((await l.beforeAttempt('10.0.6.1', 'rita@example.test')).delayMs).toBe(100);
    await l.onSuccess('10.0.6.1', 'rita@example.test');
    // Streak gone: no delay, three fresh failures allowed for the pair, and the success cost nothing.
    expect((await fail(l, '10.0.6.1', 'rita@example.test')).delayMs).toBe(0);
    await fail(l, '10.0.6.1', 'rita@example.test');
    // per-IP: 2 failures before + 2 after = 4 = spent (the successful attempt was refunded).
    expect((await refused(l.beforeAttempt('10.0.6.1', 'rita@example.test'))).code).toBe('RATE_LIMITED');
  });

  it('release gives an attempt that never reached a password check back', async () => {
    const l = createLoginLimiter(opts({ perIpAccount: { points: 2, duration: 60 } }));
    for (let i = 0; i < 10; i++) {
      await l.beforeAttempt('10.0.7.1', 'sam@example.test');
      await l.release('10.0.7.1', 'sam@example.test');
    }
    await fail(l, '10.0.7.1', 'sam@example.test');
    await fail(l, '10.0.7.1', 'sam@example.test');
    expect((await refused(l.beforeAttempt('10.0.7.1', 'sam@example.test'))).code).toBe('RATE_LIMITED');
  });
});

describe('rateLimit middleware in memory', () => {
  it('caps requests per IP and answers 429 problem+json with Retry-After', async () => {
    const app = new Hono();
    app.use('/auth/login', rateLimit({ redis: null, prefix: 'rl:test-start', points: 3, duration: 60, key: (c) => c.req.header('x-ip') ?? '0.0.0.0' }));
    app.post('/auth/login', (c) => c.json({ ok: true }, 201));
    const post = (ip: string) => app.request('/auth/login', { method: 'POST', headers: { 'x-ip': ip } });
    for (let i = 0; i < 3; i++) expect((await post('10.9.0.1')).status).toBe(201);
    const r = await post('10.9.0.1');
    expect(r.status).toBe(429);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(((await r.json()) as { code: string }).code).toBe('RATE_LIMITED');
    expect((await post('10.9.0.2')).status).toBe(201);
  });
});

describe('loginAttemptGuard mounted inside the app (as the lead wires it)', () => {
  /** A stand-in for the login routes: the event's password decides the answer, like the flow would. */
  function app(limiter: ReturnType<typeof createLoginLimiter>, seen: string[]) {
    const a = new Hono<{ Variables: { clientIp: string } }>();
    a.onError((err, c) => problem(c, err instanceof AppError ? err : new AppError('INTERNAL'), 'req-1'));
    a.use('*', async (c, next) => {
      c.set('clientIp', c.req.header('x-ip') ?? '0.0.0.0');
      await next();
    });
    a.use('/auth/login/:id', loginAttemptGuard(limiter, ipGetter('')));
    const routes = new Hono();
    routes.post('/:id', async (c) => {
      const b = (await c.req.json()) as { type: string; password?: string };
      seen.push(b.password ?? b.type);
      if (b.type !== 'password') throw new AppError('INVALID_EVENT');
      if (b.password === 'conflict') throw new AppError('FLOW_CONFLICT');
      // A 401 that looks like a wrong password but carries no typed outcome: never counted.
      if (b.password === 'untyped') throw new AppError('INVALID_CREDENTIALS');
      // The route's typed contract with the limiter (the real one gets it from the login service).
      c.set('loginOutcome' as never, (b.password === 'right' ? 'passed' : 'failed') as never);
      if (b.password === 'right') return c.json({ step: 'done' });
      throw new AppError('INVALID_CREDENTIALS');
    });
    a.route('/auth/login', routes);
    return (ip: string, body: Record<string, unknown>) =>
      a.request('/auth/login/flw_1', { method: 'POST', headers: { 'content-type': 'application/json', 'x-ip': ip }, body: JSON.stringify(body) });
  }
  const pw = (password: string) => ({ type: 'password', identifier: 'ann@example.test', password });

  it('counts thrown 401s, clears on 200, gives back conflicts and other events, and refuses before the route runs', async () => {
    const seen: string[] = [];
    const post = app(createLoginLimiter(opts({ perIpAccount: { points: 2, duration: 60 } })), seen);
    expect((await post('10.8.0.1', pw('wrong'))).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await post('10.8.0.1', pw('conflict'))).status).toBe(409);
    for (let i = 0; i < 5; i++) expect((await post('10.8.0.1', { type: 'totp', code: '123456' })).status).toBe(409);
    expect((await post('10.8.0.1', pw('right'))).status).toBe(200); // clears the one failure
    expect((await post('10.8.0.1', pw('wrong'))).status).toBe(401);
    expect((await post('10.8.0.1', pw('wrong'))).status).toBe(401);
    seen.length = 0;
    const r = await post('10.8.0.1', pw('right'));
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await r.json()) as { code: string }).code).toBe('RATE_LIMITED');
    expect(seen).toEqual([]); // the route (and so the password check) never ran
    expect((await post('10.8.0.2', pw('right'))).status).toBe(200);
  });

  it('counts from the typed outcome the route set, never from the answer body', async () => {
    const seen: string[] = [];
    const post = app(createLoginLimiter(opts({ perIpAccount: { points: 1, duration: 60 } })), seen);
    for (let i = 0; i < 5; i++) {
      const r = await post('10.8.2.1', pw('untyped'));
      expect(r.status).toBe(401);
      expect(((await r.json()) as { code: string }).code).toBe('INVALID_CREDENTIALS');
    }
    // Five "INVALID_CREDENTIALS" bodies were given back: one typed failure still fits the budget of one.
    expect((await post('10.8.2.1', pw('wrong'))).status).toBe(401);
    expect((await post('10.8.2.1', pw('wrong'))).status).toBe(429);
  });

  it('awaits the progressive delay before the route runs', async () => {
    const seen: string[] = [];
    const post = app(createLoginLimiter(opts({ delay: { afterFailures: 1, baseMs: 120, maxMs: 120 } })), seen);
    await post('10.8.1.1', pw('wrong'));
    const t0 = Date.now();
    expect((await post('10.8.1.1', pw('wrong'))).status).toBe(401);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(115);
  });
});
