import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../../db/db.ts';

/** An API key as stored (never its secret). Times are epoch ms. */
export interface ApiKeyRecord {
  id: string;
  identityId: string;
  createdBy: string;
  name: string;
  displayPrefix: string;
  permissions: string[];
  allowedCidrs: string[];
  rateLimitPerMinute: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
  rotatedFrom: string | null;
  replacedBy: string | null;
  createdAt: number;
}

/** What verification needs besides the key: is the identity it stands for still allowed in? */
export interface ApiKeyLookup extends ApiKeyRecord {
  ownerActive: boolean;
  /** The creator is active too: a disabled or locked creator's keys (also those made for a service) stop. */
  creatorActive: boolean;
  ownerEmail: string;
}

export interface NewApiKey {
  identityId: string;
  createdBy: string;
  name: string;
  displayPrefix: string;
  secretHash: string;
  permissions: string[];
  allowedCidrs: string[];
  rateLimitPerMinute: number | null;
  expiresAt: number | null;
  rotatedFrom?: string | null;
}

export interface UsageRow {
  keyId: string;
  count: number;
  lastUsedAt: number;
  lastIp: string;
  days: Record<string, number>;
}

const COLS = `k.id, k.identity_id, k.created_by, k.name, k.display_prefix, k.permissions, k.allowed_cidrs, k.rate_limit_per_minute,
  k.expires_at, k.revoked_at, k.rotated_from, k.replaced_by, k.created_at`;

interface Row {
  id: string;
  identity_id: string;
  created_by: string;
  name: string;
  display_prefix: string;
  permissions: string[];
  allowed_cidrs: string[];
  rate_limit_per_minute: number | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  rotated_from: string | null;
  replaced_by: string | null;
  created_at: Date;
}

const ms = (d: Date | null) => (d ? d.getTime() : null);
const toRecord = (r: Row): ApiKeyRecord => ({
  id: r.id,
  identityId: r.identity_id,
  createdBy: r.created_by,
  name: r.name,
  displayPrefix: r.display_prefix,
  permissions: r.permissions,
  allowedCidrs: r.allowed_cidrs,
  rateLimitPerMinute: r.rate_limit_per_minute,
  expiresAt: ms(r.expires_at),
  revokedAt: ms(r.revoked_at),
  rotatedFrom: r.rotated_from,
  replacedBy: r.replaced_by,
  createdAt: r.created_at.getTime(),
});

async function insert(q: Queryable, k: NewApiKey, now: number): Promise<ApiKeyRecord> {
  const { rows } = await q.query<Row>(
    `INSERT INTO api_keys AS k (id, identity_id, created_by, name, display_prefix, secret_hash, permissions, allowed_cidrs, rate_limit_per_minute, expires_at, rotated_from, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${COLS}`,
    [randomUUID(), k.identityId, k.createdBy, k.name, k.displayPrefix, k.secretHash, k.permissions, k.allowedCidrs, k.rateLimitPerMinute,
      k.expiresAt === null ? null : new Date(k.expiresAt), k.rotatedFrom ?? null, new Date(now)],
  );
  return toRecord(rows[0]);
}

export function createApiKeyStore(db: Db) {
  return {
    create: (k: NewApiKey, now: number) => insert(db, k, now),

    async byHash(hash: string): Promise<ApiKeyLookup | null> {
      const { rows } = await db.query<Row & { owner_active: boolean; creator_active: boolean; owner_email: string }>(
        `SELECT ${COLS}, i.email AS owner_email,
                (i.status = 'active' AND (i.locked_at IS NULL OR (i.locked_until IS NOT NULL AND i.locked_until <= now()))) AS owner_active,
                (c.status = 'active' AND (c.locked_at IS NULL OR (c.locked_until IS NOT NULL AND c.locked_until <= now()))) AS creator_active
           FROM api_keys k JOIN identities i ON i.id = k.identity_id JOIN identities c ON c.id = k.created_by WHERE k.secret_hash = $1`,
        [hash],
      );
      const r = rows[0];
      return r ? { ...toRecord(r), ownerActive: r.owner_active, creatorActive: r.creator_active, ownerEmail: r.owner_email } : null;
    },

    async byId(id: string): Promise<ApiKeyRecord | null> {
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM api_keys k WHERE k.id = $1`, [id]);
      return rows[0] ? toRecord(rows[0]) : null;
    },

    /** Keys that stand for `identityId` or that it created, newest first. */
    async listFor(identityId: string): Promise<ApiKeyRecord[]> {
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM api_keys k WHERE k.identity_id = $1 OR k.created_by = $1 ORDER BY k.created_at DESC, k.id LIMIT 500`, [identityId]);
      return rows.map(toRecord);
    },

    async usage(id: string, sinceDay: string) {
      const [k, d] = await Promise.all([
        db.query<{ use_count: string; last_used_at: Date | null; last_ip: string | null }>('SELECT use_count, last_used_at, last_ip FROM api_keys WHERE id = $1', [id]),
        db.query<{ day: string; count: string }>(`SELECT to_char(day, 'YYYY-MM-DD') AS day, count FROM api_key_usage_daily WHERE key_id = $1 AND day >= $2::date ORDER BY day`, [id, sinceDay]),
      ]);
      const r = k.rows[0];
      return {
        count: Number(r?.use_count ?? 0),
        lastUsedAt: r?.last_used_at ? r.last_used_at.toISOString() : null,
        lastIp: r?.last_ip ?? null,
        daily: d.rows.map((x) => ({ day: x.day, count: Number(x.count) })),
      };
    },

    /**
     * Rotation with overlap, once: the old key is marked replaced (only if it is live and not yet
     * replaced) and shortened to the overlap, and the new key inserted, in one transaction. Of
     * concurrent rotations of one key exactly one gets a row; the others get null.
     */
    async rotate(oldId: string, next: Omit<NewApiKey, 'rotatedFrom'>, overlapUntil: number, now: number): Promise<{ old: ApiKeyRecord; fresh: ApiKeyRecord } | null> {
      return db.tx(async (q) => {
        const fresh = await insert(q, { ...next, rotatedFrom: oldId }, now);
        const { rows } = await q.query<Row>(
          `UPDATE api_keys k SET replaced_by = $2, expires_at = LEAST(coalesce(k.expires_at, $3), $3)
            WHERE k.id = $1 AND k.replaced_by IS NULL AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $4)
            RETURNING ${COLS}`,
          [oldId, fresh.id, new Date(overlapUntil), new Date(now)],
        );
        if (!rows[0]) throw new LostRace();
        return { old: toRecord(rows[0]), fresh };
      }).catch((e) => {
        if (e instanceof LostRace) return null;
        throw e;
      });
    },

    /** Revocation, once: of concurrent revocations exactly one gets the row. */
    async revoke(id: string, reason: string, now: number): Promise<ApiKeyRecord | null> {
      const { rows } = await db.query<Row>(
        `UPDATE api_keys k SET revoked_at = $2, revoked_reason = $3 WHERE k.id = $1 AND k.revoked_at IS NULL RETURNING ${COLS}`,
        [id, new Date(now), reason],
      );
      return rows[0] ? toRecord(rows[0]) : null;
    },

    /** Batched usage: one statement for the counters, one for the per-day counts. */
    async addUsage(batch: UsageRow[]): Promise<void> {
      if (!batch.length) return;
      await db.tx(async (q) => {
        await q.query(
          `UPDATE api_keys k SET use_count = k.use_count + u.n,
                  last_used_at = GREATEST(coalesce(k.last_used_at, u.at), u.at),
                  last_ip = CASE WHEN k.last_used_at IS NULL OR u.at >= k.last_used_at THEN u.ip ELSE k.last_ip END
             FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[]) AS u(id, n, at, ip)
            WHERE k.id = u.id`,
          [batch.map((b) => b.keyId), batch.map((b) => b.count), batch.map((b) => new Date(b.lastUsedAt)), batch.map((b) => b.lastIp)],
        );
        const days = batch.flatMap((b) => Object.entries(b.days).map(([day, n]) => ({ id: b.keyId, day, n })));
        await q.query(
          `INSERT INTO api_key_usage_daily (key_id, day, count)
           SELECT u.id, u.day, u.n FROM unnest($1::uuid[], $2::date[], $3::bigint[]) AS u(id, day, n)
             WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = u.id)
           ON CONFLICT (key_id, day) DO UPDATE SET count = api_key_usage_daily.count + excluded.count`,
          [days.map((d) => d.id), days.map((d) => d.day), days.map((d) => d.n)],
        );
      });
    },
  };
}

class LostRace extends Error {}

export type ApiKeyStore = ReturnType<typeof createApiKeyStore>;
