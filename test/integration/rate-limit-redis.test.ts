import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import {
  createLoginLimiter,
  LIMITER_UNAVAILABLE_CODE,
  limiterRedis,
  redisReady,
  type LoginLimiter,
  type LoginLimiterOptions,
} from '../../src/security/limits.ts';
import { rateLimit } from '../../src/http/middleware/rate-limit.ts';
import { AppError } from '../../src/errors.ts';
import { TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

const opened: LoginLimiter[] = [];
const admin = new Redis(TEST_REDIS_URL);
afterAll(async () => {
  await Promise.all(opened.map((l) => l.close()));
  await admin.quit();
});

type Store = 'redis' | 'memory';

async function limiter(store: Store, o: Partial<LoginLimiterOptions> = {}, prefix = uniqueName('rl-test')) {
  const redis = store === 'redis' ? limiterRedis(TEST_REDIS_URL) : null;
  if (redis) await redisReady(redis);
  const l = createLoginLimiter({
    redis,
    prefix,
    hashKey: 'test-hash-key',
    perIp: { points: 100, duration: 60 },
    perAccount: { points: 100, duration: 60 },
    perIpAccount: { points: 100, duration: 60 },
    delay: { afterFailures: 100, baseMs: 0, maxMs: 0 },
    ...o,
  });
  opened.push(l);
  return { l, prefix };
}

async function fail(l: LoginLimiter, ip: string, id: string) {
  const r = await l.beforeAttempt(ip, id);
  await l.onFailure(ip, id);
  return r;
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => {
      throw new Error('the attempt was allowed');
    },
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe.each<Store>(['redis', 'memory'])('login limiter on %s', (store) => {
  it('one IP against many accounts → 429 with Retry-After', async () => {
    const { l } = await limiter(store, { perIp: { points: 6, duration: 120 } });
    for (let i = 0; i < 6; i++) await fail(l, '203.0.113.5', `spray${i}@example.test`);
    const e = await rejection(l.beforeAttempt('203.0.113.5', 'spray-next@example.test'));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.status).toBe(429);
    const ra = Number(e.headers?.['Retry-After']);
    expect(ra).toBeGreaterThan(100);
    expect(ra).toBeLessThanOrEqual(120);
    await l.beforeAttempt('203.0.113.6', 'spray-next@example.test');
  });

  it('many IPs against one account → 429, from any further IP', async () => {
    const { l } = await limiter(store, { perAccount: { points: 5, duration: 60 } });
    for (let i = 0; i < 5; i++) await fail(l, `198.51.100.${i + 1}`, 'victim@example.test');
    for (const ip of ['198.51.100.77', '2001:db8::1', '192.0.2.9'])
      expect((await rejection(l.beforeAttempt(ip, 'VICTIM@example.test'))).code).toBe('RATE_LIMITED');
  });

  it('per IP+account', async () => {
    const { l } = await limiter(store, { perIpAccount: { points: 3, duration: 60 } });
    for (let i = 0; i < 3; i++) await fail(l, '192.0.2.1', 'pair@example.test');
    expect((await rejection(l.beforeAttempt('192.0.2.1', 'pair@example.test'))).code).toBe('RATE_LIMITED');
    await l.beforeAttempt('192.0.2.2', 'pair@example.test');
    await l.beforeAttempt('192.0.2.1', 'other@example.test');
  });

  it('progressive delay grows and caps; a success clears it', async () => {
    const { l } = await limiter(store, { delay: { afterFailures: 2, baseMs: 50, maxMs: 300 } });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) delays.push((await fail(l, '192.0.2.50', 'slow@example.test')).delayMs);
    expect(delays).toEqual([0, 0, 50, 100, 200, 300, 300]);
    await l.beforeAttempt('192.0.2.50', 'slow@example.test');
    await l.onSuccess('192.0.2.50', 'slow@example.test');
    expect((await fail(l, '192.0.2.50', 'slow@example.test')).delayMs).toBe(0);
  });

  it('a success clears the IP+account counter', async () => {
    const { l } = await limiter(store, { perIpAccount: { points: 3, duration: 60 } });
    // Two typos then a good password, three times over: six failures, never a 429.
    for (let round = 0; round < 3; round++) {
      await fail(l, '192.0.2.60', 'typo@example.test');
      await fail(l, '192.0.2.60', 'typo@example.test');
      await l.beforeAttempt('192.0.2.60', 'typo@example.test');
      await l.onSuccess('192.0.2.60', 'typo@example.test');
    }
    for (let i = 0; i < 3; i++) await fail(l, '192.0.2.60', 'typo@example.test');
    expect((await rejection(l.beforeAttempt('192.0.2.60', 'typo@example.test'))).code).toBe('RATE_LIMITED');
  });

  it('parallel attempts cannot exceed a limit', async () => {
    const { l } = await limiter(store, { perIp: { points: 7, duration: 60 } });
    const rs = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => l.beforeAttempt('192.0.2.70', `p${i}@example.test`)));
    expect(rs.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
  });

  it('a window ends: attempts are allowed again after its duration', async () => {
    const { l } = await limiter(store, { perIpAccount: { points: 1, duration: 1 } });
    await fail(l, '192.0.2.80', 'w@example.test');
    expect((await rejection(l.beforeAttempt('192.0.2.80', 'w@example.test'))).code).toBe('RATE_LIMITED');
    await sleep(1200);
    await l.beforeAttempt('192.0.2.80', 'w@example.test');
  });
});

describe('login limiter on Redis', () => {
  it('keys are hashed (no email or IP in Redis) and expire with their window', async () => {
    const { l, prefix } = await limiter('redis', { perIp: { points: 10, duration: 90 } });
    await fail(l, '203.0.113.99', 'Private.Person@Example.test');
    const keys = await admin.keys(`${prefix}:*`);
    expect(keys).toHaveLength(4);
    for (const k of keys) {
      expect(k).toMatch(new RegExp(`^${prefix}:(ip|acct|ipacct|streak):[0-9a-f]{32}$`));
      expect(k.toLowerCase()).not.toContain('person');
      expect(k).not.toContain('203.0.113');
    }
    const ttl = await admin.ttl(keys.find((k) => k.includes(':ip:'))!);
    expect(ttl).toBeGreaterThan(80);
    expect(ttl).toBeLessThanOrEqual(90);
  });

  it('API processes share the counts (two connections, one prefix)', async () => {
    const prefix = uniqueName('rl-shared');
    const a = (await limiter('redis', { perAccount: { points: 4, duration: 60 } }, prefix)).l;
    const b = (await limiter('redis', { perAccount: { points: 4, duration: 60 } }, prefix)).l;
    await fail(a, '10.1.0.1', 'shared@example.test');
    await fail(b, '10.1.0.2', 'shared@example.test');
    await fail(a, '10.1.0.3', 'shared@example.test');
    await fail(b, '10.1.0.4', 'shared@example.test');
    expect((await rejection(a.beforeAttempt('10.1.0.5', 'shared@example.test'))).code).toBe('RATE_LIMITED');
    expect((await rejection(b.beforeAttempt('10.1.0.6', 'shared@example.test'))).code).toBe('RATE_LIMITED');
  });
});

// ---------- Redis down: fail closed ----------

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A private redis-server child on its own port (the shared Redis is never touched). */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
    stdio: 'ignore',
  });
  let missing: Error | null = null;
  child.once('error', (e: NodeJS.ErrnoException) => {
    missing = new Error(e.code === 'ENOENT' ? 'redis-server is not installed (not on PATH): apt-get install redis-server' : `redis-server: ${e.message}`);
  });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => {});
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      if (missing) throw missing;
      await sleep(50);
    }
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

const stop = async (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  await exited;
};

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGCONT');
    await stop(c);
  }
});

const opts: Omit<LoginLimiterOptions, 'redis'> = {
  perIp: { points: 5, duration: 60 },
  perAccount: { points: 5, duration: 60 },
  perIpAccount: { points: 5, duration: 60 },
  delay: { afterFailures: 3, baseMs: 10, maxMs: 100 },
  storeTimeoutMs: 300,
};

describe('Redis unreachable: fail closed, never unlimited', () => {
  it('a Redis nobody listens on → every attempt refused with the 503 code', async () => {
    const redis = limiterRedis(`redis://127.0.0.1:${await freePort()}`);
    const l = createLoginLimiter({ redis, prefix: uniqueName('rl-dead'), ...opts });
    opened.push(l);
    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      const e = await rejection(l.beforeAttempt('10.2.0.1', 'anyone@example.test'));
      expect(e.code).toBe(LIMITER_UNAVAILABLE_CODE);
      expect(e.status).toBe(503);
      expect(e.expose).toBe(true);
      expect(Date.now() - started).toBeLessThan(1000); // fails fast, no queueing
    }
    await expect(l.onSuccess('10.2.0.1', 'anyone@example.test')).rejects.toMatchObject({ code: LIMITER_UNAVAILABLE_CODE });
  });

  it('Redis killed mid-test → refused at once; back when Redis is back (with counters lost, lockout stays in Postgres)', async () => {
    const port = await freePort();
    const child = await startRedis(port);
    children.push(child);
    const redis = limiterRedis(`redis://127.0.0.1:${port}`);
    await redisReady(redis);
    const l = createLoginLimiter({ redis, prefix: uniqueName('rl-kill'), ...opts });
    opened.push(l);
    await fail(l, '10.3.0.1', 'kim@example.test');
    await fail(l, '10.3.0.1', 'kim@example.test');

    await stop(child);
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      const e = await rejection(l.beforeAttempt('10.3.0.1', `kim${i % 3}@example.test`));
      expect(e.code).toBe(LIMITER_UNAVAILABLE_CODE);
      refused++;
    }
    expect(refused).toBe(30);

    const again = await startRedis(port);
    children.push(again);
    await redisReady(redis, 10_000);
    expect(await l.beforeAttempt('10.3.0.1', 'kim@example.test')).toEqual({ delayMs: 0 });
  });

  it('Redis hung (SIGSTOP) → refused within the store timeout, not held forever', async () => {
    const port = await freePort();
    const child = await startRedis(port);
    children.push(child);
    const redis = limiterRedis(`redis://127.0.0.1:${port}`);
    await redisReady(redis);
    const l = createLoginLimiter({ redis, prefix: uniqueName('rl-hung'), ...opts });
    opened.push(l);
    await fail(l, '10.4.0.1', 'lee@example.test');
    child.kill('SIGSTOP');
    const started = Date.now();
    const e = await rejection(l.beforeAttempt('10.4.0.1', 'lee@example.test'));
    expect(e.code).toBe(LIMITER_UNAVAILABLE_CODE);
    expect(Date.now() - started).toBeLessThan(2000);
    child.kill('SIGCONT');
  });

  it('the request limiter fails closed too: 503 problem+json', async () => {
    const redis = limiterRedis(`redis://127.0.0.1:${await freePort()}`);
    const app = new Hono();
    app.use('/auth/login', rateLimit({ redis, prefix: uniqueName('rl-start-dead'), points: 100, duration: 60, key: () => '10.5.0.1', storeTimeoutMs: 300 }));
    app.post('/auth/login', (c) => c.json({ created: true }, 201));
    const r = await app.request('/auth/login', { method: 'POST' });
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    const body = (await r.json()) as { code: string; requestId?: string };
    expect(body.code).toBe(LIMITER_UNAVAILABLE_CODE);
    expect(body.requestId).toBeTruthy();
    redis.disconnect();
  });
});
