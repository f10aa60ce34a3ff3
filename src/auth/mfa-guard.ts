import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';

/**
 * Stops second-factor guessing across many flows: failures count per account (not per flow),
 * the account locks at the threshold, and a locked account's codes are not even checked.
 * A correct password does not reset this count; only a correct second factor does.
 */
export function guardSecondFactor(
  deps: { db: Db; clock: Clock; threshold: number; lockoutSeconds: number },
  check: (identityId: string, code: string) => Promise<boolean>,
): (identityId: string, code: string) => Promise<boolean> {
  const { db, clock } = deps;
  return async (identityId, code) => {
    const now = clock.now();
    // Counted before the check, atomically, so concurrent guesses over many flows cannot all
    // read "unlocked"; a lapsed lock starts afresh.
    const reserved = await db.query<{ mfa_failed_attempts: number }>(
      `UPDATE identities
          SET mfa_failed_attempts = CASE WHEN locked_at IS NOT NULL THEN 1 ELSE mfa_failed_attempts + 1 END,
              failed_attempts = CASE WHEN locked_at IS NOT NULL THEN 0 ELSE failed_attempts END,
              locked_at = NULL, locked_until = NULL
        WHERE id = $1 AND (locked_at IS NULL OR (locked_until IS NOT NULL AND locked_until <= $2))
        RETURNING mfa_failed_attempts`,
      [identityId, new Date(now)],
    );
    const count = reserved.rows[0]?.mfa_failed_attempts;
    if (count === undefined || count > deps.threshold) return false;
    if (await check(identityId, code)) {
      // Only if no lock landed meanwhile (another guess of the burst, or an administrator).
      const reset = await db.query('UPDATE identities SET mfa_failed_attempts = 0 WHERE id = $1 AND locked_at IS NULL RETURNING id', [identityId]);
      return reset.rowCount === 1;
    }
    if (count >= deps.threshold) {
      const until = deps.lockoutSeconds > 0 ? new Date(now + deps.lockoutSeconds * 1000) : null;
      await db.query('UPDATE identities SET locked_at = $2, locked_until = $3 WHERE id = $1 AND locked_at IS NULL', [identityId, new Date(now), until]);
    }
    return false;
  };
}
