import { fromPromise } from 'xstate';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import { guardSecondFactor } from '../auth/mfa-guard.ts';
import type { TotpService } from '../auth/totp.ts';
import type { RecoveryService } from '../auth/recovery.ts';
import { mfaMachine, type CodeVerdict, type SendCodeInput, type WebAuthnResult } from '../../machines/mfa.machine.ts';

/** What the MFA machine needs for SMS/email codes and WebAuthn; absent parts make those methods fail closed. */
export interface SecondFactorPorts {
  sendCode?: (i: SendCodeInput & { resend: boolean }) => Promise<{ to: string }>;
  verifyCode?: (flowId: string, code: string) => Promise<CodeVerdict>;
  startWebAuthn?: (flowId: string, identityId: string) => Promise<Record<string, unknown>>;
  verifyWebAuthn?: (flowId: string, identityId: string, response: Record<string, unknown>) => Promise<WebAuthnResult>;
}

const unavailable = (what: string) => async (): Promise<never> => {
  throw new Error(`${what} is not configured`);
};

/**
 * The MFA machine with its real behaviour. Every code check goes through the account-wide
 * failure guard, so guessing across many flows still locks the account.
 */
export function provideMfa(deps: { db: Db; clock: Clock; config: Config; totp: TotpService; recovery: RecoveryService; ports: SecondFactorPorts }) {
  const { db, clock, config, ports } = deps;
  const guard = { db, clock, threshold: config.LOCKOUT_THRESHOLD, lockoutSeconds: config.LOCKOUT_SECONDS };
  const totp = guardSecondFactor(guard, deps.totp.verify);
  const recovery = guardSecondFactor(guard, deps.recovery.consume);
  return mfaMachine.provide({
    actors: {
      verifyTotp: fromPromise(({ input }) => totp(input.identityId, input.code)),
      verifyRecoveryCode: fromPromise(({ input }) => recovery(input.identityId, input.code)),
      sendCode: fromPromise(({ input }) => (ports.sendCode ?? unavailable('code delivery'))(input)),
      // Codes also count toward the account-wide guard: many flows do not buy many guesses.
      verifyCode: fromPromise(async ({ input }) => {
        const check = ports.verifyCode ?? unavailable('codes');
        const seen: { verdict: CodeVerdict } = { verdict: 'invalid' };
        const ok = await guardSecondFactor(guard, async () => {
          seen.verdict = await check(input.flowId, input.code);
          return seen.verdict === 'ok';
        })(input.identityId, input.code);
        // A locked account's code is not even checked: it reads as invalid.
        return ok ? 'ok' : seen.verdict === 'ok' ? 'invalid' : seen.verdict;
      }),
      startWebAuthn: fromPromise(({ input }) => (ports.startWebAuthn ?? unavailable('WebAuthn'))(input.flowId, input.identityId)),
      verifyWebAuthn: fromPromise(({ input }) => (ports.verifyWebAuthn ?? unavailable('WebAuthn'))(input.flowId, input.identityId, input.response)),
    },
  });
}
