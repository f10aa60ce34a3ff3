import type { ExternalAssertion } from './assertion.ts';
import type { ProviderRow } from './providers.ts';

/**
 * Whether the IdP's own answer says MFA, by this provider's mapping: one of its upstream `amr`
 * values (e.g. `mfa`, `hwk`, `otp`) or its `acr` (e.g. an AuthnContextClassRef) is listed as MFA,
 * and the authentication is no older than `mfa_max_age_seconds` (an old session at the IdP is
 * not fresh proof). Recorded as `mfa_verified` whether or not the provider is trusted for it.
 */
export function upstreamProvesMfa(p: Pick<ProviderRow, 'mfa_amr_values' | 'mfa_acr_values' | 'mfa_max_age_seconds'>, a: ExternalAssertion, nowSec: number): boolean {
  const claimed = a.upstreamAmr.some((v) => p.mfa_amr_values.includes(v)) || (a.upstreamAcr !== null && p.mfa_acr_values.includes(a.upstreamAcr));
  if (!claimed) return false;
  // No auth_time: how recent it was is unknown, so it is not recent.
  return a.authTime !== null && a.authTime <= nowSec + 60 && nowSec - a.authTime <= p.mfa_max_age_seconds;
}

/**
 * The local `amr` of a federated first factor: `fed` (proven at an external IdP), plus `mfa` only
 * when the provider is trusted for MFA and its answer proves MFA recently. Stops an IdP we do not
 * trust for it (or a stale IdP session) from satisfying an MFA requirement here.
 */
export function federatedAmr(p: Pick<ProviderRow, 'trust_upstream_mfa' | 'mfa_amr_values' | 'mfa_acr_values' | 'mfa_max_age_seconds'>, a: ExternalAssertion, nowSec: number): string[] {
  return p.trust_upstream_mfa && upstreamProvesMfa(p, a, nowSec) ? ['fed', 'mfa'] : ['fed'];
}
