import { createHmac, randomInt, randomUUID } from 'node:crypto';
import type { Clock } from '../../../clock.ts';
import type { Db, Queryable } from '../../../db/db.ts';
import { isUniqueViolation } from '../../../db/db.ts';
import { AppError } from '../../../errors.ts';

/**
 * One-time SMS/email codes (NIST SP 800-63B §5.1.3): random, hashed at rest, single-use,
 * short-lived, bound to one flow, with a guess budget that no resend refreshes.
 *
 * There is one challenge row per flow id (or purpose key such as `phone-bind:<factorId>`).
 * Asking for another code, on the same channel or another one, replaces the code on that row:
 * the previous code stops working at once and `attempts` carries over.
 */
export type CodeChannel = 'sms' | 'email';
export type CodeVerdict = 'ok' | 'invalid' | 'expired' | 'locked';

export interface CodeService {
  /**
   * Issue a code for a flow. A flow that already has a live challenge gets a new code on that
   * row (its attempt count kept); on the same channel and destination this is a resend and
   * respects the cooldown, on another one (the SMS provider was down, the user picked email)
   * it is allowed at once. A flow whose previous challenge was consumed starts a new one.
   */
  issue(o: { flowId: string; identityId: string | null; channel: CodeChannel; destination: string }): Promise<IssuedCode>;
  /** Stops resend floods: refuses within the cooldown (CODE_RESEND_TOO_SOON with Retry-After). */
  resend(flowId: string, channel: CodeChannel): Promise<IssuedCode>;
  /** Stops guessing and replay: one success per code, a bounded number of wrong guesses per flow. */
  verify(flowId: string, code: string): Promise<CodeVerdict>;
}

export interface IssuedCode {
  challengeId: string;
  code: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Where to send it (the row's phone number or email address). */
  destination: string;
  channel: CodeChannel;
}

export interface CodeServiceOptions {
  db: Db;
  clock: Clock;
  /** Secret key for the code digests, so a stolen table does not allow an offline search. */
  pepper: Buffer;
  /** At most 600 (NIST allows 10 minutes for out-of-band codes). */
  ttlSeconds: number;
  resendCooldownSeconds: number;
  /** Wrong guesses allowed per challenge, across resends. */
  maxAttempts: number;
  /** At least 6. */
  digits?: number;
  /** Codes sent per challenge (first send included) before further sends are refused. */
  maxSends?: number;
}

interface Row {
  id: string;
  channel: CodeChannel;
  destination: string;
  expires_at: Date;
  attempts: number;
  max_attempts: number;
  sends: number;
  last_sent_at: Date | null;
  consumed_at: Date | null;
}

const COLUMNS = 'id, channel, destination, expires_at, attempts, max_attempts, sends, last_sent_at, consumed_at';

export function createCodeService(o: CodeServiceOptions): CodeService {
  const { db, clock } = o;
  const digits = o.digits ?? 6;
  const maxSends = o.maxSends ?? 5;
  if (!Number.isInteger(digits) || digits < 6 || digits > 10) throw new Error('codes: digits must be 6..10');
  if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds < 1 || o.ttlSeconds > 600) throw new Error('codes: ttlSeconds must be 1..600');
  if (!Number.isInteger(o.maxAttempts) || o.maxAttempts < 1) throw new Error('codes: maxAttempts must be ≥ 1');
  if (o.pepper.length < 16) throw new Error('codes: pepper must be at least 16 bytes');
  const shape = new RegExp(`^\\d{${digits}}$`);

  const newCode = () => String(randomInt(0, 10 ** digits)).padStart(digits, '0');
  // The challenge id salts the digest: equal codes on two challenges never share a hash.
  const digest = (challengeId: string, code: string) =>
    createHmac('sha256', o.pepper).update(`${challengeId}:${code}`).digest('base64url');
  const now = () => new Date(clock.now());
  const expiry = (t: number) => new Date(t + o.ttlSeconds * 1000);

  /** Seconds until the cooldown after the last send is over; 0 when a send is allowed. */
  const cooldownLeft = (r: Row, t: number) => {
    if (!r.last_sent_at) return 0;
    const ms = r.last_sent_at.getTime() + o.resendCooldownSeconds * 1000 - t;
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  };
  const tooSoon = (seconds: number) =>
    new AppError('CODE_RESEND_TOO_SOON', { headers: { 'Retry-After': String(seconds) }, extra: { retryAfter: seconds } });

  /** Refuse a new code on a row that can no longer be used or was sent too often. */
  function checkCanSend(r: Row) {
    if (r.attempts >= r.max_attempts) throw new AppError('MFA_CODE_LOCKED');
    if (r.sends >= maxSends) throw new AppError('RATE_LIMITED', { privateDetail: 'code send limit reached for this challenge' });
  }

  async function insert(q: Queryable, flowId: string, identityId: string | null, channel: CodeChannel, destination: string) {
    const id = randomUUID();
    const code = newCode();
    const t = clock.now();
    await q.query(
      `INSERT INTO otp_challenges (id, flow_id, identity_id, channel, destination, code_hash, expires_at, max_attempts, sends, last_sent_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)`,
      [id, flowId, identityId, channel, destination, digest(id, code), expiry(t), o.maxAttempts, new Date(t)],
    );
    return { challengeId: id, code, expiresAt: expiry(t).getTime(), destination, channel };
  }

  /** Put a fresh code on an existing row; the old code dies with its hash, attempts stay. */
  async function replace(q: Queryable, r: Row, channel: CodeChannel, destination: string): Promise<IssuedCode> {
    const code = newCode();
    const t = clock.now();
    // Compare-and-set on sends: of two concurrent resends, one replaces the code.
    const u = await q.query(
      `UPDATE otp_challenges
          SET channel = $2, destination = $3, code_hash = $4, expires_at = $5, sends = sends + 1, last_sent_at = $6
        WHERE id = $1 AND sends = $7 AND consumed_at IS NULL AND attempts < max_attempts`,
      [r.id, channel, destination, digest(r.id, code), expiry(t), new Date(t), r.sends],
    );
    if (u.rowCount !== 1) throw tooSoon(Math.max(1, o.resendCooldownSeconds));
    return { challengeId: r.id, code, expiresAt: expiry(t).getTime(), destination, channel };
  }

  return {
    async issue({ flowId, identityId, channel, destination }) {
      for (let round = 0; ; round++) {
        try {
          return await db.tx(async (q) => {
            const { rows } = await q.query<Row>(`SELECT ${COLUMNS} FROM otp_challenges WHERE flow_id = $1 FOR UPDATE`, [flowId]);
            const r = rows[0];
            if (!r) return insert(q, flowId, identityId, channel, destination);
            if (r.consumed_at) {
              // The previous challenge succeeded; its budget protected it. A new one starts clean.
              await q.query('DELETE FROM otp_challenges WHERE id = $1', [r.id]);
              return insert(q, flowId, identityId, channel, destination);
            }
            checkCanSend(r);
            if (r.channel === channel && r.destination === destination) {
              const wait = cooldownLeft(r, clock.now());
              if (wait > 0) throw tooSoon(wait);
            }
            return replace(q, r, channel, destination);
          });
        } catch (e) {
          // Two first issues raced on the unique flow_id: the loser re-reads and re-targets.
          if (isUniqueViolation(e) && round < 2) continue;
          throw e;
        }
      }
    },

    async resend(flowId, channel) {
      const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM otp_challenges WHERE flow_id = $1`, [flowId]);
      const r = rows[0];
      if (!r || r.consumed_at || r.channel !== channel) throw new AppError('MFA_CHALLENGE_NOT_FOUND');
      checkCanSend(r);
      const wait = cooldownLeft(r, clock.now());
      if (wait > 0) throw tooSoon(wait);
      return replace(db, r, channel, r.destination);
    },

    async verify(flowId, code) {
      const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM otp_challenges WHERE flow_id = $1`, [flowId]);
      const r = rows[0];
      if (!r) return 'invalid';
      const t = now();
      // Anything that is not a well-formed code still costs a guess; it hashes to no stored code.
      const hash = digest(r.id, typeof code === 'string' && shape.test(code) ? code : '-');
      // Single use: of any number of concurrent submissions, one UPDATE wins.
      const won = await db.query(
        `UPDATE otp_challenges SET consumed_at = $3
          WHERE id = $1 AND code_hash = $2 AND consumed_at IS NULL AND expires_at > $3 AND attempts < max_attempts
          RETURNING id`,
        [r.id, hash, t],
      );
      if (won.rowCount === 1) return 'ok';
      // A wrong guess on a live challenge costs one attempt; the guard keeps the count ≤ max.
      const counted = await db.query<{ attempts: number; max_attempts: number }>(
        `UPDATE otp_challenges SET attempts = attempts + 1
          WHERE id = $1 AND code_hash <> $2 AND consumed_at IS NULL AND expires_at > $3 AND attempts < max_attempts
          RETURNING attempts, max_attempts`,
        [r.id, hash, t],
      );
      const c = counted.rows[0];
      if (c) return c.attempts >= c.max_attempts ? 'locked' : 'invalid';
      // Neither: the challenge is used up, out of guesses or expired. The answer does not depend
      // on whether the submitted code was right.
      const { rows: after } = await db.query<Row>(`SELECT ${COLUMNS} FROM otp_challenges WHERE id = $1`, [r.id]);
      const s = after[0];
      if (!s || s.consumed_at) return 'invalid';
      if (s.attempts >= s.max_attempts) return 'locked';
      if (s.expires_at.getTime() <= t.getTime()) return 'expired';
      return 'invalid';
    },
  };
}
