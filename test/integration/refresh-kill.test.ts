import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import { Sealer, sha256 } from '../../src/crypto/seal.ts';
import { createPgDb } from '../../src/db/pg.ts';
import type { Db, Queryable } from '../../src/db/db.ts';
import { createSessionService, type SessionService } from '../../src/session/sessions.ts';
import { createTokenService, type TokenService } from '../../src/tokens/access-token.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import { createRefreshService, type RefreshResult, type RefreshService } from '../../src/tokens/refresh.ts';
import type { RotationHook } from '../../src/tokens/refresh-store.ts';
import { createTestDb } from '../helpers/db.ts';

/**
 * The database connection that is rotating a token dies in the middle of the rotation's
 * transaction (as in a Postgres restart or failover): killed with pg_terminate_backend from a
 * second connection while the transaction is open and busy. Afterwards exactly one of old/new is
 * usable (the old one: nothing committed), and replay detection still works.
 */
const ctx = { ip: '10.9.8.7', deviceId: null };


let drop: () => Promise<void>;
let db: Db;
let admin: pg.Client;
let clock: ManualClock;
let sessions: SessionService;
let tokens: TokenService;
let svc: RefreshService;
let armed: 'updated' | 'inserted' | null = null;
let killedPid: number | null = null;

/** Kill this transaction's backend while it runs a query (the rotation is mid-flight). */
const hook: RotationHook = async (stage, q: Queryable) => {
  if (stage !== armed) return;
  armed = null;
  const { rows } = await q.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  killedPid = rows[0].pid;
  // Barrier: kill it once Postgres shows it inside the pg_sleep below, not after a guessed pause.
  const killer = (async () => {
    await vi.waitFor(
      async () => {
        const r = await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query = 'SELECT pg_sleep(10)'", [killedPid]);
        expect(r.rowCount).toBe(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    await admin.query('SELECT pg_terminate_backend($1)', [killedPid]);
  })();
  try {
    await q.query('SELECT pg_sleep(10)');
  } finally {
    await killer;
  }
};

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
  svc = createRefreshService({ db, clock, audit, sessions, tokens, geo: { lookup: () => null }, ttlSeconds: 3600, rotationHook: hook });
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
  it.each(['updated', 'inserted'] as const)('after the %s step: nothing committed, the old token still works once, replay is still detected', async (stage) => {
    const u = await signIn();
    const old = await svc.issue({ sessionId: u.sessionId, identityId: u.identityId, ip: ctx.ip, deviceId: null });

    armed = stage;
    await expect(svc.refresh(old, ctx)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(armed).toBeNull();
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
