import { randomUUID } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import type { Clock } from '../../../clock.ts';
import type { Db } from '../../../db/db.ts';
import type { Sealer } from '../../../crypto/seal.ts';
import { AppError } from '../../../errors.ts';

/** RFC 6238 with SHA-1, 6 digits, 30 s steps, ±1 step of drift. */
const PERIOD = 30;
const TOLERANCE_SECONDS = 30;
const CODE = /^\d{6}$/;

export interface TotpFactor {
  id: string;
  label: string;
  confirmed: boolean;
}

export interface TotpService {
  enrol(identityId: string, email: string): Promise<{ id: string; secret: string; otpauthUri: string }>;
  /** Confirms a pending factor with a first code (which is then spent). */
  confirm(identityId: string, factorId: string, code: string): Promise<{ firstFactor: boolean }>;
  /** Stops replay: a time step is accepted once per factor, atomically, even under concurrency. */
  verify(identityId: string, code: string): Promise<boolean>;
  hasConfirmed(identityId: string): Promise<boolean>;
}

export function createTotpService(deps: { db: Db; clock: Clock; sealer: Sealer; issuer: string }): TotpService {
  const { db, clock, sealer } = deps;

  /** Check a code against one factor's seed and spend its time step. */
  async function check(factor: { id: string; secret_sealed: string; last_step: number | null }, code: string) {
    if (!CODE.test(code)) return false;
    const secret = sealer.open(factor.secret_sealed, factor.id).toString();
    const r = await verify({
      secret,
      token: code,
      epoch: Math.floor(clock.now() / 1000),
      epochTolerance: TOLERANCE_SECONDS,
      period: PERIOD,
      ...(factor.last_step !== null ? { afterTimeStep: factor.last_step } : {}),
    }).catch(() => ({ valid: false as const }));
    if (!r.valid) return false;
    const step = (r as { timeStep: number }).timeStep;
    // Compare-and-set: of any number of concurrent submissions of this step, one wins.
    const won = await db.query(
      `UPDATE totp_factors SET last_step = $2, last_used_at = $3
        WHERE id = $1 AND (last_step IS NULL OR last_step < $2) RETURNING id`,
      [factor.id, step, new Date(clock.now())],
    );
    return won.rowCount === 1;
  }

  return {
    async enrol(identityId, email) {
      const id = randomUUID();
      const secret = generateSecret({ length: 20 });
      await db.query(
        `INSERT INTO totp_factors (id, identity_id, label, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5)`,
        [id, identityId, 'Authenticator app', sealer.seal(secret, id), new Date(clock.now())],
      );
      const otpauthUri = generateURI({ issuer: deps.issuer, label: email, secret, period: PERIOD, digits: 6 });
      return { id, secret, otpauthUri };
    },
    async confirm(identityId, factorId, code) {
      const { rows } = await db.query<{ id: string; secret_sealed: string; last_step: number | null; confirmed_at: Date | null }>(
        'SELECT id, secret_sealed, last_step, confirmed_at FROM totp_factors WHERE id = $1 AND identity_id = $2',
        [factorId, identityId],
      );
      const f = rows[0];
      if (!f) throw new AppError('MFA_FACTOR_NOT_FOUND');
      if (f.confirmed_at) throw new AppError('MFA_ALREADY_CONFIRMED');
      if (!(await check(f, code))) throw new AppError('MFA_CODE_INVALID');
      const before = await db.query('SELECT 1 FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL', [identityId]);
      const r = await db.query('UPDATE totp_factors SET confirmed_at = $2 WHERE id = $1 AND confirmed_at IS NULL', [
        factorId,
        new Date(clock.now()),
      ]);
      if (r.rowCount !== 1) throw new AppError('MFA_ALREADY_CONFIRMED');
      return { firstFactor: before.rowCount === 0 };
    },
    async verify(identityId, code) {
      if (!CODE.test(code)) return false;
      const { rows } = await db.query<{ id: string; secret_sealed: string; last_step: number | null }>(
        'SELECT id, secret_sealed, last_step FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL',
        [identityId],
      );
      for (const f of rows) if (await check(f, code)) return true;
      return false;
    },
    async hasConfirmed(identityId) {
      const r = await db.query('SELECT 1 FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL LIMIT 1', [identityId]);
      return r.rowCount > 0;
    },
  };
}
