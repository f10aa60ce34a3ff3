import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createSessionService } from '../../src/session/sessions.ts';
import { createTokenService } from '../../src/tokens/access-token.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import { createRefreshService, type RefreshResult } from '../../src/tokens/refresh.ts';

// The embedded default runs the same migration and the same SQL (races are shown on Postgres:
// PGlite has one connection).
describe('refresh tokens on PGlite (embedded default)', () => {
  let db: Db;
  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
  });
  afterAll(async () => db?.close());

  it('issues, rotates, honours the grace, detects reuse, dies with its session', async () => {
    const clock = new ManualClock();
    const audit = createAudit(db, clock);
    const sessions = createSessionService({ db, clock, idleSeconds: 1800, absoluteSeconds: 43200 });
    const tokens = createTokenService(createKeyStore(db, new Sealer(randomBytes(32)), clock), clock, { issuer: 'https://i.test', audience: 'https://a.test', ttlSeconds: 600 });
    const svc = createRefreshService({ db, clock, audit, sessions, tokens, geo: { lookup: () => null }, ttlSeconds: 3600, reuseGraceSeconds: 10 });
    const ctx = { ip: '10.0.0.1', deviceId: null };
    const identityId = randomUUID();
    await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [identityId, 'p@example.test', new Date(clock.now())]);
    const { session } = await sessions.create({ identityId, amr: ['pwd'], acr: 'urn:threshold:acr:aal1', authTime: clock.now() / 1000, factorTimes: {}, deviceId: null, ip: ctx.ip, country: null });

    const a = await svc.issue({ sessionId: session.id, identityId, ip: ctx.ip, deviceId: null });
    const b = (await svc.refresh(a, ctx)) as Extract<RefreshResult, { ok: true }>;
    expect(b.ok).toBe(true);
    expect(await svc.refresh(a, ctx)).toMatchObject({ ok: true, refresh_token: b.refresh_token });
    const c = (await svc.refresh(b.refresh_token, ctx)) as Extract<RefreshResult, { ok: true }>;
    expect(c.ok).toBe(true);
    expect(await svc.refresh(a, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await svc.refresh(c.refresh_token, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await sessions.byId(session.id)).toBeNull();

    const s2 = await sessions.create({ identityId, amr: ['pwd'], acr: 'urn:threshold:acr:aal1', authTime: clock.now() / 1000, factorTimes: {}, deviceId: null, ip: ctx.ip, country: null });
    const d = await svc.issue({ sessionId: s2.session.id, identityId, ip: ctx.ip, deviceId: null });
    await svc.revokeSession(s2.session.id, 'logout');
    expect(await svc.refresh(d, ctx)).toMatchObject({ ok: false, error_description: 'refresh token revoked' });
    expect(await audit.verify()).toMatchObject({ ok: true });
  });
});
