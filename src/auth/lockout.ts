import { randomInt } from 'node:crypto';
import type { Queryable } from '../db/db.ts';
import { metrics } from '../metrics/metrics.ts';

/** Which consecutive-failure counter an attempt spends; both share the account's one lock. */
export type Counter = 'failed_attempts' | 'mfa_failed_attempts';
const OTHER: Record<Counter, Counter> = { failed_attempts: 'mfa_failed_attempts', mfa_failed_attempts: 'failed_attempts' };

/**
 * Stops bursts of concurrent guesses from all reading "unlocked": the attempt is counted
 * atomically before it is checked. A lapsed lock starts both counters afresh. Answers the
 * attempt's number, or undefined when the account is locked.
 *
 * The row is written whatever its state (a locked account's row is rewritten unchanged): every
 * attempt on a known account costs one row write, like an unknown identifier's decoy write.
 */
export async function reserveAttempt(db: Queryable, identityId: string, counter: Counter, now: number): Promise<number | undefined> {
  const lapsed = 'locked_at IS NOT NULL AND locked_until IS NOT NULL AND locked_until <= $2';
  const r = await db.query<{ count: number; locked: boolean }>(
    `UPDATE identities
        SET ${counter} = CASE WHEN locked_at IS NULL THEN ${counter} + 1 WHEN ${lapsed} THEN 1 ELSE ${counter} END,
            ${OTHER[counter]} = CASE WHEN ${lapsed} THEN 0 ELSE ${OTHER[counter]} END,
            locked_until = CASE WHEN ${lapsed} THEN NULL ELSE locked_until END,
            locked_at = CASE WHEN ${lapsed} THEN NULL ELSE locked_at END
      WHERE id = $1
      RETURNING ${counter} AS count, locked_at IS NOT NULL AS locked`,
    [identityId, new Date(now)],
  );
  const row = r.rows[0];
  return row && !row.locked ? row.count : undefined;
}

/** After a success: reset the count, unless a lock landed meanwhile (a burst's or an admin's). */
export async function clearAfterSuccess(db: Queryable, identityId: string, counter: Counter): Promise<boolean> {
  const r = await db.query(`UPDATE identities SET ${counter} = 0 WHERE id = $1 AND locked_at IS NULL RETURNING id`, [identityId]);
  return r.rowCount === 1;
}

/** After a failure that reached the threshold: lock (until now + seconds, or for an admin when 0). */
export async function lockAccount(db: Queryable, identityId: string, now: number, lockoutSeconds: number): Promise<void> {
  const until = lockoutSeconds > 0 ? new Date(now + lockoutSeconds * 1000) : null;
  const r = await db.query('UPDATE identities SET locked_at = $2, locked_until = $3 WHERE id = $1 AND locked_at IS NULL', [identityId, new Date(now), until]);
  if (r.rowCount === 1) metrics.lockouts.inc({ counter: 'mfa' });
}

/**
 * After any refused password attempt: lock if the count reached the threshold. The row is
 * written in every case (unchanged below the threshold or when already locked), so each refusal
 * costs the same write as an unknown identifier's decoy settle. Answers whether this call locked.
 */
export async function settleFailure(
  db: Queryable,
  identityId: string,
  counter: Counter,
  threshold: number,
  now: number,
  lockoutSeconds: number,
): Promise<boolean> {
  const until = lockoutSeconds > 0 ? new Date(now + lockoutSeconds * 1000) : null;
  const lock = `locked_at IS NULL AND ${counter} >= $4`;
  const r = await db.query<{ locked_now: boolean }>(
    `UPDATE identities
        SET locked_at = CASE WHEN ${lock} THEN $2 ELSE locked_at END,
            locked_until = CASE WHEN ${lock} THEN $3 ELSE locked_until END
      WHERE id = $1
      RETURNING locked_at = $2 AS locked_now`,
    [identityId, new Date(now), until, threshold],
  );
  if (r.rows[0]?.locked_now === true) metrics.lockouts.inc({ counter: counter === 'failed_attempts' ? 'password' : 'mfa' });
  return r.rows[0]?.locked_now === true;
}

/** Decoy slots (db/migrations/0011): an unknown identifier's attempt writes one of these instead. */
const DECOY_SLOTS = 64;

/**
 * An unknown identifier's stand-in for reserveAttempt + settleFailure: the same two single-row
 * writes, against a decoy row, so the answer takes as long as a known user's wrong password.
 */
export function decoyAttempt(db: Queryable): { reserve(): Promise<void>; settle(): Promise<void> } {
  const slot = randomInt(DECOY_SLOTS);
  return {
    async reserve() {
      await db.query('UPDATE password_attempt_decoys SET attempts = attempts + 1 WHERE slot = $1 RETURNING attempts', [slot]);
    },
    async settle() {
      await db.query('UPDATE password_attempt_decoys SET settled = settled + 1 WHERE slot = $1 RETURNING settled', [slot]);
    },
  };
}
