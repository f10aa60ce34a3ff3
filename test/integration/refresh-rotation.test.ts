import { randomBytes, randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit, type Audit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import { Sealer, sha256 } from '../../src/crypto/seal.ts';
import type { Db } from '../../src/db/db.ts';
import { tokenRoutes } from '../../src/http/routes/token.ts';
import type { Geo } from '../../src/risk/geo.ts';
import { createSessionService, type SessionService } from '../../src/session/sessions.ts';
import { createTokenService, type TokenService } from '../../src/tokens/access-token.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import { createRefreshService, type RefreshDeps, type RefreshResult } from '../../src/tokens/refresh.ts';
import { createTestDb } from '../helpers/db.ts';

const IP = '10.1.2.3';
const ctx = { ip: IP, deviceId: 'device-refresh-test-0001' };
const noGeo: Geo = { lookup: () => null };
const IDLE = 1800;
const ABSOLUTE = 12 * 3600;

let drop: () => Promise<void>;
let db: Db;
let clock: ManualClock;
let audit: Audit;
let sessions: SessionService;
let tokens: TokenService;

beforeAll(async () => {
  const t = await createTestDb();
  drop = t.drop;
  db = t.db;
  clock = new ManualClock();
  audit = createAudit(db, clock);
  sessions = createSessionService({ db, clock, idleSeconds: IDLE, absoluteSeconds: ABSOLUTE });
  tokens = createTokenService(createKeyStore(db, new Sealer(randomBytes(32)), clock), clock, {
    issuer: 'https://login.example.test',
    audience: 'https://api.example.test',
    ttlSeconds: 600,
  });
});
afterAll(async () => drop?.());

const service = (o: Partial<RefreshDeps> = {}) => createRefreshService({ db, clock, audit, sessions, tokens, geo: noGeo, ttlSeconds: 3600, ...o });

/** A user with a live session, as login completion leaves it. */
async function signIn(s: SessionService = sessions) {
  const identityId = randomUUID();
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [identityId, `${identityId}@example.test`, new Date(clock.now())]);
  const { session } = await s.create({
    identityId,
    amr: ['pwd', 'otp', 'mfa'],
    acr: 'urn:threshold:acr:aal2',
    authTime: Math.floor(clock.now() / 1000),
    factorTimes: {},
    deviceId: ctx.deviceId,
    ip: IP,
    country: null,
  });
  return { identityId, sessionId: session.id, session };
}

const ok = (r: RefreshResult) => {
  if (!r.ok) throw new Error(`refresh refused: ${r.error_description}`);
  return r;
};
const familyOf = async (sessionId: string) =>
  (await db.query<{ id: string; revoked_at: Date | null; revoke_reason: string | null }>('SELECT id, revoked_at, revoke_reason FROM refresh_families WHERE session_id = $1', [sessionId])).rows;
const sessionRow = async (id: string) =>
  (await db.query<{ state: string; revoked_at: Date | null; lock_reason: string | null }>('SELECT state, revoked_at, lock_reason FROM sessions WHERE id = $1', [id])).rows[0];
const auditCount = async (type: string, subject: string) =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE type = $1 AND subject = $2', [type, subject])).rows[0].n;

describe('refresh-token rotation on real Postgres', () => {
  it('rotates: a new token set, the claims of the session unchanged, only hashes stored', async () => {
    const u = await signIn();
    const svc = service();
    const first = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: ctx.deviceId });
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    clock.advance(60_000);
    const r = ok(await svc.refresh(first, ctx));
    expect(r).toMatchObject({ ok: true, token_type: 'Bearer', expires_in: 600 });
    expect(r.refresh_token).not.toBe(first);
    const claims = await tokens.verify(r.access_token);
    expect(claims).toMatchObject({ sub: u.identityId, sid: u.sessionId, amr: ['pwd', 'otp', 'mfa'], acr: 'urn:threshold:acr:aal2', auth_time: u.session.authTime });

    const rows = (await db.query<{ token_hash: string; parent_id: string | null; rotated_at: Date | null; expires_at: Date; id: string }>(
      'SELECT id, token_hash, parent_id, rotated_at, expires_at FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at', [u.sessionId],
    )).rows;
    expect(rows.map((x) => x.token_hash)).toEqual([sha256(first), sha256(r.refresh_token)]);
    expect(JSON.stringify(rows)).not.toContain(first);
    expect(rows[0].rotated_at).not.toBeNull();
    expect(rows[1]).toMatchObject({ parent_id: rows[0].id, rotated_at: null });
    expect(rows[1].expires_at.getTime()).toBe(clock.now() + 3600_000);
    expect(await auditCount('refresh.issued', u.sessionId)).toBe(1);
  });

  it('50 parallel refreshes with one token: exactly one succeeds; the rest are reuse and revoke the family', async () => {
    const u = await signIn();
    const svc = service();
    const token = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: ctx.deviceId });
    const results = await Promise.all(Array.from({ length: 50 }, () => svc.refresh(token, ctx)));
    const winners = results.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.error === 'invalid_grant')).toHaveLength(49);
    const children = await db.query('SELECT 1 FROM refresh_tokens WHERE parent_id IS NOT NULL AND session_id = $1', [u.sessionId]);
    expect(children.rowCount).toBe(1);

    // Anyone presenting a token that was already rotated is a second holder (RFC 9700 §4.14.2).
    expect(await familyOf(u.sessionId)).toEqual([expect.objectContaining({ revoke_reason: 'refresh_reuse' })]);
    expect(await sessionRow(u.sessionId)).toMatchObject({ state: 'locked', lock_reason: 'refresh_reuse' });
    expect(await sessions.byId(u.sessionId)).toBeNull();
    expect(await auditCount('refresh.reuse_detected', u.sessionId)).toBe(1);
    expect(await auditCount('session.locked', u.sessionId)).toBe(1);
    // The winner's new token dies with the family.
    const later = await svc.refresh((winners[0] as { refresh_token: string }).refresh_token, ctx);
    expect(later).toMatchObject({ ok: false, error: 'invalid_grant' });
  });

  it('replaying a rotated token revokes the family and locks the session; the newest token then fails', async () => {
    const u = await signIn();
    const reused: string[] = [];
    const svc = service({ onReuse: async (o) => void reused.push(o.sessionId) });
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: ctx.deviceId });
    const b = ok(await svc.refresh(a, ctx)).refresh_token;
    clock.advance(1000);
    const c = ok(await svc.refresh(b, ctx)).refresh_token;
    clock.advance(1000);

    const replay = await svc.refresh(a, ctx);
    expect(replay).toEqual({ ok: false, error: 'invalid_grant', error_description: 'refresh token already used; every token of this sign-in is revoked' });
    expect(reused).toEqual([u.sessionId]);
    const newest = await svc.refresh(c, ctx);
    expect(newest).toEqual({ ok: false, error: 'invalid_grant', error_description: 'refresh token revoked' });
    const live = await db.query('SELECT 1 FROM refresh_tokens WHERE session_id = $1 AND revoked_at IS NULL', [u.sessionId]);
    expect(live.rowCount).toBe(0);
    expect(await sessions.byId(u.sessionId)).toBeNull();
  });

  it('reuseSessionAction revoke: the session is revoked instead of locked', async () => {
    const u = await signIn();
    const svc = service({ reuseSessionAction: 'revoke' });
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    ok(await svc.refresh(a, ctx));
    await svc.refresh(a, ctx);
    expect((await sessionRow(u.sessionId)).revoked_at).not.toBeNull();
    expect(await auditCount('session.revoked', u.sessionId)).toBe(1);
  });

  it('grace is off by default: the previous token presented again at once is reuse', async () => {
    const u = await signIn();
    const svc = service();
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const b = ok(await svc.refresh(a, ctx)).refresh_token;
    expect((await svc.refresh(a, ctx)).ok).toBe(false);
    expect((await svc.refresh(b, ctx)).ok).toBe(false);
    expect(await familyOf(u.sessionId)).toEqual([expect.objectContaining({ revoke_reason: 'refresh_reuse' })]);
  });

  it('grace on: only the immediately previous token, only inside the window, gets the same current child', async () => {
    const u = await signIn();
    const svc = service({ reuseGraceSeconds: 30 });
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const first = ok(await svc.refresh(a, ctx));
    clock.advance(10_000);
    const again = ok(await svc.refresh(a, ctx));
    expect(again.refresh_token).toBe(first.refresh_token);
    expect(again.access_token).not.toBe(first.access_token);
    expect((await db.query('SELECT 1 FROM refresh_tokens WHERE session_id = $1', [u.sessionId])).rowCount).toBe(2);

    // The child moves on: a is now two generations old, which no grace covers.
    const c = ok(await svc.refresh(first.refresh_token, ctx)).refresh_token;
    const sealed = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM refresh_tokens WHERE session_id = $1 AND grace_child_sealed IS NOT NULL', [u.sessionId]);
    expect(sealed.rows[0].n).toBe(1);
    expect(await svc.refresh(a, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await svc.refresh(c, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await familyOf(u.sessionId)).toEqual([expect.objectContaining({ revoke_reason: 'refresh_reuse' })]);
  });

  it('grace on: after the window the previous token is reuse', async () => {
    const u = await signIn();
    const svc = service({ reuseGraceSeconds: 30 });
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const b = ok(await svc.refresh(a, ctx)).refresh_token;
    clock.advance(30_001);
    expect(await svc.refresh(a, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await svc.refresh(b, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
  });

  it('grace on: 50 parallel refreshes with one token all get the same child; one rotation happened', async () => {
    const u = await signIn();
    const svc = service({ reuseGraceSeconds: 5 });
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const results = await Promise.all(Array.from({ length: 50 }, () => svc.refresh(a, ctx)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(new Set(results.map((r) => (r as { refresh_token: string }).refresh_token)).size).toBe(1);
    expect((await db.query('SELECT 1 FROM refresh_tokens WHERE session_id = $1', [u.sessionId])).rowCount).toBe(2);
    expect(await familyOf(u.sessionId)).toEqual([expect.objectContaining({ revoked_at: null })]);
  });

  it('the family dies with its session: revokeSession (logout) and a revoked or locked session', async () => {
    const svc = service();
    const u = await signIn();
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    await sessions.revoke(u.sessionId, 'logout');
    await svc.revokeSession(u.sessionId, 'logout');
    expect(await svc.refresh(a, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await familyOf(u.sessionId)).toEqual([expect.objectContaining({ revoke_reason: 'logout' })]);
    expect(await auditCount('refresh.family_revoked', u.sessionId)).toBe(1);

    // Even without revokeSession, a session that ended refuses its tokens.
    const v = await signIn();
    const b = await svc.issue({ sessionId: v.sessionId, identityId: v.identityId, ip: IP, deviceId: null });
    await sessions.lock(v.sessionId, 'admin');
    expect(await svc.refresh(b, ctx)).toEqual({ ok: false, error: 'invalid_grant', error_description: 'the session has ended; sign in again' });
    await sessions.unlock(v.sessionId);
    ok(await svc.refresh(b, ctx));

    // A disabled identity cannot refresh either.
    const w = await signIn();
    const c = await svc.issue({ sessionId: w.sessionId, identityId: w.identityId, ip: IP, deviceId: null });
    await db.query("UPDATE identities SET status = 'disabled' WHERE id = $1", [w.identityId]);
    expect(await svc.refresh(c, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
  });

  it('issue refuses a session that is not live', async () => {
    const svc = service();
    const u = await signIn();
    await sessions.revoke(u.sessionId, 'logout');
    await expect(svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const v = await signIn();
    await expect(svc.issue({ sessionId: v.sessionId, identityId: u.identityId, ip: IP, deviceId: null })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('after a step-up rotates the session id, rebindSession moves the family; tokens carry the raised session', async () => {
    const svc = service();
    const u = await signIn();
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const raised = await sessions.elevate(u.sessionId, { amr: ['pwd', 'hwk', 'mfa'], acr: 'urn:threshold:acr:aal3', factorTimes: {} });
    expect(raised).not.toBeNull();
    await svc.rebindSession(u.sessionId, raised!.session.id, ctx);
    const r = ok(await svc.refresh(a, ctx));
    expect(await tokens.verify(r.access_token)).toMatchObject({ sid: raised!.session.id, amr: ['pwd', 'hwk', 'mfa'], acr: 'urn:threshold:acr:aal3' });
    await svc.revokeSession(raised!.session.id, 'logout');
    expect(await svc.refresh(r.refresh_token, ctx)).toMatchObject({ ok: false });
  });

  it('a successful refresh is session activity (the idle window slides with the rotation), a refused one is not', async () => {
    const svc = service();
    const u = await signIn();
    const seen = async () =>
      (await db.query<{ last_seen_at: Date; idle_expires_at: Date }>('SELECT last_seen_at, idle_expires_at FROM sessions WHERE id = $1', [u.sessionId])).rows[0];
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const before = await seen();
    clock.advance(60_000);
    await svc.refresh('x'.repeat(43), ctx);
    expect(await seen()).toEqual(before);
    const b = ok(await svc.refresh(a, ctx)).refresh_token;
    const after = await seen();
    expect(after.last_seen_at.getTime()).toBe(clock.now());
    expect(after.idle_expires_at.getTime()).toBe(clock.now() + IDLE * 1000);
    // A replay is refused and slides nothing (it revokes instead).
    clock.advance(60_000);
    await svc.refresh(a, ctx);
    expect((await seen()).last_seen_at.getTime()).toBe(after.last_seen_at.getTime());
    expect(await svc.refresh(b, ctx)).toMatchObject({ ok: false });
  });

  it('refreshes alone keep a session alive past its idle window (never past its absolute one)', async () => {
    const svc = service();
    const u = await signIn();
    let t = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    for (let i = 0; i < 4; i++) {
      clock.advance((IDLE * 1000) / 2);
      t = ok(await svc.refresh(t, ctx)).refresh_token;
    }
    expect(await sessions.byId(u.sessionId)).not.toBeNull();
  });

  it('a refresh costs two SQL statements: one read (token, family, session, roles) and one rotation', async () => {
    const statements: string[] = [];
    const counting: Db = {
      ...db,
      query: ((sql: string, params?: unknown[]) => {
        statements.push(sql.trim().split(/\s+/)[0]);
        return db.query(sql, params as never);
      }) as Db['query'],
      tx: ((fn: never) => {
        statements.push('BEGIN');
        return db.tx(fn);
      }) as Db['tx'],
    };
    const svc = createRefreshService({ db: counting, clock, audit, sessions, tokens, geo: noGeo, ttlSeconds: 3600, roleNames: async () => ['PATHOLOGIST'] });
    const u = await signIn();
    await db.query("INSERT INTO user_roles (identity_id, role) VALUES ($1, 'TECHNICIAN')", [u.identityId]);
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    await tokens.verify((await tokens.issue({ sub: u.identityId, sid: u.sessionId, amr: ['pwd'], acr: 'x', auth_time: 1 })).token); // warm the signing key
    statements.length = 0;
    const r = ok(await svc.refresh(a, ctx));
    expect(statements).toEqual(['SELECT', 'WITH']);
    // Roles come from the same read, not from another query.
    expect(await tokens.verify(r.access_token)).toMatchObject({ roles: ['TECHNICIAN'] });
  });

  it('garbage and unknown tokens are invalid_grant', async () => {
    const svc = service();
    for (const t of ['', 'short', 'x'.repeat(43), 'é'.repeat(43), 'a'.repeat(2000)]) {
      expect(await svc.refresh(t, ctx)).toEqual({ ok: false, error: 'invalid_grant', error_description: 'refresh token not recognised' });
    }
  });

  it('rejects unsafe options at creation', () => {
    expect(() => service({ ttlSeconds: 0 })).toThrow(/ttlSeconds/);
    expect(() => service({ reuseGraceSeconds: -1 })).toThrow(/reuseGraceSeconds/);
    expect(() => service({ reuseGraceSeconds: 3600 })).toThrow(/reuseGraceSeconds/);
  });
});

describe('refresh lifetime (ManualClock)', () => {
  it('refreshing every 10 minutes never extends the absolute lifetime; after it even the freshest token fails', async () => {
    // Idle as long as absolute, so only the absolute limit is under test.
    const s = createSessionService({ db, clock, idleSeconds: ABSOLUTE, absoluteSeconds: ABSOLUTE });
    const svc = createRefreshService({ db, clock, audit, sessions: s, tokens, geo: noGeo, ttlSeconds: 3600 });
    const u = await signIn(s);
    const absolute = u.session.absoluteExpiresAt;
    let token = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    let refreshes = 0;
    while (clock.now() + 600_000 < absolute) {
      clock.advance(600_000);
      token = ok(await svc.refresh(token, ctx)).refresh_token;
      refreshes++;
    }
    expect(refreshes).toBe(71);
    const max = await db.query<{ m: Date }>('SELECT max(expires_at) AS m FROM refresh_tokens WHERE session_id = $1', [u.sessionId]);
    expect(max.rows[0].m.getTime()).toBe(absolute);
    clock.set(absolute);
    expect(await svc.refresh(token, ctx)).toEqual({ ok: false, error: 'invalid_grant', error_description: 'the session has ended; sign in again' });
    // And no token issued before the end outlives it either.
    expect((await db.query('SELECT 1 FROM refresh_tokens WHERE session_id = $1 AND expires_at > $2', [u.sessionId, new Date(absolute)])).rowCount).toBe(0);
  });

  it('a refresh token expires after its ttl', async () => {
    const s = createSessionService({ db, clock, idleSeconds: ABSOLUTE, absoluteSeconds: ABSOLUTE });
    const svc = createRefreshService({ db, clock, audit, sessions: s, tokens, geo: noGeo, ttlSeconds: 3600 });
    const u = await signIn(s);
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    clock.advance(3599_000);
    const b = ok(await svc.refresh(a, ctx)).refresh_token;
    clock.advance(3600_000);
    expect(await svc.refresh(b, ctx)).toEqual({ ok: false, error: 'invalid_grant', error_description: 'refresh token expired' });
    // Expired, not reused: the family and session stay as they were.
    expect(await familyOf(u.sessionId)).toEqual([expect.objectContaining({ revoked_at: null })]);
    expect(await s.byId(u.sessionId)).not.toBeNull();
  });

  it('an unattended session (no refresh within the idle window) ends refresh too', async () => {
    const svc = service();
    const u = await signIn();
    const a = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    clock.advance(IDLE * 1000);
    expect(await svc.refresh(a, ctx)).toMatchObject({ ok: false, error_description: 'the session has ended; sign in again' });
  });
});

describe('POST /auth/token (in-process)', () => {
  const app = () => {
    const svc = service();
    return {
      svc,
      app: new Hono().route('/auth/token', tokenRoutes({ refresh: svc, clientIp: () => IP, deviceId: (c) => c.req.header('x-device-id') ?? null })),
    };
  };
  const form = (body: string) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('form and JSON bodies: 200 token set, no-store', async () => {
    const { app: a, svc } = app();
    const u = await signIn();
    const t1 = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: IP, deviceId: null });
    const r1 = await a.request('/auth/token', form(`grant_type=refresh_token&refresh_token=${encodeURIComponent(t1)}`));
    expect(r1.status).toBe(200);
    expect(r1.headers.get('cache-control')).toBe('no-store');
    const b1 = (await r1.json()) as Record<string, unknown>;
    expect(Object.keys(b1).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type']);
    const r2 = await a.request('/auth/token', json({ grant_type: 'refresh_token', refresh_token: b1.refresh_token }));
    expect(r2.status).toBe(200);
    // The first token again: reuse, as RFC 6749 §5.2 JSON.
    const r3 = await a.request('/auth/token', form(`grant_type=refresh_token&refresh_token=${encodeURIComponent(t1)}`));
    expect(r3.status).toBe(400);
    expect(r3.headers.get('cache-control')).toBe('no-store');
    expect(r3.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r3.json()).toEqual({ error: 'invalid_grant', error_description: 'refresh token already used; every token of this sign-in is revoked' });
  });

  it.each([
    ['no grant_type', form('refresh_token=abc'), 'invalid_request'],
    ['another grant', form('grant_type=password&username=a&password=b'), 'unsupported_grant_type'],
    ['no refresh_token', form('grant_type=refresh_token'), 'invalid_request'],
    ['a repeated parameter', form('grant_type=refresh_token&refresh_token=a&refresh_token=b'), 'invalid_request'],
    ['a control character', form('grant_type=refresh_token&refresh_token=%00abc'), 'invalid_request'],
    ['a non-string JSON value', json({ grant_type: 'refresh_token', refresh_token: 42 }), 'invalid_request'],
    ['garbled JSON', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' }, 'invalid_request'],
    ['a text/plain body', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'grant_type=refresh_token' }, 'invalid_request'],
    ['an unknown token', form(`grant_type=refresh_token&refresh_token=${'A'.repeat(43)}`), 'invalid_grant'],
  ] as Array<[string, RequestInit, string]>)('%s → 400 %s', async (_, init, error) => {
    const res = await app().app.request('/auth/token', init);
    expect(res.status).toBe(400);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { error: string; error_description: string };
    expect(body.error).toBe(error);
    expect(typeof body.error_description).toBe('string');
  });
});
