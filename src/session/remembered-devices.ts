import { createHmac, randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import type { Audit } from '../audit/audit.ts';
import { randomToken } from '../crypto/seal.ts';
import { userAgentFamily } from '../risk/user-agent.ts';

/**
 * Remembered devices (issue 12 item 5). After a passed step-up the user may remember the device:
 * the device gets a random token in an HttpOnly cookie, stored as an HMAC keyed by a key derived
 * from the master key and bound to the device id (a token copied to another device matches
 * nothing). Every use rotates it; a rotated token presented again means a copy exists, and the
 * remembered device is forgotten. A remembered device only lowers the risk score: it never
 * creates a session, never adds an `amr` value and never lifts a deny.
 */
export interface RememberedDevice {
  id: string;
  name: string;
  country: string | null;
  firstSeenAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

export type ForgetReason = 'USER' | 'PASSWORD_CHANGED' | 'USER_REPORT' | 'TOKEN_REUSE' | 'REPLACED' | 'RECOVERY';

/** What presenting a remember cookie gave: a live remembered device and its next token, or why not. */
export type UseResult =
  | { ok: true; rememberedId: string; identityId: string; token: string; expiresAt: number }
  | { ok: false; reason: 'NONE' | 'UNKNOWN' | 'EXPIRED' | 'REUSED' };

const TOKEN_RE = /^[A-Za-z0-9_-]{40,60}$/;

/**
 * The remember cookie's name and scope: HttpOnly, this site only, sent to the login routes alone.
 * Under TLS it is `__Secure-` prefixed, not `__Host-`: a `__Host-` cookie must have `Path=/`
 * (browsers drop it otherwise, and Hono refuses to write it), and this one is scoped to a path.
 */
export const REMEMBER_COOKIE_PATH = '/auth/login';
export function rememberCookieName(secure: boolean) {
  return secure ? '__Secure-threshold_remember' : 'threshold_remember';
}

/** "Chrome on Windows"-like name from the User-Agent; never the header itself. */
export function deviceName(userAgent: string | null | undefined): string {
  const family = userAgentFamily(userAgent);
  return family ? family.replace('/', ' on ') : 'Unknown device';
}

export function createRememberedDevices(deps: { db: Db; clock: Clock; audit: Audit; key: Buffer }) {
  const { db, clock } = deps;
  const mac = (label: string, v: string) => createHmac('sha256', deps.key).update(`${label}:${v}`).digest('base64url');
  /** Stops a stolen token from working on another device: the stored digest covers the device id. */
  const tokenHash = (token: string, deviceId: string) => mac('token', `${deviceId}:${token}`);
  const deviceDigest = (deviceId: string) => mac('device', deviceId);

  async function issueToken(q: Queryable, rememberedId: string, deviceId: string, now: Date): Promise<string> {
    const token = randomToken(32);
    await q.query('INSERT INTO remembered_device_tokens (token_hash, remembered_id, created_at) VALUES ($1, $2, $3)', [tokenHash(token, deviceId), rememberedId, now]);
    return token;
  }

  async function forgetWhere(where: string, args: unknown[], reason: ForgetReason, actor: string | null): Promise<string[]> {
    const now = new Date(clock.now());
    const { rows } = await db.query<{ id: string; identity_id: string }>(
      `UPDATE remembered_devices SET revoked_at = $${args.length + 1}, revoked_reason = $${args.length + 2}
        WHERE ${where} AND revoked_at IS NULL RETURNING id, identity_id`,
      [...args, now, reason],
    );
    await deps.audit.appendMany(rows.map((r) => ({ type: 'remembered_device.revoked' as const, actor: actor ?? undefined, subject: r.identity_id, reason, data: { device: r.id } })));
    return rows.map((r) => r.id);
  }

  return {
    /**
     * Remember this device for `days` after a passed step-up; a device already remembered for
     * this identity is replaced (one live entry per identity and device). Answers the token.
     */
    async create(o: { identityId: string; deviceId: string; userAgent: string | null; country: string | null; days: number }) {
      const now = new Date(clock.now());
      const expiresAt = clock.now() + o.days * 86_400_000;
      const id = randomUUID();
      const digest = deviceDigest(o.deviceId);
      const token = await db.tx(async (q) => {
        await q.query(
          `UPDATE remembered_devices SET revoked_at = $3, revoked_reason = 'REPLACED'
            WHERE identity_id = $1 AND device_digest = $2 AND revoked_at IS NULL`,
          [o.identityId, digest, now],
        );
        await q.query(
          `INSERT INTO remembered_devices (id, identity_id, device_digest, name, country, created_at, last_seen_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`,
          [id, o.identityId, digest, deviceName(o.userAgent), o.country, now, new Date(expiresAt)],
        );
        return issueToken(q, id, o.deviceId, now);
      });
      await deps.audit.append({ type: 'remembered_device.created', actor: o.identityId, subject: o.identityId, reason: `DAYS_${o.days}`, data: { device: id } });
      return { id, token, expiresAt };
    },

    /**
     * Presents a remember token from `deviceId`: consumed atomically and replaced by a new one.
     * A token already rotated (a copy, or a replay) forgets its device: stops a stolen cookie
     * from being used beside the owner's (whoever uses it second loses the remembered device).
     */
    async use(token: string | null | undefined, deviceId: string | null, o: { country?: string | null } = {}): Promise<UseResult> {
      if (!token || !deviceId || !TOKEN_RE.test(token)) return { ok: false, reason: 'NONE' };
      const now = new Date(clock.now());
      const hash = tokenHash(token, deviceId);
      const { rows } = await db.query<{ remembered_id: string; identity_id: string; expires_at: Date; live: boolean }>(
        `WITH used AS (
           UPDATE remembered_device_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL RETURNING remembered_id)
         SELECT d.id AS remembered_id, d.identity_id, d.expires_at,
                (d.revoked_at IS NULL AND d.expires_at > $2 AND d.device_digest = $3) AS live
           FROM used JOIN remembered_devices d ON d.id = used.remembered_id`,
        [hash, now, deviceDigest(deviceId)],
      );
      const r = rows[0];
      if (!r) {
        const old = await db.query<{ remembered_id: string }>('SELECT remembered_id FROM remembered_device_tokens WHERE token_hash = $1', [hash]);
        if (!old.rows[0]) return { ok: false, reason: 'UNKNOWN' };
        await forgetWhere('id = $1', [old.rows[0].remembered_id], 'TOKEN_REUSE', null);
        return { ok: false, reason: 'REUSED' };
      }
      if (!r.live) return { ok: false, reason: 'EXPIRED' };
      const next = await db.tx(async (q) => {
        await q.query('UPDATE remembered_devices SET last_seen_at = $2, country = coalesce($3, country) WHERE id = $1', [r.remembered_id, now, o.country ?? null]);
        return issueToken(q, r.remembered_id, deviceId, now);
      });
      return { ok: true, rememberedId: r.remembered_id, identityId: r.identity_id, token: next, expiresAt: new Date(r.expires_at).getTime() };
    },

    /** Whether `rememberedId` is live for this identity on this device (the risk scorer's question). */
    async isLive(rememberedId: string | null | undefined, identityId: string | null, deviceId: string | null): Promise<boolean> {
      if (!rememberedId || !identityId || !deviceId) return false;
      const { rows } = await db.query<{ ok: boolean }>(
        `SELECT true AS ok FROM remembered_devices
          WHERE id = $1 AND identity_id = $2 AND device_digest = $3 AND revoked_at IS NULL AND expires_at > $4`,
        [rememberedId, identityId, deviceDigest(deviceId), new Date(clock.now())],
      );
      return rows.length === 1;
    },

    /** The user's live remembered devices, newest use first. */
    async list(identityId: string): Promise<RememberedDevice[]> {
      const { rows } = await db.query<{ id: string; name: string; country: string | null; created_at: Date; last_seen_at: Date; expires_at: Date }>(
        `SELECT id, name, country, created_at, last_seen_at, expires_at FROM remembered_devices
          WHERE identity_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY last_seen_at DESC, id`,
        [identityId, new Date(clock.now())],
      );
      const iso = (d: Date) => new Date(d).toISOString();
      return rows.map((r) => ({ id: r.id, name: r.name, country: r.country, firstSeenAt: iso(r.created_at), lastSeenAt: iso(r.last_seen_at), expiresAt: iso(r.expires_at) }));
    },

    /** The user forgets one of their devices; false when it is not theirs or not live. */
    async forget(identityId: string, id: string): Promise<boolean> {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return false;
      return (await forgetWhere('id = $1 AND identity_id = $2', [id, identityId], 'USER', identityId)).length === 1;
    },

    /** Every remembered device of the identity (password changed, "this wasn't me", recovery). */
    forgetAll: (identityId: string, reason: ForgetReason, actor: string | null = null) => forgetWhere('identity_id = $1', [identityId], reason, actor),
  };
}

export type RememberedDevices = ReturnType<typeof createRememberedDevices>;
