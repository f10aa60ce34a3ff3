import type { Audit } from '../../audit/audit.ts';
import type { Queryable } from '../../db/db.ts';
import type { Logger } from '../../logger.ts';
import type { PasswordPolicy } from './policy.ts';

/**
 * Breached passwords at sign-in (NIST SP 800-63B: check when the verifier learns one is
 * compromised). The person proved the password, so the login goes on; the account is flagged and,
 * once the login (with any second factor the risk asked for) is done, its answer and /auth/me say
 * `passwordChangeRequired` until a new password is set (PasswordService.setPassword clears it).
 */
export interface CompromisedPasswords {
  /** After a right password: flag the account when the password is known breached (true then). Never throws, never blocks the login. */
  checkAtLogin(identityId: string, password: string): Promise<boolean>;
  /** Whether the account must change its password. */
  changeRequired(identityId: string): Promise<boolean>;
}

export function createCompromisedPasswords(o: { db: Queryable; audit: Audit; policy: PasswordPolicy; enabled: boolean; logger: Pick<Logger, 'warn'> }): CompromisedPasswords {
  return {
    async checkAtLogin(identityId, password) {
      if (!o.enabled) return false;
      try {
        if (!(await o.policy.isBreached(password))) return false;
        const r = await o.db.query('UPDATE identities SET password_compromised = true WHERE id = $1 AND NOT password_compromised RETURNING id', [identityId]);
        if (r.rowCount === 1) await o.audit.append({ type: 'password.flagged', subject: identityId, reason: 'BREACHED' });
        return true;
      } catch (err) {
        o.logger.warn({ err }, 'breached-password check at sign-in failed; the login goes on');
        return false;
      }
    },
    async changeRequired(identityId) {
      const { rows } = await o.db.query<{ c: boolean }>('SELECT password_compromised AS c FROM identities WHERE id = $1', [identityId]);
      return rows[0]?.c === true;
    },
  };
}
