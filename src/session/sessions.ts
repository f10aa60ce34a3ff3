import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { randomToken, sha256 } from '../crypto/seal.ts';
import { AppError } from '../errors.ts';
import { evaluateSession } from './lifecycle.ts';
import type { SessionContext, SessionEvent, SessionState } from '../../machines/session.machine.ts';

export interface SessionRecord {
  id: string;
  identityId: string;
  amr: string[];
  acr: string;
  authTime: number; // epoch s
  factorTimes: Record<string, number>;
  createdAt: number; // epoch ms
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  state: SessionState;
  deviceId: string | null;
  ip: string | null;
  country: string | null;
}

export interface NewSession {
  identityId: string;
  amr: string[];
  acr: string;
  authTime: number;
  factorTimes: Record<string, number>;
  deviceId: string | null;
  ip: string | null;
  country: string | null;
}

export interface SessionService {
  /** A fresh 256-bit opaque token; only its hash is stored. Applies the per-user cap. */
  create(s: NewSession): Promise<{ token: string; session: SessionRecord; evicted: string[] }>;
  /**
   * Stops use of unknown, revoked, locked, idle-expired or absolutely expired sessions.
   * `activity` slides the idle window; `check` (status reads) only evaluates.
   */
  authenticate(token: string, mode?: 'activity' | 'check'): Promise<SessionRecord | null>;
  /** A usable session by id (for access tokens' `sid`), without sliding. */
  byId(id: string): Promise<SessionRecord | null>;
  /** Activity by id (a token refresh): slides the idle window like a cookie request. */
  touch(id: string): Promise<SessionRecord | null>;
  revoke(id: string, reason: string): Promise<boolean>;
  /** Freeze a session after a security event; every use is refused until unlocked. */
  lock(id: string, reason: string): Promise<boolean>;
  unlock(id: string): Promise<boolean>;
  /** Live sessions of a user, newest first. */
  listFor(identityId: string): Promise<SessionRecord[]>;
  /** Revoke every live session of a user (except one), e.g. on a password change. */
  revokeAllFor(identityId: string, reason: string, except?: string): Promise<string[]>;
  /** Remove expired rows; returns how many. */
  sweep(): Promise<number>;
  /**
   * A session row that another module read with its own query (the refresh lookup joins it, to
   * save a round trip): the usable record and the idle slide that activity would write, or null
   * when the session cannot be used (revoked, locked, expired). Pure: writes nothing.
   */
  activityOf(row: SessionRow): { record: SessionRecord; slide: SessionSlide } | null;
  /**
   * Raise a live session after step-up: new amr/acr and factor times, and a new id and token
   * (the old ones are revoked at once: stops session fixation). The absolute expiry is kept.
   */
  elevate(id: string, change: { amr: string[]; acr: string; factorTimes: Record<string, number> }): Promise<{ token: string; session: SessionRecord } | null>;
}

/** What activity writes to a session: its state and the slid idle window (never shortened). */
export interface SessionSlide {
  state: SessionState;
  lastSeenAt: number;
  idleExpiresAt: number;
}

export type SessionRow = Row;

interface Row {
  id: string;
  identity_id: string;
  amr: string[];
  acr: string;
  auth_time: Date;
  factor_times: Record<string, number>;
  created_at: Date;
  last_seen_at: Date;
  idle_expires_at: Date;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  state: 'active' | 'warning' | 'locked';
  lock_reason: string | null;
  device_id: string | null;
  ip: string | null;
  country: string | null;
}

/** The sessions columns every reader selects (a joining reader prefixes them with `alias.`). */
export const SESSION_COLUMNS = [
  'id', 'identity_id', 'amr', 'acr', 'auth_time', 'factor_times', 'created_at', 'last_seen_at', 'idle_expires_at',
  'absolute_expires_at', 'revoked_at', 'state', 'lock_reason', 'device_id', 'ip', 'country',
] as const;

const COLS = SESSION_COLUMNS.join(', ');
/**
 * Stops a disabled account's sessions (and the access tokens bound to them) from being used:
 * disabling is a status change on the identity, which writes no session row.
 */
const OF_ACTIVE_IDENTITY = `identity_id IN (SELECT id FROM identities WHERE status = 'active')`;

const toRecord = (r: Row, state: SessionState = r.state): SessionRecord => ({
  id: r.id,
  identityId: r.identity_id,
  amr: r.amr,
  acr: r.acr,
  authTime: Math.floor(r.auth_time.getTime() / 1000),
  factorTimes: r.factor_times,
  createdAt: r.created_at.getTime(),
  lastSeenAt: r.last_seen_at.getTime(),
  idleExpiresAt: r.idle_expires_at.getTime(),
  absoluteExpiresAt: r.absolute_expires_at.getTime(),
  state,
  deviceId: r.device_id,
  ip: r.ip,
  country: r.country,
});

export function createSessionService(deps: {
  db: Db;
  clock: Clock;
  idleSeconds: number;
  absoluteSeconds: number;
  warningSeconds?: number;
  maxPerUser?: number;
  capPolicy?: 'evict_oldest' | 'refuse';
  /** Told about every revocation or lock (deny-lists, caches), and about unlocks. */
  onRevoked?: (ids: string[], untilMs: number) => Promise<void>;
  /** Told when sessions end for good (revoked, evicted), not when rotated by step-up. */
  onEnded?: (ids: string[], reason: string) => Promise<void>;
  onRestored?: (id: string) => Promise<void>;
}): SessionService {
  const { db, clock } = deps;
  /** How stale the stored last-seen time may be before a request writes it again. */
  const slideGranularityMs = Math.min(60_000, (deps.idleSeconds * 1000) / 20);
  const ctxOf = (r: Row): SessionContext => ({
    idleMs: deps.idleSeconds * 1000,
    warningMs: (deps.warningSeconds ?? 300) * 1000,
    lastSeenAt: r.last_seen_at.getTime(),
    idleExpiresAt: r.idle_expires_at.getTime(),
    absoluteExpiresAt: r.absolute_expires_at.getTime(),
    reason: r.lock_reason,
  });
  /** The machine's verdict on a stored row; revoked rows never reach it. */
  const judge = (r: Row, event: SessionEvent) => evaluateSession(r.state, ctxOf(r), event);
  const announce = async (ids: string[], untilMs: number) => {
    if (ids.length && deps.onRevoked) await deps.onRevoked(ids, untilMs);
  };

  async function live(q: Queryable, identityId: string, now: number): Promise<Row[]> {
    const { rows } = await q.query<Row>(
      `SELECT ${COLS} FROM sessions WHERE identity_id = $1 AND revoked_at IS NULL
          AND idle_expires_at > $2 AND absolute_expires_at > $2 ORDER BY created_at, id`,
      [identityId, new Date(now)],
    );
    return rows;
  }

  return {
    async create(s) {
      const now = clock.now();
      const token = randomToken(32);
      const id = randomUUID();
      const absolute = now + deps.absoluteSeconds * 1000;
      const idle = Math.min(now + deps.idleSeconds * 1000, absolute);
      const cap = deps.maxPerUser ?? 0;
      const result = await db.tx(async (q) => {
        const evicted: string[] = [];
        if (cap > 0) {
          // One login per user at a time decides the cap, so concurrent logins cannot overshoot it.
          await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sessions:${s.identityId}`]);
          const current = await live(q, s.identityId, now);
          if (current.length >= cap) {
            if (deps.capPolicy === 'refuse') throw new AppError('SESSION_LIMIT_REACHED');
            for (const old of current.slice(0, current.length - cap + 1)) {
              await q.query("UPDATE sessions SET revoked_at = $2, revoke_reason = 'evicted' WHERE id = $1", [old.id, new Date(now)]);
              evicted.push(old.id);
            }
          }
        }
        // Only for an account that can sign in now (active, not locked): a login that was slow to
        // finish (second factor, risk) must not start a session for an account disabled or locked
        // meanwhile. Checked in the insert itself, so nothing can change in between.
        const { rows } = await q.query<Row>(
          `INSERT INTO sessions (id, identity_id, token_hash, amr, acr, auth_time, factor_times, device_id, ip, country,
                                 created_at, last_seen_at, idle_expires_at, absolute_expires_at)
           SELECT $1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9, $10, $11, $11, $12, $13
             FROM identities
            WHERE id = $2 AND status = 'active' AND (locked_at IS NULL OR (locked_until IS NOT NULL AND locked_until <= $11))
           RETURNING ${COLS}`,
          [
            id, s.identityId, sha256(token), JSON.stringify(s.amr), s.acr, new Date(s.authTime * 1000),
            JSON.stringify(s.factorTimes), s.deviceId, s.ip, s.country, new Date(now), new Date(idle), new Date(absolute),
          ],
        );
        if (!rows[0]) throw new AppError('ACCOUNT_LOCKED');
        return { token, session: toRecord(rows[0]), evicted };
      });
      await announce(result.evicted, absolute);
      if (result.evicted.length) await deps.onEnded?.(result.evicted, 'evicted');
      return result;
    },
    async authenticate(token, mode = 'activity') {
      if (typeof token !== 'string' || token.length < 20 || token.length > 100) return null;
      const now = clock.now();
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM sessions WHERE token_hash = $1 AND ${OF_ACTIVE_IDENTITY}`, [sha256(token)]);
      const r = rows[0];
      if (!r || r.revoked_at !== null) return null;
      const next = judge(r, mode === 'activity' ? { type: 'ACTIVITY', at: now } : { type: 'CHECK', at: now });
      if (next.state === 'expired') {
        // Expired sessions are removed from the store.
        await db.query('DELETE FROM sessions WHERE id = $1', [r.id]);
        return null;
      }
      if (next.state === 'locked') return null;
      if (mode === 'check' && next.state === r.state) return toRecord(r, next.state);
      // Activity slides the idle window, written at most once per SLIDE granularity (unless the
      // state changes): a busy page is not an UPDATE per request. The stored window may lag the
      // last request by less than the granularity, so a session can only end that much sooner.
      if (mode === 'activity' && next.state === r.state && now - r.last_seen_at.getTime() < slideGranularityMs) return toRecord(r, next.state);
      const u = await db.query<Row>(
        `UPDATE sessions SET state = $2, last_seen_at = $3, idle_expires_at = GREATEST(idle_expires_at, $4)
          WHERE id = $1 AND revoked_at IS NULL AND state <> 'locked' RETURNING ${COLS}`,
        [r.id, next.state, new Date(next.ctx.lastSeenAt), new Date(next.ctx.idleExpiresAt)],
      );
      return u.rows[0] ? toRecord(u.rows[0]) : null;
    },
    activityOf(r) {
      if (r.revoked_at !== null) return null;
      const next = judge(r, { type: 'ACTIVITY', at: clock.now() });
      if (next.state === 'expired' || next.state === 'locked') return null;
      return {
        record: toRecord(r, next.state),
        slide: { state: next.state, lastSeenAt: next.ctx.lastSeenAt, idleExpiresAt: next.ctx.idleExpiresAt },
      };
    },
    async byId(id) {
      if (!/^[0-9a-f-]{36}$/.test(id)) return null;
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM sessions WHERE id = $1 AND ${OF_ACTIVE_IDENTITY}`, [id]);
      const r = rows[0];
      if (!r || r.revoked_at !== null) return null;
      const next = judge(r, { type: 'CHECK', at: clock.now() });
      return next.state === 'expired' || next.state === 'locked' ? null : toRecord(r, next.state);
    },
    async touch(id) {
      if (!/^[0-9a-f-]{36}$/.test(id)) return null;
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM sessions WHERE id = $1 AND ${OF_ACTIVE_IDENTITY}`, [id]);
      const r = rows[0];
      if (!r || r.revoked_at !== null) return null;
      const next = judge(r, { type: 'ACTIVITY', at: clock.now() });
      if (next.state === 'expired' || next.state === 'locked') return null;
      const u = await db.query<Row>(
        `UPDATE sessions SET state = $2, last_seen_at = $3, idle_expires_at = GREATEST(idle_expires_at, $4)
          WHERE id = $1 AND revoked_at IS NULL AND state <> 'locked' RETURNING ${COLS}`,
        [r.id, next.state, new Date(next.ctx.lastSeenAt), new Date(next.ctx.idleExpiresAt)],
      );
      return u.rows[0] ? toRecord(u.rows[0]) : null;
    },
    async revoke(id, reason) {
      const r = await db.query<{ absolute_expires_at: Date }>(
        'UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING absolute_expires_at',
        [id, new Date(clock.now()), reason],
      );
      if (r.rowCount === 1) {
        await announce([id], r.rows[0].absolute_expires_at.getTime());
        await deps.onEnded?.([id], reason);
      }
      return r.rowCount === 1;
    },
    async lock(id, reason) {
      const r = await db.query<{ absolute_expires_at: Date }>(
        `UPDATE sessions SET state = 'locked', locked_at = $2, lock_reason = $3 WHERE id = $1 AND revoked_at IS NULL AND state <> 'locked' RETURNING absolute_expires_at`,
        [id, new Date(clock.now()), reason],
      );
      if (r.rowCount === 1) await announce([id], r.rows[0].absolute_expires_at.getTime());
      return r.rowCount === 1;
    },
    async unlock(id) {
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM sessions WHERE id = $1 AND revoked_at IS NULL`, [id]);
      const r = rows[0];
      if (!r || r.state !== 'locked') return false;
      const next = judge(r, { type: 'UNLOCK', at: clock.now() });
      if (next.state !== 'active') return false;
      const u = await db.query("UPDATE sessions SET state = 'active', locked_at = NULL, lock_reason = NULL WHERE id = $1 AND state = 'locked'", [id]);
      if (u.rowCount === 1) await deps.onRestored?.(id);
      return u.rowCount === 1;
    },
    async listFor(identityId) {
      const now = clock.now();
      return (await live(db, identityId, now)).reverse().map((r) => toRecord(r, judge(r, { type: 'CHECK', at: now }).state));
    },
    async revokeAllFor(identityId, reason, except) {
      const now = new Date(clock.now());
      const r = await db.query<{ id: string; absolute_expires_at: Date }>(
        `UPDATE sessions SET revoked_at = $2, revoke_reason = $3
          WHERE identity_id = $1 AND revoked_at IS NULL AND ($4::uuid IS NULL OR id <> $4::uuid) RETURNING id, absolute_expires_at`,
        [identityId, now, reason, except ?? null],
      );
      for (const row of r.rows) await announce([row.id], row.absolute_expires_at.getTime());
      if (r.rows.length) await deps.onEnded?.(r.rows.map((x) => x.id), reason);
      return r.rows.map((x) => x.id);
    },
    async sweep() {
      const now = new Date(clock.now());
      const r = await db.query('DELETE FROM sessions WHERE absolute_expires_at <= $1 OR (revoked_at IS NULL AND idle_expires_at <= $1)', [now]);
      return r.rowCount;
    },
    async elevate(id, change) {
      const now = clock.now();
      const token = randomToken(32);
      const newId = randomUUID();
      const out = await db.tx(async (q) => {
        // Revoke first, atomically: of two concurrent elevations of one session, one wins.
        const old = await q.query<Row>(
          `UPDATE sessions SET revoked_at = $2, revoke_reason = 'rotated'
            WHERE id = $1 AND revoked_at IS NULL AND state <> 'locked' AND idle_expires_at > $2 AND absolute_expires_at > $2
          RETURNING ${COLS}`,
          [id, new Date(now)],
        );
        const o = old.rows[0];
        if (!o) return null;
        const idle = Math.min(now + deps.idleSeconds * 1000, o.absolute_expires_at.getTime());
        const { rows } = await q.query<Row>(
          `INSERT INTO sessions (id, identity_id, token_hash, amr, acr, auth_time, factor_times, device_id, ip, country,
                                 created_at, last_seen_at, idle_expires_at, absolute_expires_at)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14) RETURNING ${COLS}`,
          [
            newId, o.identity_id, sha256(token), JSON.stringify(change.amr), change.acr, o.auth_time,
            JSON.stringify({ ...o.factor_times, ...change.factorTimes }), o.device_id, o.ip, o.country,
            o.created_at, new Date(now), new Date(idle), o.absolute_expires_at,
          ],
        );
        return { token, session: toRecord(rows[0]), oldAbsolute: o.absolute_expires_at.getTime() };
      });
      if (!out) return null;
      await announce([id], out.oldAbsolute);
      return { token: out.token, session: out.session };
    },
  };
}
