import { createHash } from 'node:crypto';
import type { Clock } from '../../../clock.ts';
import type { Db } from '../../../db/db.ts';
import { randomToken } from '../../../crypto/seal.ts';
import type { ExternalAssertion } from './types.ts';

/**
 * The SP's memory: AuthnRequests issued (so only solicited responses are accepted, each once)
 * and the one-time handles the ACS hands to the same-site completion GET.
 */
export interface SamlStore {
  recordRequest(r: { id: string; providerId: string; flowId: string; ttlSeconds: number }): Promise<void>;
  /**
   * Stops replay: marks the request answered, exactly once across processes. Returns the flow it
   * serves, or null when the id is unknown, for another IdP, expired or already used.
   */
  consumeRequest(id: string, providerId: string): Promise<ConsumeResult>;
  /** Keeps an accepted assertion under a fresh one-time handle (returned; only its digest is stored). */
  putResult(r: { requestId: string; providerId: string; flowId: string; assertion: ExternalAssertion; ttlSeconds: number }): Promise<string>;
  /** Takes (deletes) the result for a handle; null when unknown, used or expired. */
  takeResult(handle: string, providerId: string): Promise<{ flowId: string; assertion: ExternalAssertion } | null>;
  /** Deletes expired rows; returns how many. */
  purgeExpired(): Promise<number>;
}

export type ConsumeResult = { ok: true; flowId: string } | { ok: false; why: 'UNKNOWN' | 'REPLAYED' | 'EXPIRED' };

const digest = (handle: string) => createHash('sha256').update(handle).digest('hex');

export function createSamlStore(db: Db, clock: Clock): SamlStore {
  const now = () => new Date(clock.now());
  return {
    async recordRequest(r) {
      const t = clock.now();
      await db.query(
        `INSERT INTO saml_requests (id, provider_id, flow_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
        [r.id, r.providerId, r.flowId, new Date(t), new Date(t + r.ttlSeconds * 1000)],
      );
    },
    async consumeRequest(id, providerId) {
      const { rows } = await db.query<{ flow_id: string }>(
        `UPDATE saml_requests SET consumed_at = $3
          WHERE id = $1 AND provider_id = $2 AND consumed_at IS NULL AND expires_at > $3
          RETURNING flow_id`,
        [id, providerId, now()],
      );
      if (rows[0]) return { ok: true, flowId: rows[0].flow_id };
      // Only to name the refusal in the audit trail; the decision above was atomic.
      const seen = await db.query<{ consumed_at: Date | null }>(
        `SELECT consumed_at FROM saml_requests WHERE id = $1 AND provider_id = $2`,
        [id, providerId],
      );
      if (!seen.rows[0]) return { ok: false, why: 'UNKNOWN' };
      return { ok: false, why: seen.rows[0].consumed_at ? 'REPLAYED' : 'EXPIRED' };
    },
    async putResult(r) {
      const handle = randomToken(32);
      const t = clock.now();
      await db.query(
        `INSERT INTO saml_acs_results (handle_hash, request_id, provider_id, flow_id, assertion, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)`,
        [digest(handle), r.requestId, r.providerId, r.flowId, JSON.stringify(r.assertion), new Date(t), new Date(t + r.ttlSeconds * 1000)],
      );
      return handle;
    },
    async takeResult(handle, providerId) {
      const { rows } = await db.query<{ flow_id: string; assertion: ExternalAssertion | string; expires_at: Date }>(
        `DELETE FROM saml_acs_results WHERE handle_hash = $1 AND provider_id = $2 RETURNING flow_id, assertion, expires_at`,
        [digest(handle), providerId],
      );
      const row = rows[0];
      if (!row || new Date(row.expires_at).getTime() <= clock.now()) return null;
      const assertion = typeof row.assertion === 'string' ? (JSON.parse(row.assertion) as ExternalAssertion) : row.assertion;
      return { flowId: row.flow_id, assertion };
    },
    async purgeExpired() {
      const a = await db.query(`DELETE FROM saml_acs_results WHERE expires_at <= $1`, [now()]);
      const b = await db.query(`DELETE FROM saml_requests WHERE expires_at <= $1`, [now()]);
      return a.rowCount + b.rowCount;
    },
  };
}
