import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import type { Audit } from '../audit/audit.ts';
import type { SessionService } from './sessions.ts';
import { randomToken, sha256 } from '../crypto/seal.ts';
import { addLabel } from '../risk/labels.ts';
import type { RememberedDevices } from './remembered-devices.ts';

const TTL_MS = 7 * 24 * 3600 * 1000;

export interface LoginReports {
  /** A single-use "this wasn't me" token for one new-device login. */
  create(o: { identityId: string; sessionId: string; loginEventId: string }): Promise<string>;
  /** Stops an attacker's session at the owner's word: revokes it and labels the login fraudulent. Once. */
  report(token: string): Promise<{ sessionId: string; loginEventId: string } | null>;
}

export function createLoginReports(deps: { db: Db; clock: Clock; audit: Audit; sessions: SessionService; remembered?: RememberedDevices }): LoginReports {
  const { db, clock } = deps;
  return {
    async create(o) {
      const token = randomToken(32);
      const now = clock.now();
      await db.query(
        `INSERT INTO login_reports (token_hash, identity_id, session_id, login_event_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [sha256(token), o.identityId, o.sessionId, o.loginEventId, new Date(now), new Date(now + TTL_MS)],
      );
      return token;
    },
    async report(token) {
      if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
      const now = new Date(clock.now());
      const { rows } = await db.query<{ identity_id: string; session_id: string; login_event_id: string }>(
        `UPDATE login_reports SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
         RETURNING identity_id, session_id, login_event_id`,
        [sha256(token), now],
      );
      const r = rows[0];
      if (!r) return null;
      await deps.sessions.revoke(r.session_id, 'reported_fraudulent');
      // Whoever signed in may have remembered a device: none of the account's stays trusted.
      await deps.remembered?.forgetAll(r.identity_id, 'USER_REPORT', r.identity_id);
      // The owner's word is a strong `fraud` label: back-tests and the risk events API read it.
      await addLabel(db, { eventId: r.login_event_id, label: 'fraud', source: 'user_report', actor: r.identity_id, at: now });
      await deps.audit.append({ type: 'login.reported_fraudulent', actor: r.identity_id, subject: r.session_id, reason: 'USER_REPORT', data: { loginEvent: r.login_event_id } });
      return { sessionId: r.session_id, loginEventId: r.login_event_id };
    },
  };
}
