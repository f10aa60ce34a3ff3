import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { randomToken, sha256 } from '../crypto/seal.ts';

export interface SessionRecord {
  id: string;
  identityId: string;
  amr: string[];
  acr: string;
  authTime: number; // epoch s
  factorTimes: Record<string, number>;
  createdAt: number; // epoch ms
  idleExpiresAt: number;
  absoluteExpiresAt: number;
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
  /** A fresh 256-bit opaque token; only its hash is stored. */
  create(s: NewSession): Promise<{ token: string; session: SessionRecord }>;
  /** Stops use of unknown, revoked, idle-expired or absolutely expired sessions; slides the idle window. */
  authenticate(token: string): Promise<SessionRecord | null>;
  /** Active session by id (for access tokens' `sid`), without sliding. */
  byId(id: string): Promise<SessionRecord | null>;
  revoke(id: string, reason: string): Promise<boolean>;
  /**
   * Raise a live session after step-up: new amr/acr and factor times, and a new id and token
   * (the old ones are revoked at once: stops session fixation). The absolute expiry is kept.
   */
  elevate(id: string, change: { amr: string[]; acr: string; factorTimes: Record<string, number> }): Promise<{ token: string; session: SessionRecord } | null>;
}

interface Row {
  id: string;
  identity_id: string;
  amr: string[];
  acr: string;
  auth_time: Date;
  factor_times: Record<string, number>;
  created_at: Date;
  idle_expires_at: Date;
  absolute_expires_at: Date;
  revoked_at: Date | null;
}

const toRecord = (r: Row): SessionRecord => ({
  id: r.id,
  identityId: r.identity_id,
  amr: r.amr,
  acr: r.acr,
  authTime: Math.floor(r.auth_time.getTime() / 1000),
  factorTimes: r.factor_times,
  createdAt: r.created_at.getTime(),
  idleExpiresAt: r.idle_expires_at.getTime(),
  absoluteExpiresAt: r.absolute_expires_at.getTime(),
});

const COLS = 'id, identity_id, amr, acr, auth_time, factor_times, created_at, idle_expires_at, absolute_expires_at, revoked_at';

export function createSessionService(deps: { db: Db; clock: Clock; idleSeconds: number; absoluteSeconds: number }): SessionService {
  const { db, clock } = deps;
  const live = (r: Row | undefined, now: number) =>
    !!r && r.revoked_at === null && r.idle_expires_at.getTime() > now && r.absolute_expires_at.getTime() > now;

  return {
    async create(s) {
      const now = clock.now();
      const token = randomToken(32);
      const id = randomUUID();
      const absolute = now + deps.absoluteSeconds * 1000;
      const idle = Math.min(now + deps.idleSeconds * 1000, absolute);
      const { rows } = await db.query<Row>(
        `INSERT INTO sessions (id, identity_id, token_hash, amr, acr, auth_time, factor_times, device_id, ip, country,
                               created_at, last_seen_at, idle_expires_at, absolute_expires_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9, $10, $11, $11, $12, $13) RETURNING ${COLS}`,
        [
          id, s.identityId, sha256(token), JSON.stringify(s.amr), s.acr, new Date(s.authTime * 1000),
          JSON.stringify(s.factorTimes), s.deviceId, s.ip, s.country, new Date(now), new Date(idle), new Date(absolute),
        ],
      );
      return { token, session: toRecord(rows[0]) };
    },
    async authenticate(token) {
      if (typeof token !== 'string' || token.length < 20 || token.length > 100) return null;
      const now = clock.now();
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM sessions WHERE token_hash = $1`, [sha256(token)]);
      const r = rows[0];
      if (!r) return null;
      if (!live(r, now)) {
        // Expired sessions are removed; revoked ones stay until expiry for the record.
        if (r.revoked_at === null) await db.query('DELETE FROM sessions WHERE id = $1', [r.id]);
        return null;
      }
      const idle = Math.min(now + deps.idleSeconds * 1000, r.absolute_expires_at.getTime());
      const u = await db.query<Row>(
        `UPDATE sessions SET last_seen_at = $2, idle_expires_at = GREATEST(idle_expires_at, $3)
          WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLS}`,
        [r.id, new Date(now), new Date(idle)],
      );
      return u.rows[0] ? toRecord(u.rows[0]) : null;
    },
    async byId(id) {
      if (!/^[0-9a-f-]{36}$/.test(id)) return null;
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM sessions WHERE id = $1`, [id]);
      return live(rows[0], clock.now()) ? toRecord(rows[0]) : null;
    },
    async elevate(id, change) {
      const now = clock.now();
      const token = randomToken(32);
      const newId = randomUUID();
      return db.tx(async (q) => {
        // Revoke first, atomically: of two concurrent elevations of one session, one wins.
        const old = await q.query<Row & { device_id: string | null; ip: string | null; country: string | null }>(
          `UPDATE sessions SET revoked_at = $2, revoke_reason = 'rotated'
            WHERE id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2
          RETURNING ${COLS}, device_id, ip, country`,
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
        return { token, session: toRecord(rows[0]) };
      });
    },
    async revoke(id, reason) {
      const r = await db.query('UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL', [
        id,
        new Date(clock.now()),
        reason,
      ]);
      return r.rowCount === 1;
    },
  };
}
