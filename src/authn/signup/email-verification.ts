import type { Audit } from '../../audit/audit.ts';
import type { CodeService } from '../methods/codes/codes.ts';
import type { Db } from '../../db/db.ts';
import { AppError } from '../../errors.ts';
import type { NotifyClient } from '../../notify/enqueue.ts';
import { maskDestination } from '../../notify/mask.ts';
import { notifyJobId } from '../../../workers/queues.ts';

/**
 * Proving the address of an account that did not sign up itself (created by an administrator,
 * the CLI or the first-admin bootstrap): a code to the account's address, bound to the session
 * that asked for it (a code asked for in one session does not work in another), single-use,
 * short-lived and HMAC-stored by the one code service (src/auth/codes.ts).
 */
export interface EmailVerification {
  /** Sends a code (or answers that the address is verified already). Stops resend floods with the code service's cooldown. */
  start(o: { identityId: string; sessionId: string }): Promise<{ emailVerified: true } | { emailVerified: false; to: string; expiresAt: string }>;
  /** Stops guessing and replay: one success per code; a wrong code spends the challenge's budget. */
  confirm(o: { identityId: string; sessionId: string; code: string }): Promise<void>;
}

const key = (sessionId: string) => `email-verify-${sessionId}`;

export function createEmailVerification(deps: { db: Db; audit: Audit; codes: CodeService; notify: NotifyClient; ttlMinutes: string }): EmailVerification {
  const { db } = deps;
  const identity = async (id: string) =>
    (await db.query<{ email: string; email_verified: boolean }>('SELECT email, email_verified FROM identities WHERE id = $1', [id])).rows[0];
  return {
    async start({ identityId, sessionId }) {
      const who = await identity(identityId);
      if (!who) throw new AppError('UNAUTHENTICATED');
      if (who.email_verified) return { emailVerified: true };
      const issued = await deps.codes.issue({ flowId: key(sessionId), identityId, channel: 'email', destination: who.email });
      const { rows } = await db.query<{ sends: number }>('SELECT sends FROM otp_challenges WHERE id = $1', [issued.challengeId]);
      await deps.notify.sendAndWait(
        { channel: 'email', to: who.email, template: 'email_verification', data: { code: issued.code, ttlMinutes: deps.ttlMinutes } },
        notifyJobId('email_verification', issued.challengeId, rows[0]?.sends ?? 0),
        15_000,
      );
      return { emailVerified: false, to: maskDestination('email', who.email), expiresAt: new Date(issued.expiresAt).toISOString() };
    },
    async confirm({ identityId, sessionId, code }) {
      // The challenge was issued for this identity's address; a changed address would need a new one.
      const ch = await db.query<{ identity_id: string | null; destination: string }>('SELECT identity_id, destination FROM otp_challenges WHERE flow_id = $1', [key(sessionId)]);
      const verdict = await deps.codes.verify(key(sessionId), code);
      if (verdict === 'expired') throw new AppError('MFA_CODE_EXPIRED');
      if (verdict === 'locked') throw new AppError('MFA_CODE_LOCKED');
      const who = await identity(identityId);
      if (verdict !== 'ok' || !who || ch.rows[0]?.identity_id !== identityId || ch.rows[0]?.destination !== who.email) throw new AppError('MFA_CODE_INVALID');
      const r = await db.query('UPDATE identities SET email_verified = true WHERE id = $1 AND email = $2 AND NOT email_verified', [identityId, who.email]);
      if (r.rowCount === 1) await deps.audit.append({ type: 'email.verified', actor: identityId, subject: identityId, reason: 'SESSION', data: { session: sessionId } });
    },
  };
}
