import { randomInt, randomUUID, createHmac } from 'node:crypto';
import type { Clock } from '../../../clock.ts';
import type { Db, Queryable } from '../../../db/db.ts';

/** 10 codes of 10 characters from an unambiguous alphabet (~50 bits each), shown once. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
export const RECOVERY_CODE_COUNT = 10;

export interface RecoveryService {
  /** Replaces any existing codes; returns the plain codes to show once. */
  generate(identityId: string, q?: Queryable): Promise<string[]>;
  /** Stops reuse: each code is consumed atomically and works once. */
  consume(identityId: string, code: string): Promise<boolean>;
  remaining(identityId: string): Promise<number>;
}

const normalize = (c: string) => c.toLowerCase().replace(/[\s-]/g, '');

export function createRecoveryService(deps: { db: Db; clock: Clock; pepper: Buffer }): RecoveryService {
  const { db, clock } = deps;
  // High-entropy codes need no slow hash; an HMAC keyed by the master key stops offline checks.
  const digest = (identityId: string, code: string) =>
    createHmac('sha256', deps.pepper).update(`${identityId}:${normalize(code)}`).digest('hex');
  return {
    async generate(identityId, q = db) {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
        let s = '';
        for (let i = 0; i < 10; i++) s += ALPHABET[randomInt(ALPHABET.length)];
        return `${s.slice(0, 5)}-${s.slice(5)}`;
      });
      await q.query('DELETE FROM recovery_codes WHERE identity_id = $1', [identityId]);
      const now = new Date(clock.now());
      for (const c of codes)
        await q.query('INSERT INTO recovery_codes (id, identity_id, code_hash, created_at) VALUES ($1, $2, $3, $4)', [
          randomUUID(),
          identityId,
          digest(identityId, c),
          now,
        ]);
      return codes;
    },
    async consume(identityId, code) {
      if (typeof code !== 'string' || code.length > 64) return false;
      const r = await db.query(
        'UPDATE recovery_codes SET used_at = $3 WHERE identity_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING id',
        [identityId, digest(identityId, code), new Date(clock.now())],
      );
      return r.rowCount === 1;
    },
    async remaining(identityId) {
      const r = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM recovery_codes WHERE identity_id = $1 AND used_at IS NULL',
        [identityId],
      );
      return r.rows[0]?.n ?? 0;
    },
  };
}
