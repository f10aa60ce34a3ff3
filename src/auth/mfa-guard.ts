import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { clearAfterSuccess, lockAccount, reserveAttempt } from './lockout.ts';

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
    // Counted before the check, so concurrent guesses over many flows cannot all read "unlocked".
    const count = await reserveAttempt(db, identityId, 'mfa_failed_attempts', now);
    if (count === undefined || count > deps.threshold) return false;
    if (await check(identityId, code)) return clearAfterSuccess(db, identityId, 'mfa_failed_attempts');
    if (count >= deps.threshold) await lockAccount(db, identityId, now, deps.lockoutSeconds);
    return false;
  };
}
