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
    const { rows } = await db.query<{ locked_at: Date | null; locked_until: Date | null }>(
      'SELECT locked_at, locked_until FROM identities WHERE id = $1',
      [identityId],
    );
    const r = rows[0];
    if (!r) return false;
    if (r.locked_at && (r.locked_until === null || r.locked_until.getTime() > now)) return false;
    if (await check(identityId, code)) {
      await db.query('UPDATE identities SET mfa_failed_attempts = 0 WHERE id = $1', [identityId]);
      return true;
    }
    const until = deps.lockoutSeconds > 0 ? new Date(now + deps.lockoutSeconds * 1000) : null;
    await db.query(
      `UPDATE identities SET mfa_failed_attempts = mfa_failed_attempts + 1,
              locked_at = CASE WHEN mfa_failed_attempts + 1 >= $2 THEN $3::timestamptz ELSE locked_at END,
              locked_until = CASE WHEN mfa_failed_attempts + 1 >= $2 THEN $4::timestamptz ELSE locked_until END
        WHERE id = $1`,
      [identityId, deps.threshold, new Date(now), until],
    );
    return false;
  };
}
