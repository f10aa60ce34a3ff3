import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { AppError } from '../errors.ts';
import { METHOD_STRENGTH, type MfaMethod } from '../../machines/types.ts';

/** One view over every kind of second factor a user can hold. */
export interface FactorView {
  id: string;
  type: MfaMethod;
  label: string;
  createdAt: string | null;
  lastUsedAt: string | null;
  /** NIST 800-63B: SMS is a restricted authenticator. */
  restricted?: boolean;
  /** WebAuthn: device-bound (hwk) or synced passkey (swk). */
  deviceType?: string;
  passkey?: boolean;
  /** Recovery codes: how many are left. */
  remaining?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const iso = (d: Date | null) => (d ? d.toISOString() : null);

export interface FactorRegistry {
  list(identityId: string): Promise<FactorView[]>;
  /** Usable methods, strongest first. */
  methodsOf(identityId: string): Promise<MfaMethod[]>;
  /** Confirmed destination for a code channel (the newest bound one). */
  destination(identityId: string, channel: 'sms' | 'email'): Promise<string | null>;
  rename(identityId: string, id: string, label: string): Promise<FactorView>;
  /** Removes one factor; with the last second factor gone, recovery codes go too. */
  remove(identityId: string, id: string): Promise<FactorView>;
}

const TABLES = [
  { table: 'totp_factors', type: 'totp', confirmed: 'confirmed_at IS NOT NULL' },
  { table: 'webauthn_credentials', type: 'webauthn', confirmed: 'TRUE' },
  { table: 'contact_factors', type: null, confirmed: 'confirmed_at IS NOT NULL' },
] as const;

export function createFactorRegistry(deps: { db: Db; clock: Clock }): FactorRegistry {
  const { db } = deps;

  async function list(identityId: string): Promise<FactorView[]> {
    const out: FactorView[] = [];
    const totp = await db.query<{ id: string; label: string; created_at: Date; last_used_at: Date | null }>(
      'SELECT id, label, created_at, last_used_at FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at',
      [identityId],
    );
    for (const r of totp.rows) out.push({ id: r.id, type: 'totp', label: r.label, createdAt: iso(r.created_at), lastUsedAt: iso(r.last_used_at) });
    const wa = await db.query<{ id: string; label: string; created_at: Date; last_used_at: Date | null; device_type: string; discoverable: boolean }>(
      'SELECT id, label, created_at, last_used_at, device_type, discoverable FROM webauthn_credentials WHERE identity_id = $1 ORDER BY created_at',
      [identityId],
    );
    for (const r of wa.rows)
      out.push({ id: r.id, type: 'webauthn', label: r.label, createdAt: iso(r.created_at), lastUsedAt: iso(r.last_used_at), deviceType: r.device_type, passkey: r.discoverable });
    const contact = await db.query<{ id: string; channel: 'sms' | 'email'; label: string; created_at: Date; last_used_at: Date | null }>(
      'SELECT id, channel, label, created_at, last_used_at FROM contact_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at',
      [identityId],
    );
    for (const r of contact.rows)
      out.push({ id: r.id, type: r.channel, label: r.label, createdAt: iso(r.created_at), lastUsedAt: iso(r.last_used_at), ...(r.channel === 'sms' ? { restricted: true } : {}) });
    const rc = await db.query<{ n: number; created_at: Date | null }>(
      'SELECT count(*) FILTER (WHERE used_at IS NULL)::int AS n, min(created_at) AS created_at FROM recovery_codes WHERE identity_id = $1',
      [identityId],
    );
    if (rc.rows[0].n > 0)
      out.push({ id: 'recovery_codes', type: 'recovery_code', label: 'Recovery codes', createdAt: iso(rc.rows[0].created_at), lastUsedAt: null, remaining: rc.rows[0].n });
    return out.sort((a, b) => METHOD_STRENGTH.indexOf(a.type) - METHOD_STRENGTH.indexOf(b.type));
  }

  async function find(identityId: string, id: string): Promise<FactorView> {
    const f = (await list(identityId)).find((x) => x.id === id);
    if (!f || !UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
    return f;
  }

  const tableOf = (t: MfaMethod) => (t === 'totp' ? 'totp_factors' : t === 'webauthn' ? 'webauthn_credentials' : 'contact_factors');

  return {
    list,
    /** One statement (every login with a password asks it): which kinds of factor the identity holds. */
    async methodsOf(identityId) {
      const { rows } = await db.query<Record<MfaMethod, boolean>>(
        `SELECT EXISTS (SELECT 1 FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL) AS totp,
                EXISTS (SELECT 1 FROM webauthn_credentials WHERE identity_id = $1) AS webauthn,
                EXISTS (SELECT 1 FROM contact_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL AND channel = 'sms') AS sms,
                EXISTS (SELECT 1 FROM contact_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL AND channel = 'email') AS email,
                EXISTS (SELECT 1 FROM recovery_codes WHERE identity_id = $1 AND used_at IS NULL) AS recovery_code`,
        [identityId],
      );
      const held = rows[0];
      return METHOD_STRENGTH.filter((m) => held?.[m] === true);
    },
    async destination(identityId, channel) {
      const { rows } = await db.query<{ destination: string }>(
        'SELECT destination FROM contact_factors WHERE identity_id = $1 AND channel = $2 AND confirmed_at IS NOT NULL ORDER BY confirmed_at DESC LIMIT 1',
        [identityId, channel],
      );
      return rows[0]?.destination ?? null;
    },
    async rename(identityId, id, label) {
      const f = await find(identityId, id);
      await db.query(`UPDATE ${tableOf(f.type)} SET label = $3 WHERE id = $1 AND identity_id = $2`, [id, identityId, label]);
      return { ...f, label };
    },
    async remove(identityId, id) {
      const f = await find(identityId, id);
      await db.tx(async (q) => {
        await q.query(`DELETE FROM ${tableOf(f.type)} WHERE id = $1 AND identity_id = $2`, [id, identityId]);
        let left = 0;
        for (const t of TABLES)
          left += (await q.query(`SELECT 1 FROM ${t.table} WHERE identity_id = $1 AND ${t.confirmed} LIMIT 1`, [identityId])).rowCount;
        if (left === 0) await q.query('DELETE FROM recovery_codes WHERE identity_id = $1', [identityId]);
      });
      return f;
    },
  };
}
