import { decodeJwt } from 'jose';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRevocationList } from '../../src/session/revocation.ts';
import { TEST_REDIS_URL } from '../helpers/db.ts';
import { device, signIn as signInAs, startTestServer, type TestServer } from '../helpers/server.ts';
import { startVerifyServer, type VerifyServer } from '../helpers/verify-server.ts';

/** The deny-list on real Redis: several API processes, a lost broadcast, Redis down. */
describe('revocation list on Redis + Postgres', () => {
  let t: TestServer;
  const closers: (() => Promise<unknown>)[] = [];
  const pw = 'a-long-enough-password';

  beforeAll(async () => {
    t = await startTestServer();
    await t.services.users.create({ email: 'rita@example.test', password: pw, roles: ['TECHNICIAN'] });
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await t?.close();
  });

  const redisClient = () => {
    const r = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    r.on('error', () => {});
    closers.push(() => r.quit());
    return r;
  };
  /** Another API process: its own connection, its own list, the same Redis. */
  const otherProcess = async () => {
    const list = createRevocationList({ db: t.db, redis: redisClient(), clock: t.clock });
    closers.push(() => list.close());
    await list.ready();
    return list;
  };
  const verifyServer = async (o: Parameters<typeof startVerifyServer>[1] = {}) => {
    const v: VerifyServer = await startVerifyServer(t, o);
    closers.push(() => v.close());
    return v;
  };
  const signIn = async (base: string) => {
    const { token } = await signInAs(base, 'rita@example.test', pw, { device: device('rita'), returnTokens: true });
    return { token, sid: decodeJwt(token).sid as string };
  };
  const verify = (base: string, token: string) => fetch(`${base}/auth/verify`, { headers: { authorization: `Bearer ${token}` } });
  const until = () => t.clock.now() + t.config.SESSION_ABSOLUTE_SECONDS * 1000;

  it('writes the documented key with a TTL and publishes the sid on the documented channel', async () => {
    const list = await otherProcess();
    const sub = redisClient();
    const got: string[] = [];
    sub.on('message', (_ch: string, m: string) => got.push(m));
    await sub.subscribe('threshold:revocations');
    const { sid } = await signIn(t.url);
    await list.revoke(sid, t.clock.now() + 60_000);
    const redis = redisClient();
    expect(await redis.get(`threshold:revoked:${sid}`)).toBe('1');
    const pttl = await redis.pttl(`threshold:revoked:${sid}`);
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    for (let i = 0; i < 50 && !got.includes(sid); i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toContain(sid);
    expect(await list.isRevoked(sid)).toBe(true);
    expect(list.lastSource).toBe('redis');
  });

  it("another process's revocation denies a cached token at once (deny-list checked on hits)", async () => {
    const v = await verifyServer();
    const other = await otherProcess();
    const { token, sid } = await signIn(v.url);
    expect((await verify(v.url, token)).status).toBe(200);
    expect((await verify(v.url, token)).status).toBe(200);
    // The broadcast has not necessarily arrived yet when the next request comes: the GET decides.
    await other.revoke(sid, until());
    expect((await verify(v.url, token)).status).toBe(401);
  });

  it('without the deny-list check on hits, the broadcast alone clears every process (measured)', async () => {
    const v = await verifyServer({ verify: { checkDenyListOnHit: false } });
    const other = await otherProcess();
    const { token, sid } = await signIn(v.url);
    expect((await verify(v.url, token)).status).toBe(200);
    expect((await verify(v.url, token)).status).toBe(200);
    expect(v.verifyCache.size).toBeGreaterThan(0);
    const cleared = new Promise<number>((resolve) => {
      const t0 = performance.now();
      const off = v.revocations.onRevoked((s) => {
        if (s === sid) {
          off();
          resolve(performance.now() - t0);
        }
      });
    });
    await other.revoke(sid, until());
    const ms = await cleared;
    expect(ms).toBeLessThan(1000);
    expect((await verify(v.url, token)).status).toBe(401);
    console.log(`revocation broadcast reached the other process's cache in ${ms.toFixed(2)} ms`);
  });

  it('Redis unreachable: isRevoked answers from Postgres (a miss proves nothing)', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    dead.on('error', () => {});
    const list = createRevocationList({ db: t.db, redis: dead, clock: t.clock });
    closers.push(() => list.close());
    const live = await signIn(t.url);
    const gone = await signIn(t.url);
    await t.services.sessions.revoke(gone.sid, 'admin');
    expect(await list.isRevoked(live.sid)).toBe(false);
    expect(list.lastSource).toBe('postgres');
    expect(await list.isRevoked(gone.sid)).toBe(true);
    // revoke() never throws for Redis; this process's listeners still hear it.
    const heard: string[] = [];
    list.onRevoked((s) => heard.push(s));
    await list.revoke(live.sid, until());
    expect(heard).toEqual([live.sid]);
  });

  it('a Redis that does not answer in time: Postgres answers instead of waiting', async () => {
    // A fake Redis that completes the client's handshake and then never answers a GET (a hung
    // server), without disturbing the shared test Redis other files use.
    const sockets: Socket[] = [];
    const hung = createServer((sock) => {
      sockets.push(sock);
      sock.on('data', (d) => {
        for (const m of d.toString().matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)) if (m[1].toUpperCase() !== 'GET') sock.write('+OK\r\n');
      });
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => { sockets.forEach((x) => x.destroy()); hung.close(() => r()); }));
    const port = (hung.address() as AddressInfo).port;
    const slow = new Redis(`redis://127.0.0.1:${port}`, { enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    slow.on('error', () => {});
    closers.push(async () => slow.disconnect());
    await new Promise<void>((r) => slow.once('ready', () => r()));
    const failures: string[] = [];
    const list = createRevocationList({ db: t.db, redis: slow, clock: t.clock, redisTimeoutMs: 50, onError: (_e, op) => failures.push(op) });
    closers.push(() => Promise.race([list.close(), new Promise((r) => setTimeout(r, 100))]));
    const { sid } = await signIn(t.url);
    await t.services.sessions.revoke(sid, 'admin');
    const t0 = performance.now();
    const revoked = await list.isRevoked(sid);
    const took = performance.now() - t0;
    expect(revoked).toBe(true);
    expect(list.lastSource).toBe('postgres');
    expect(took).toBeLessThan(250);
    expect(failures.filter((f) => f === 'isRevoked')).toHaveLength(1);
    // Then it stops paying the timeout on every request for a while (backoff)...
    expect(await list.isRevoked(sid)).toBe(true);
    expect(failures.filter((f) => f === 'isRevoked')).toHaveLength(1);
    // ...and tries Redis again afterwards.
    t.clock.advance(1000);
    expect(await list.isRevoked(sid)).toBe(true);
    expect(failures.filter((f) => f === 'isRevoked')).toHaveLength(2);
  });
});
