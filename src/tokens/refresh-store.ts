import { hkdfSync, randomUUID } from 'node:crypto';
import type { Audit, AuditEvent } from '../audit/audit.ts';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { randomToken, Sealer, sha256 } from '../crypto/seal.ts';
import { SESSION_COLUMNS, type SessionRow, type SessionSlide } from '../session/sessions.ts';

/**
 * The SQL of refresh-token families. Every change of a family locks its row first, then its
 * tokens: rotation, revocation and rebinding serialise per family and cannot deadlock.
 */

export interface StoredToken {
  id: string;
  familyId: string;
  /** The family's session (authoritative). */
  sessionId: string;
  identityId: string;
  expiresAt: number;
  rotatedAt: number | null;
  revoked: boolean;
  ip: string | null;
  country: string | null;
  identityActive: boolean;
  /** The child, when this token was rotated. */
  child: { id: string; live: boolean; ip: string | null; country: string | null } | null;
  /** The family's session row as stored (null when it is gone), read in the same statement. */
  session: SessionRow | null;
  /** The identity's role names, read in the same statement (access tokens carry them). */
  roles: string[];
}

export interface NewToken {
  ip: string | null;
  country: string | null;
  deviceId: string | null;
}

interface FoundRow {
  id: string;
  family_id: string;
  session_id: string;
  identity_id: string;
  expires_at: Date;
  rotated_at: Date | null;
  revoked_at: Date | null;
  ip: string | null;
  country: string | null;
  family_revoked_at: Date | null;
  status: string | null;
  child_id: string | null;
  child_rotated_at: Date | null;
  child_revoked_at: Date | null;
  child_expires_at: Date | null;
  child_ip: string | null;
  child_country: string | null;
  roles: string[] | null;
  [sessionColumn: `s_${string}`]: unknown;
}

const SESSION_SELECT = SESSION_COLUMNS.map((c) => `s.${c} AS s_${c}`).join(', ');

function sessionOf(r: FoundRow): SessionRow | null {
  if (r.s_id === null || r.s_id === undefined) return null;
  return Object.fromEntries(SESSION_COLUMNS.map((c) => [c, r[`s_${c}`]])) as unknown as SessionRow;
}

/** Key that seals a child token for the grace window: derived from the parent token itself. */
const graceSealer = (parentToken: string) =>
  new Sealer(Buffer.from(hkdfSync('sha256', parentToken, Buffer.alloc(0), 'threshold refresh grace v1', 32)));

export function createRefreshStore(deps: { db: Db; clock: Clock; audit: Audit; ttlSeconds: number; grace: boolean }) {
  const { db, clock, audit } = deps;
  const expiryFor = (now: number, absoluteExpiresAt: number) => new Date(Math.min(now + deps.ttlSeconds * 1000, absoluteExpiresAt));

  const insertToken = (
    q: Queryable,
    t: { id: string; familyId: string; sessionId: string; identityId: string; hash: string; parentId: string | null; now: number; expiresAt: Date } & NewToken,
  ) =>
    q.query(
      `INSERT INTO refresh_tokens (id, family_id, session_id, identity_id, token_hash, parent_id, created_at, expires_at, ip, country, device_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [t.id, t.familyId, t.sessionId, t.identityId, t.hash, t.parentId, new Date(t.now), t.expiresAt, t.ip, t.country, t.deviceId],
    );

  return {
    /** A new family with its first token; audited. */
    async createFamily(o: { sessionId: string; identityId: string; absoluteExpiresAt: number } & NewToken): Promise<{ token: string; familyId: string }> {
      const now = clock.now();
      const token = randomToken(32);
      const familyId = randomUUID();
      await db.tx(async (q) => {
        await q.query('INSERT INTO refresh_families (id, session_id, identity_id, created_at) VALUES ($1, $2, $3, $4)', [
          familyId, o.sessionId, o.identityId, new Date(now),
        ]);
        await insertToken(q, {
          ...o, id: randomUUID(), familyId, hash: sha256(token), parentId: null, now, expiresAt: expiryFor(now, o.absoluteExpiresAt),
        });
        await audit.append({ type: 'refresh.issued', actor: o.identityId, subject: o.sessionId, data: { family: familyId } }, q);
      });
      return { token, familyId };
    },

    /**
     * Everything a refresh decides on, in one statement: the token, its family and child, the
     * identity's status and roles, and the family's session row (judged by the session service).
     */
    async find(tokenHash: string): Promise<StoredToken | null> {
      const { rows } = await db.query<FoundRow>(
        `SELECT t.id, t.family_id, f.session_id, t.identity_id, t.expires_at, t.rotated_at, t.revoked_at, t.ip, t.country,
                f.revoked_at AS family_revoked_at, i.status,
                c.id AS child_id, c.rotated_at AS child_rotated_at, c.revoked_at AS child_revoked_at,
                c.expires_at AS child_expires_at, c.ip AS child_ip, c.country AS child_country,
                (SELECT array_agg(ur.role ORDER BY ur.role) FROM user_roles ur WHERE ur.identity_id = t.identity_id AND ur.namespace = '') AS roles,
                ${SESSION_SELECT}
           FROM refresh_tokens t
           JOIN refresh_families f ON f.id = t.family_id
           LEFT JOIN identities i ON i.id = t.identity_id
           LEFT JOIN refresh_tokens c ON c.parent_id = t.id
           LEFT JOIN sessions s ON s.id = f.session_id
          WHERE t.token_hash = $1`,
        [tokenHash],
      );
      const r = rows[0];
      if (!r) return null;
      const now = clock.now();
      return {
        id: r.id,
        familyId: r.family_id,
        sessionId: r.session_id,
        identityId: r.identity_id,
        expiresAt: r.expires_at.getTime(),
        rotatedAt: r.rotated_at ? r.rotated_at.getTime() : null,
        revoked: r.revoked_at !== null || r.family_revoked_at !== null,
        ip: r.ip,
        country: r.country,
        identityActive: r.status === 'active',
        child: r.child_id
          ? {
              id: r.child_id,
              live: r.child_rotated_at === null && r.child_revoked_at === null && (r.child_expires_at as Date).getTime() > now,
              ip: r.child_ip,
              country: r.child_country,
            }
          : null,
        session: sessionOf(r),
        roles: r.roles ?? [],
      };
    },

    /**
     * Rotate `tokenId` into a new child in ONE statement (one round trip, one commit): lock the
     * family, mark the token rotated, drop the grandparent's sealed copy (grace), insert the child
     * and slide the session's idle window (`slide`, computed by the session service from the row
     * the lookup read). Of any number of concurrent uses exactly one finds `rotated_at IS NULL`
     * (Postgres re-checks the row after waiting for its lock) and the others get `raced`. The
     * family lock orders a rotation against a family revocation, whose second statement then sees
     * the child. `parentToken` is needed only to seal the child for the grace window.
     * Stops refresh-token replay (RFC 9700 §4.14.2).
     */
    async rotate(o: {
      tokenId: string;
      familyId: string;
      parentToken: string;
      absoluteExpiresAt: number;
      client: NewToken;
      slide: SessionSlide | null;
    }): Promise<{ ok: true; child: string } | { ok: false; reason: 'raced' | 'session_ended' }> {
      const now = clock.now();
      if (o.absoluteExpiresAt <= now) return { ok: false, reason: 'session_ended' };
      const child = randomToken(32);
      const childId = randomUUID();
      const sealed = deps.grace ? graceSealer(o.parentToken).seal(child, childId) : null;
      const { rows } = await db.query<{ rotated: number }>(
        `WITH fam AS (
           SELECT id, session_id, identity_id FROM refresh_families WHERE id = $1 AND revoked_at IS NULL FOR UPDATE
         ), upd AS (
           UPDATE refresh_tokens SET rotated_at = $3, grace_child_sealed = $4
            WHERE id = $2 AND family_id = (SELECT id FROM fam) AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $3
           RETURNING parent_id
         ), grandparent AS (
           UPDATE refresh_tokens SET grace_child_sealed = NULL
            WHERE $5::boolean AND id = (SELECT parent_id FROM upd) AND grace_child_sealed IS NOT NULL
         ), ins AS (
           INSERT INTO refresh_tokens (id, family_id, session_id, identity_id, token_hash, parent_id, created_at, expires_at, ip, country, device_id)
           SELECT $6, fam.id, fam.session_id, fam.identity_id, $7, $2, $3, $8, $9, $10, $11 FROM fam, upd
           RETURNING session_id
         ), slide AS (
           UPDATE sessions SET state = $12, last_seen_at = $13, idle_expires_at = GREATEST(idle_expires_at, $14)
            WHERE $12::text IS NOT NULL AND id = (SELECT session_id FROM ins) AND revoked_at IS NULL AND state <> 'locked'
         )
         SELECT count(*)::int AS rotated FROM ins`,
        [
          o.familyId, o.tokenId, new Date(now), sealed, deps.grace, childId, sha256(child), expiryFor(now, o.absoluteExpiresAt),
          o.client.ip, o.client.country, o.client.deviceId,
          o.slide?.state ?? null, o.slide ? new Date(o.slide.lastSeenAt) : null, o.slide ? new Date(o.slide.idleExpiresAt) : null,
        ],
      );
      return rows[0]?.rotated === 1 ? { ok: true, child } : { ok: false, reason: 'raced' };
    },

    /** Grace only: open the current child of `parentToken`, if it is still the family's live newest token. */
    async currentChild(o: { tokenId: string; parentToken: string; graceMs: number }): Promise<string | null> {
      const now = clock.now();
      const { rows } = await db.query<{ rotated_at: Date | null; sealed: string | null; child_id: string; child_hash: string }>(
        `SELECT p.rotated_at, p.grace_child_sealed AS sealed, c.id AS child_id, c.token_hash AS child_hash
           FROM refresh_tokens p
           JOIN refresh_tokens c ON c.parent_id = p.id
           JOIN refresh_families f ON f.id = p.family_id
          WHERE p.id = $1 AND f.revoked_at IS NULL AND c.rotated_at IS NULL AND c.revoked_at IS NULL AND c.expires_at > $2`,
        [o.tokenId, new Date(now)],
      );
      const r = rows[0];
      if (!r || !r.sealed || !r.rotated_at || now - r.rotated_at.getTime() > o.graceMs) return null;
      let child: string;
      try {
        child = graceSealer(o.parentToken).open(r.sealed, r.child_id).toString('utf8');
      } catch {
        return null;
      }
      return sha256(child) === r.child_hash ? child : null;
    },

    /** Revoke a family and all its tokens; `event` is audited once, by the call that revoked it. */
    async revokeFamily(familyId: string, reason: string, event: AuditEvent | null): Promise<boolean> {
      const at = new Date(clock.now());
      return db.tx(async (q) => {
        const f = await q.query('UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING id', [
          familyId, at, reason,
        ]);
        await q.query(
          'UPDATE refresh_tokens SET revoked_at = $2, revoke_reason = $3, grace_child_sealed = NULL WHERE family_id = $1 AND revoked_at IS NULL',
          [familyId, at, reason],
        );
        if (f.rowCount === 0) return false;
        if (event) await audit.append(event, q);
        return true;
      });
    },

    /** Revoke every family of a session; answers the families revoked now. */
    async revokeSession(sessionId: string, reason: string): Promise<string[]> {
      const at = new Date(clock.now());
      return db.tx(async (q) => {
        const f = await q.query<{ id: string; identity_id: string }>(
          'UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3 WHERE session_id = $1 AND revoked_at IS NULL RETURNING id, identity_id',
          [sessionId, at, reason],
        );
        if (f.rowCount === 0) return [];
        const ids = f.rows.map((r) => r.id);
        await q.query(
          'UPDATE refresh_tokens SET revoked_at = $2, revoke_reason = $3, grace_child_sealed = NULL WHERE family_id = ANY($1::uuid[]) AND revoked_at IS NULL',
          [ids, at, reason],
        );
        await audit.append({ type: 'refresh.family_revoked', actor: f.rows[0].identity_id, subject: sessionId, reason, data: { families: ids } }, q);
        return ids;
      });
    },

    /** Move live families to the session that replaced `from` (step-up rotates the session id). */
    async rebind(from: string, to: string, client: NewToken | null): Promise<number> {
      return db.tx(async (q) => {
        const f = await q.query<{ id: string }>(
          'UPDATE refresh_families SET session_id = $2 WHERE session_id = $1 AND revoked_at IS NULL RETURNING id',
          [from, to],
        );
        if (f.rowCount === 0) return 0;
        const ids = f.rows.map((r) => r.id);
        await q.query('UPDATE refresh_tokens SET session_id = $2 WHERE family_id = ANY($1::uuid[])', [ids, to]);
        // The user just proved themselves from here: the newest token now stands for this network.
        if (client) {
          await q.query(
            `UPDATE refresh_tokens SET ip = $2, country = $3, device_id = COALESCE($4, device_id)
              WHERE family_id = ANY($1::uuid[]) AND rotated_at IS NULL AND revoked_at IS NULL`,
            [ids, client.ip, client.country, client.deviceId],
          );
        }
        return ids.length;
      });
    },
  };
}

export type RefreshStore = ReturnType<typeof createRefreshStore>;
