import type { ExternalAssertion as FederatedAssertion } from '../../federation/assertion.ts';

/**
 * What a validated SAML response yields: the protocol-neutral assertion the federation layer
 * resumes a login flow with (src/authn/federation/assertion.ts, the same shape the OIDC relying
 * party produces; SAML always has an AuthnInstant).
 */
export interface ExternalAssertion extends FederatedAssertion {
  /** AuthnInstant, epoch seconds (SAML always has one). */
  authTime: number;
}

/** A validated response: the assertion and the login flow whose AuthnRequest it answers. */
export interface AcceptedResponse {
  assertion: ExternalAssertion;
  flowId: string;
  requestId: string;
}
