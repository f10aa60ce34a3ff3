import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createSessionService, type SessionService } from '../../src/session/sessions.ts';
import { createRevocationList } from '../../src/session/revocation.ts';
import { createVerifyCache } from '../../src/http/verify-cache.ts';
import { clearCacheOnRevocation } from '../../src/http/routes/verify.ts';

// The embedded default: no Redis, one process, PGlite as the durable truth.
describe('revocation list without Redis (embedded default)', () => {
  let db: Db;
  let sessions: SessionService;
  const clock = new ManualClock(Date.now());
  let identityId = '';
  const newSession = async () =>
    (await sessions.create({ identityId, amr: ['pwd'], acr: 'x', authTime: Math.floor(clock.now() / 1000), factorTimes: {}, deviceId: null, ip: null, country: null }))
      .session.id;

  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
    sessions = createSessionService({ db, clock, idleSeconds: 1800, absoluteSeconds: 43200 });
    identityId = randomUUID();
    await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [identityId, 'rev@example.test', new Date(clock.now())]);
  });
  afterAll(async () => db?.close());

  it('denies a revoked sid at once, tells listeners, and forgets it after `until`', async () => {
    const list = createRevocationList({ db, clock });
    const sid = await newSession();
    const heard: string[] = [];
    list.onRevoked((s) => heard.push(s));
    expect(await list.isRevoked(sid)).toBe(false);
    expect(list.lastSource).toBe('postgres');

    await list.revoke(sid, clock.now() + 60_000);
    expect(heard).toEqual([sid]);
    expect(await list.isRevoked(sid)).toBe(true);
    expect(list.lastSource).toBe('memory');

    // Past `until` the in-memory entry is gone; Postgres (not revoked there) answers.
    clock.advance(60_000);
    expect(await list.isRevoked(sid)).toBe(false);
    await list.close();
  });

  it('falls back to Postgres: revoked_at, or a session row that no longer exists, means revoked', async () => {
    const list = createRevocationList({ db, clock });
    const sid = await newSession();
    await sessions.revoke(sid, 'logout');
    expect(await list.isRevoked(sid)).toBe(true);
    expect(list.lastSource).toBe('postgres');
    expect(await list.isRevoked(randomUUID())).toBe(true);
    // Not a sid at all: never reaches SQL, never "live".
    expect(await list.isRevoked("x' OR 1=1 --")).toBe(true);
    await list.close();
  });

  it('restore lifts a lock kept only in the deny-list', async () => {
    const list = createRevocationList({ db, clock });
    const sid = await newSession();
    await list.revoke(sid, clock.now() + 60_000);
    expect(await list.isRevoked(sid)).toBe(true);
    await list.restore(sid);
    expect(await list.isRevoked(sid)).toBe(false);
    await list.close();
  });

  it("clears the verify cache's entries of the revoked session through onRevoked", async () => {
    const list = createRevocationList({ db, clock });
    const cache = createVerifyCache({ clock, max: 10, ttlMs: 30_000 });
    const off = clearCacheOnRevocation(list, cache);
    const sid = await newSession();
    const v = { principal: { identityId, sessionId: sid, amr: ['pwd'], authTime: 0, factorTimes: {} }, email: 'rev@example.test', roles: [], permissions: [] };
    cache.set('cookie:a', v, Number.MAX_SAFE_INTEGER);
    cache.set('bearer:b', v, Number.MAX_SAFE_INTEGER);
    await list.revoke(sid, clock.now() + 1000);
    expect(cache.size).toBe(0);
    off();
    await list.close();
  });
});
