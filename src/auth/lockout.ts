import type { Queryable } from '../db/db.ts';

/** Which consecutive-failure counter an attempt spends; both share the account's one lock. */
export type Counter = 'failed_attempts' | 'mfa_failed_attempts';
const OTHER: Record<Counter, Counter> = { failed_attempts: 'mfa_failed_attempts', mfa_failed_attempts: 'failed_attempts' };

/**
 * Stops bursts of concurrent guesses from all reading "unlocked": the attempt is counted
 * atomically before it is checked. A lapsed lock starts both counters afresh. Answers the
 * attempt's number, or undefined when the account is locked.
 */
export async function reserveAttempt(db: Queryable, identityId: string, counter: Counter, now: number): Promise<number | undefined> {
  const r = await db.query<Record<Counter, number>>(
    `UPDATE identities
        SET ${counter} = CASE WHEN locked_at IS NOT NULL THEN 1 ELSE ${counter} + 1 END,
            ${OTHER[counter]} = CASE WHEN locked_at IS NOT NULL THEN 0 ELSE ${OTHER[counter]} END,
            locked_at = NULL, locked_until = NULL
      WHERE id = $1 AND (locked_at IS NULL OR (locked_until IS NOT NULL AND locked_until <= $2))
      RETURNING ${counter}`,
    [identityId, new Date(now)],
  );
  return r.rows[0]?.[counter];
}

/** After a success: reset the count, unless a lock landed meanwhile (a burst's or an admin's). */
export async function clearAfterSuccess(db: Queryable, identityId: string, counter: Counter): Promise<boolean> {
  const r = await db.query(`UPDATE identities SET ${counter} = 0 WHERE id = $1 AND locked_at IS NULL RETURNING id`, [identityId]);
  return r.rowCount === 1;
}

/** After a failure that reached the threshold: lock (until now + seconds, or for an admin when 0). */
export async function lockAccount(db: Queryable, identityId: string, now: number, lockoutSeconds: number): Promise<void> {
  const until = lockoutSeconds > 0 ? new Date(now + lockoutSeconds * 1000) : null;
  await db.query('UPDATE identities SET locked_at = $2, locked_until = $3 WHERE id = $1 AND locked_at IS NULL', [identityId, new Date(now), until]);
}

/**
 * After any refused password attempt: lock if the count reached the threshold. Run on every
 * refusal — below the threshold, for a locked account and for an unknown user (against
 * NO_IDENTITY) it changes nothing — so every wrong-password answer costs the same statements.
 * Answers whether this call locked the account.
 */
export async function lockAtThreshold(
  db: Queryable,
  identityId: string,
  counter: Counter,
  threshold: number,
  now: number,
  lockoutSeconds: number,
): Promise<boolean> {
  const until = lockoutSeconds > 0 ? new Date(now + lockoutSeconds * 1000) : null;
  const r = await db.query(
    `UPDATE identities SET locked_at = $2, locked_until = $3 WHERE id = $1 AND locked_at IS NULL AND ${counter} >= $4 RETURNING id`,
    [identityId, new Date(now), until, threshold],
  );
  return r.rowCount === 1;
}

/** An identity id no row has (random UUIDs are never nil): the target of an unknown user's statements. */
export const NO_IDENTITY = '00000000-0000-0000-0000-000000000000';
