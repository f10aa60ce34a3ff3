/** Why an IdP round trip failed; the code is an error-registry code the callback answers with. */
export type FederationErrorCode = 'IDP_ERROR' | 'IDP_RESPONSE_INVALID' | 'IDP_UNAVAILABLE';

/**
 * A failed IdP round trip. `what` says which check failed (STATE_UNKNOWN, OAUTH_JWT_CLAIM_COMPARISON…)
 * and goes to the audit trail only; the client gets the code.
 */
export class FederationError extends Error {
  constructor(
    readonly code: FederationErrorCode,
    readonly what: string,
    cause?: unknown,
  ) {
    super(`${code}: ${what}`, { cause });
    this.name = 'FederationError';
  }
}
