import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { TotpService } from '../authn/methods/totp/totp.ts';
import type { RecoveryService } from '../authn/methods/recovery/recovery.ts';
import { SECOND_FACTORS, type MfaActorDeps, type SecondFactorPorts } from '../authn/methods/registry.ts';
import { mfaMachine } from '../../machines/mfa.machine.ts';

export type { SecondFactorPorts } from '../authn/methods/registry.ts';

/**
 * The MFA machine with its real behaviour: each second-factor method (src/authn/methods/) provides
 * its own actors. Every code check goes through the account-wide failure guard, so guessing across
 * many flows still locks the account.
 */
export function provideMfa(deps: { db: Db; clock: Clock; config: Config; totp: TotpService; recovery: RecoveryService; ports: SecondFactorPorts }) {
  const { db, clock, config } = deps;
  const d: MfaActorDeps = {
    guard: { db, clock, threshold: config.LOCKOUT_THRESHOLD, lockoutSeconds: config.LOCKOUT_SECONDS },
    totp: deps.totp,
    recovery: deps.recovery,
    ports: deps.ports,
  };
  return mfaMachine.provide({ actors: Object.assign({}, ...SECOND_FACTORS.map((m) => m.mfaActors?.(d) ?? {})) });
}
