import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import { Sealer, sha256 } from '../../src/crypto/seal.ts';
import { createPgDb } from '../../src/db/pg.ts';
import type { Db } from '../../src/db/db.ts';
import { createSessionService, type SessionService } from '../../src/session/sessions.ts';
import { createTokenService, type TokenService } from '../../src/tokens/access-token.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import { createRefreshService, type RefreshResult, type RefreshService } from '../../src/tokens/refresh.ts';
import { createTestDb } from '../helpers/db.ts';

/**
 * The database connection that is rotating a token dies in the middle of the rotation (as in a
 * Postgres restart or failover): a second connection holds the family's row lock, so the
 * rotation's statement is running and waiting inside Postgres, and that backend is killed with
 * pg_terminate_backend. Afterwards exactly one of old/new is usable (the old one: nothing
 * committed), and replay detection still works.
 */
const ctx = { ip: '10.9.8.7', deviceId: null };


let drop: () => Promise<void>;
let db: Db;
let admin: pg.Client;
let clock: ManualClock;
let sessions: SessionService;
let tokens: TokenService;
let svc: RefreshService;
let killedPid: number | null = null;

/**
 * Hold the family's lock from `admin`, wait until the rotation statement blocks on it inside
 * Postgres, kill that backend, then let go. Resolves with the killed pid.
 */
async function killRotationMidway(familyId: string, refresh: Promise<unknown>): Promise<void> {
  void refresh.catch(() => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    // pg_stat_activity is a snapshot kept for the whole transaction: take a new one each time.
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query LIKE 'WITH fam AS%' AND pid <> pg_backend_pid()`,
    );
    if (rows[0]) {
      killedPid = rows[0].pid;
      await admin.query('SELECT pg_terminate_backend($1)', [killedPid]);
      return;
    }
    if (Date.now() > deadline) throw new Error(`the rotation of family ${familyId} never waited on the lock`);
    await new Promise((r) => setImmediate(r));
  }
}

beforeAll(async () => {
  const t = await createTestDb();
  drop = t.drop;
  // The real adapter: it must survive a backend killed under a checked-out client.
  db = createPgDb(t.url);
  await t.db.close();
  admin = new pg.Client({ connectionString: t.url });
  await admin.connect();
  clock = new ManualClock();
  const audit = createAudit(db, clock);
  sessions = createSessionService({ db, clock, idleSeconds: 1800, absoluteSeconds: 43200 });
  tokens = createTokenService(createKeyStore(db, new Sealer(randomBytes(32)), clock), clock, { issuer: 'https://i.test', audience: 'https://a.test', ttlSeconds: 600 });
  svc = createRefreshService({ db, clock, audit, sessions, tokens, geo: { lookup: () => null }, ttlSeconds: 3600 });
});
afterAll(async () => {
  await admin?.end();
  await db?.close();
  await drop?.();
});

async function signIn() {
  const identityId = randomUUID();
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [identityId, `${identityId}@example.test`, new Date(clock.now())]);
  const { session } = await sessions.create({ identityId, amr: ['pwd'], acr: 'urn:threshold:acr:aal1', authTime: clock.now() / 1000, factorTimes: {}, deviceId: null, ip: ctx.ip, country: null });
  return { identityId, sessionId: session.id };
}

const tokenRows = async (sessionId: string) =>
  (await db.query<{ token_hash: string; rotated_at: Date | null; revoked_at: Date | null }>(
    'SELECT token_hash, rotated_at, revoked_at FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at', [sessionId],
  )).rows;

describe('connection killed in the middle of a rotation', () => {
  it('while the rotation statement runs: nothing committed, the old token still works once, replay is still detected', async () => {
    const u = await signIn();
    const old = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: ctx.ip, deviceId: null });
    const family = (await db.query<{ id: string }>('SELECT id FROM refresh_families WHERE session_id = $1', [u.sessionId])).rows[0].id;

    await admin.query('BEGIN');
    await admin.query('SELECT 1 FROM refresh_families WHERE id = $1 FOR UPDATE', [family]);
    const refresh = svc.refresh(old, ctx);
    try {
      await killRotationMidway(family, refresh);
    } finally {
      await admin.query('ROLLBACK');
    }
    await expect(refresh).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    // The backend really died.
    const gone = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [killedPid]);
    expect(gone.rowCount).toBe(0);

    // Durable state: the old token, not rotated; no child. Never both.
    const rows = await tokenRows(u.sessionId);
    expect(rows).toEqual([expect.objectContaining({ token_hash: sha256(old), rotated_at: null, revoked_at: null })]);

    // The pool recovered; the old token rotates once; replaying it afterwards is detected.
    const next = (await svc.refresh(old, ctx)) as Extract<RefreshResult, { ok: true }>;
    expect(next.ok).toBe(true);
    expect(await tokenRows(u.sessionId)).toHaveLength(2);
    expect(await svc.refresh(old, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await svc.refresh(next.refresh_token, ctx)).toMatchObject({ ok: false, error: 'invalid_grant' });
    expect(await sessions.byId(u.sessionId)).toBeNull();
  });
});
