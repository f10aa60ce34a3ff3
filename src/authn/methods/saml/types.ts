/**
 * What a validated SAML response yields: the protocol-neutral assertion the federation layer
 * resumes a login flow with (the same shape the OIDC relying party produces).
 */
export interface ExternalAssertion {
  providerId: string;
  protocol: 'oidc' | 'saml';
  /** The IdP's entityID. */
  issuer: string;
  /** The NameID. */
  subject: string;
  email: string | null;
  /** SAML has no standard email_verified; the provider's settings decide whether its email is trusted. */
  emailVerified: boolean;
  name: string | null;
  groups: string[];
  /** RFC 8176 values the AuthnContextClassRef stands for (empty when not mapped). */
  upstreamAmr: string[];
  /** The AuthnContextClassRef, as sent. */
  upstreamAcr: string | null;
  /** AuthnInstant, epoch seconds. */
  authTime: number;
}

/** A validated response: the assertion and the login flow whose AuthnRequest it answers. */
export interface AcceptedResponse {
  assertion: ExternalAssertion;
  flowId: string;
  requestId: string;
}
