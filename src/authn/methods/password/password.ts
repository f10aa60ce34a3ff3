import { hash, verify, type Algorithm } from '@node-rs/argon2';
import type { Clock } from '../../../clock.ts';
import type { Db } from '../../../db/db.ts';
import type { MfaMethod, PasswordResult } from '../../../../machines/types.ts';
import { AppError } from '../../../errors.ts';
import { clearAfterSuccess, decoyAttempt, reserveAttempt, settleFailure } from '../../../auth/lockout.ts';

/** OWASP minimum for argon2id: m=19456 KiB, t=2, p=1. */
// Algorithm.Argon2id is an ambient const enum (value 2), which verbatimModuleSyntax cannot import.
export const ARGON2_PARAMS = { algorithm: 2 as Algorithm, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/** Bounds concurrent hashing so a burst of logins cannot exhaust memory or CPU. */
export class Semaphore {
  private active = 0;
  private queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** NIST 800-63B: 8–256 characters, as entered (no trimming or truncation). */
export function checkPasswordPolicy(pw: string): void {
  const len = [...pw].length;
  if (len < 8 || len > 256)
    throw new AppError('VALIDATION_FAILED', { detail: 'A password must be 8 to 256 characters long.' });
}

export const normalizeIdentifier = (s: string): string => s.trim().toLowerCase();

export interface PasswordService {
  hash(pw: string): Promise<string>;
  /** Stops online guessing: a dummy hash for unknown users, a durable lockout counter for known ones. */
  verifyLogin(identifier: string, password: string): Promise<PasswordResult>;
  setPassword(identityId: string, pw: string): Promise<void>;
  /** Checks the current password of a signed-in user (stops a hijacked session from changing it). */
  verifyCurrent(identityId: string, pw: string): Promise<boolean>;
}

export async function createPasswordService(deps: {
  db: Db;
  clock: Clock;
  concurrency: number;
  lockoutThreshold: number;
  lockoutSeconds: number;
  methodsOf: (identityId: string) => Promise<MfaMethod[]>;
}): Promise<PasswordService> {
  const { db, clock } = deps;
  const sem = new Semaphore(deps.concurrency);
  const doHash = (pw: string) => sem.run(() => hash(pw, ARGON2_PARAMS));
  const doVerify = (h: string, pw: string) => sem.run(() => verify(h, pw).catch(() => false));
  // Unknown users are checked against this so they cost the same time as known ones.
  const dummy = await doHash(`dummy-${Math.floor(clock.now())}`);

  const fail = (identityId: string | null, accountLocked = false): PasswordResult => ({
    ok: false,
    identityId,
    methods: [],
    accountLocked,
  });

  /**
   * Stops concurrent guessing past the lockout: the attempt is counted atomically *before* the
   * (queued) hash check, so a burst cannot all read "unlocked"; a success resets the count only
   * if no lock landed meanwhile (a burst's or an administrator's); a lapsed lock starts afresh.
   *
   * Stops telling known from unknown users by time: every refused attempt costs a SELECT, one
   * row write, the hash check and a second row write — an identity's row for a known user
   * (locked or not), a decoy row for an unknown one (test/integration/password-timing.test.ts).
   */
  async function attempt(identityId: string | null, hashed: string, password: string, reportId: string | null = identityId): Promise<PasswordResult> {
    const now = clock.now();
    const decoy = identityId === null ? decoyAttempt(db) : null;
    let count: number | undefined;
    if (decoy) await decoy.reserve();
    else count = await reserveAttempt(db, identityId as string, 'failed_attempts', now);
    const open = identityId !== null && count !== undefined && count <= deps.lockoutThreshold;
    const right = await doVerify(hashed, password); // checked whatever the state: the same cost
    if (open && right) {
      if (await clearAfterSuccess(db, identityId, 'failed_attempts'))
        return { ok: true, identityId, methods: await deps.methodsOf(identityId), accountLocked: false };
      return fail(identityId, true);
    }
    if (decoy || identityId === null) {
      await decoy?.settle();
      return fail(reportId, false);
    }
    const lockedNow = await settleFailure(db, identityId, 'failed_attempts', deps.lockoutThreshold, now, deps.lockoutSeconds);
    return fail(reportId, count === undefined || !open || lockedNow);
  }

  return {
    hash: doHash,
    async verifyLogin(identifier, password) {
      const email = normalizeIdentifier(identifier);
      const tooLong = [...password].length > 256;
      const { rows } = await db.query<{
        id: string;
        status: string;
        hash: string | null;
        locked_at: Date | null;
        locked_until: Date | null;
        password_compromised: boolean;
      }>(
        `SELECT i.id, i.status, p.hash, i.locked_at, i.locked_until, i.password_compromised
           FROM identities i LEFT JOIN password_credentials p ON p.identity_id = i.id
          WHERE i.email = $1`,
        [email],
      );
      const row = rows[0];
      // Unknown, disabled, password-less or over-long: the same work as a wrong password, counted for no one.
      if (!row || !row.hash || row.status !== 'active' || tooLong) return attempt(null, row?.hash ?? dummy, tooLong ? 'x' : password, row?.id ?? null);
      const r = await attempt(row.id, row.hash, password);
      // Flagged at an earlier sign-in (a breached password): read with the row, not asked again.
      return r.ok && row.password_compromised ? { ...r, changeRequired: true } : r;
    },
    async verifyCurrent(identityId, pw) {
      const { rows } = await db.query<{ hash: string }>('SELECT hash FROM password_credentials WHERE identity_id = $1', [identityId]);
      if (!rows[0] || [...pw].length > 256) {
        await doVerify(rows[0]?.hash ?? dummy, 'x');
        return false;
      }
      // The same durable counter and lock as sign-in: a session is no unlimited password oracle.
      return (await attempt(identityId, rows[0].hash, pw)).ok;
    },
    async setPassword(identityId, pw) {
      checkPasswordPolicy(pw);
      const h = await doHash(pw);
      // A new password forgets every remembered device in the same statement (issue 12): whoever
      // remembered a device with the old password (perhaps not the owner) must prove a factor again.
      await db.query(
        `WITH forgot AS (UPDATE remembered_devices SET revoked_at = $3, revoked_reason = 'PASSWORD_CHANGED' WHERE identity_id = $1 AND revoked_at IS NULL)
         INSERT INTO password_credentials (identity_id, hash, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (identity_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at`,
        [identityId, h, new Date(clock.now())],
      );
      // A new password is no longer the breached one: the change it asked for is done.
      await db.query('UPDATE identities SET password_compromised = false WHERE id = $1 AND password_compromised', [identityId]);
    },
  };
}
