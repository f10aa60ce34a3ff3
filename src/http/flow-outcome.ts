import { AppError, ERRORS } from '../errors.ts';
import { presentFlow } from './present.ts';
import { delegateSnapshot, type FlowRow } from '../flows/runtime.ts';
import type { FederationFailure, FlowErrorCode, LoginDenialReason } from '../../machines/types.ts';
import type { Services } from './services.ts';

/**
 * How a finished or refused flow step answers (login and step-up flows, and IdP callbacks): kept
 * apart from the routes so a method's own routes (src/authn/methods/idp/) can use it without
 * importing the flow API (which reads the method registry at load).
 */

/**
 * What a refused login tells the user, by reason. Only reached after the user proved the
 * password (or a passkey), so it reveals nothing about whether an account exists; it names no
 * risk signal either.
 */
const DENIAL_DETAIL: Record<Exclude<LoginDenialReason, FederationFailure | 'FEDERATION_REFUSED'>, string> = {
  MFA_REQUIRED_NO_FACTOR:
    'This sign-in looks unusual and your account has no second factor to confirm it. Try again from a device you have used before, or ask an administrator to help you sign in and then add a second factor (an authenticator app or a security key).',
  RISK_DENIED: 'This sign-in was refused for security reasons. Try again from a device or network you have used before, or contact an administrator.',
  SERVICE_UNAVAILABLE: 'Sign-in could not be completed right now; try again shortly.',
  SESSION_LIMIT_REACHED: ERRORS.SESSION_LIMIT_REACHED.title,
};

const RISK_UNAVAILABLE_NO_FACTOR_DETAIL =
  'This sign-in could not be checked right now, and your account has no second factor to confirm it instead. Try again in a few minutes, or ask an administrator to help you sign in and then add a second factor.';

const FEDERATED_DENIALS: ReadonlySet<string> = new Set(['IDP_ERROR', 'IDP_RESPONSE_INVALID', 'IDP_UNAVAILABLE', 'FEDERATION_REFUSED']);

const LOCKED_DETAIL = 'Too many failed attempts. Wait a while before trying again, or ask an administrator to unlock the account.';

/**
 * A flow whose last step failed answers with the matching problem (and the flow): a refused or
 * locked outcome, or the `error` the machine (or its delegate) set for the event it did not accept.
 */
export function outcomeError(row: FlowRow): AppError | null {
  const snap = row.snapshot;
  const output = snap.output as { outcome?: string; reason?: string | null } | undefined;
  if (snap.status === 'done' && output?.outcome === 'denied') {
    const reason = (output.reason ?? 'RISK_DENIED') as LoginDenialReason;
    // A federated login that failed at or after the IdP answers with its own code.
    if (FEDERATED_DENIALS.has(reason)) return new AppError(reason as FederationFailure | 'FEDERATION_REFUSED', { extra: { reason, flowRow: row } });
    // When the risk check itself could not run, say so rather than "looks unusual".
    const unchecked = reason === 'MFA_REQUIRED_NO_FACTOR' && ((snap.context as { risk?: { reasons?: string[] } | null }).risk?.reasons ?? []).includes('RISK_UNAVAILABLE');
    const detail = unchecked ? RISK_UNAVAILABLE_NO_FACTOR_DETAIL : DENIAL_DETAIL[reason as keyof typeof DENIAL_DETAIL];
    return new AppError('LOGIN_DENIED', { detail, extra: { reason, flowRow: row } });
  }
  const step = presentFlow(row).step;
  // Said the same way for every identifier, known or not, and never "until when": telling a
  // locked account's end (or telling it only after a right password) would make the lock an
  // oracle — guesses are not counted while locked, so "locked" vs "wrong" would confirm a password.
  if (step === 'locked') return new AppError('ACCOUNT_LOCKED', { detail: LOCKED_DETAIL, extra: { flowRow: row } });
  const own = (snap.context as { error?: FlowErrorCode | null }).error;
  const child = delegateSnapshot(snap)?.snapshot.context as { error?: FlowErrorCode | null } | undefined;
  const code = own ?? child?.error ?? null;
  return code ? new AppError(code, { extra: { flowRow: row } }) : null;
}

/** 404 IDP_NOT_FOUND unless an enabled provider has this slug (before any flow exists). */
export async function enabledProvider(s: Services, slug: string) {
  const p = await s.federation.providers.bySlug(slug);
  if (!p || !p.enabled) throw new AppError('IDP_NOT_FOUND');
  return p;
}

