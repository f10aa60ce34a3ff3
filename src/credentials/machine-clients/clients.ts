import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import { randomToken } from '../../crypto/seal.ts';
import { AppError } from '../../errors.ts';

/**
 * Registered machine clients for OAuth client_credentials (RFC 6749 §4.4): a client id, a
 * secret shown once, the roles and scopes its tokens carry, enabled or not.
 *
 * Secrets are stored as HMAC-SHA256 under a key derived from the master key, not argon2id. A
 * slow hash exists to protect guessable human passwords; these secrets are 256 random bits we
 * generate, so no guessing attack needs slowing, and a stolen table is useless without the key.
 * argon2id at the project's OWASP parameters costs ≈9 ms of a core (≈110 verifies/s per core),
 * which alone would hold client_credentials below Keycloak's anchor of 120 grants/s per vCPU.
 */
export const CLIENT_ID_RE = /^[A-Za-z0-9_.-]{3,64}$/;
const SECRET_RE = /^thr_cs_[A-Za-z0-9_-]{43}$/;
const LABEL = /^[A-Za-z0-9_.:-]{1,128}$/;

export const CreateMachineClientSchema = z
  .object({
    clientId: z.string().regex(CLIENT_ID_RE).optional().describe('Chosen id; generated (mc_…) when omitted'),
    roles: z.array(z.string().regex(LABEL)).max(50).default([]),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/)).max(50).default([]),
  })
  .strict();

export interface MachineClient {
  clientId: string;
  roles: string[];
  scopes: string[];
  enabled: boolean;
  createdAt: string;
  lastUsedAt: string | null;
}

interface Row {
  client_id: string;
  secret_hash: string;
  roles: string[];
  scopes: string[];
  enabled: boolean;
  created_at: Date;
  last_used_at: Date | null;
}

const view = (r: Row): MachineClient => ({
  clientId: r.client_id,
  roles: r.roles,
  scopes: r.scopes,
  enabled: r.enabled,
  createdAt: r.created_at.toISOString(),
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
});

export function createMachineClients(deps: { db: Db; clock: Clock; pepper: Buffer }) {
  const { db, clock } = deps;
  const digest = (secret: string) => createHmac('sha256', deps.pepper).update(secret).digest();
  const DUMMY = digest('thr_cs_' + 'x'.repeat(43));
  const lastUseWritten = new Map<string, number>();

  /** Read on every grant (one primary-key lookup): a removed or disabled client stops at once in every process. */
  async function load(clientId: string): Promise<Row | null> {
    const { rows: found } = await db.query<Row>('SELECT client_id, secret_hash, roles, scopes, enabled, created_at, last_used_at FROM machine_clients WHERE client_id = $1', [clientId]);
    return found[0] ?? null;
  }

  return {
    async create(input: z.infer<typeof CreateMachineClientSchema>): Promise<MachineClient & { clientSecret: string }> {
      const clientId = input.clientId ?? `mc_${randomToken(12)}`;
      if (input.roles.length) {
        const known = await db.query<{ name: string }>('SELECT name FROM roles WHERE name = ANY($1::text[])', [input.roles]);
        const missing = input.roles.filter((r) => !known.rows.some((k) => k.name === r));
        if (missing.length) throw new AppError('VALIDATION_FAILED', { detail: `roles: unknown role ${missing.join(', ')}` });
      }
      const secret = `thr_cs_${randomToken(32)}`;
      const { rows: made } = await db.query<Row>(
        `INSERT INTO machine_clients (client_id, secret_hash, roles, scopes, enabled, created_at)
         VALUES ($1, $2, $3::jsonb, $4::jsonb, true, $5) ON CONFLICT (client_id) DO NOTHING
         RETURNING client_id, secret_hash, roles, scopes, enabled, created_at, last_used_at`,
        [clientId, digest(secret).toString('base64url'), JSON.stringify(input.roles), JSON.stringify(input.scopes), new Date(clock.now())],
      );
      if (!made[0]) throw new AppError('CONFLICT', { detail: 'A client with this id exists.' });
      return { ...view(made[0]), clientSecret: secret };
    },
    async list(): Promise<MachineClient[]> {
      const { rows: all } = await db.query<Row>('SELECT client_id, secret_hash, roles, scopes, enabled, created_at, last_used_at FROM machine_clients ORDER BY client_id');
      return all.map(view);
    },
    async remove(clientId: string): Promise<boolean> {
      const r = await db.query('DELETE FROM machine_clients WHERE client_id = $1', [clientId]);
      return r.rowCount === 1;
    },
    /**
     * Stops unknown clients, wrong secrets and disabled clients; the same work (one HMAC and a
     * constant-time compare) whether or not the client exists.
     */
    async authenticate(clientId: string, secret: string): Promise<{ ok: true; client: MachineClient } | { ok: false; reason: 'INVALID_CLIENT' | 'DISABLED' }> {
      const row = CLIENT_ID_RE.test(clientId) ? await load(clientId) : null;
      const presented = digest(SECRET_RE.test(secret) ? secret : `${secret}\0`);
      const stored = row ? Buffer.from(row.secret_hash, 'base64url') : DUMMY;
      const match = stored.length === presented.length && timingSafeEqual(stored, presented) && !!row;
      if (!match || !row) return { ok: false, reason: 'INVALID_CLIENT' };
      if (!row.enabled) return { ok: false, reason: 'DISABLED' };
      // Usage without a write per grant: at most one a minute per client and process.
      const now = clock.now();
      if (now - (lastUseWritten.get(clientId) ?? 0) > 60_000) {
        lastUseWritten.set(clientId, now);
        await db.query('UPDATE machine_clients SET last_used_at = $2 WHERE client_id = $1', [clientId, new Date(now)]);
      }
      return { ok: true, client: view(row) };
    },
  };
}
export type MachineClients = ReturnType<typeof createMachineClients>;
