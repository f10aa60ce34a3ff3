import type { MfaMethod } from '../../../machines/types.ts';

/**
 * What an identity provider vouched for, after the protocol checked it (OIDC: code exchange, ID
 * token signature, iss, aud, nonce, PKCE; SAML: signature, audience, InResponseTo…). The one
 * normalized shape every protocol produces and the login flow consumes (`resumeWithAssertion`).
 * Plain JSON: it travels in a flow event and is kept in the flow's context.
 */
export interface ExternalAssertion {
  providerId: string;
  protocol: 'oidc' | 'saml';
  /** The IdP's issuer (OIDC `iss`, SAML entity id): with `subject`, names the external account. */
  issuer: string;
  subject: string;
  /** Lower-cased; null when the IdP did not assert one. */
  email: string | null;
  /** The IdP asserted that the address was verified (never assumed). */
  emailVerified: boolean;
  name: string | null;
  groups: string[];
  /** OIDC `amr`, or SAML AuthnContextClassRef values. */
  upstreamAmr: string[];
  /** OIDC `acr`, or the SAML AuthnContextClassRef. */
  upstreamAcr: string | null;
  /** When the person authenticated at the IdP (epoch seconds), when it said so. */
  authTime: number | null;
}

/** What identity resolution answers the login machine (src/authn/federation/identities.ts). */
export type FederatedResult =
  | { ok: true; identityId: string; methods: MfaMethod[]; amr: string[]; upstreamMfa: boolean; upstreamAuthTime: number | null }
  | { ok: false; reason: FederationRefusal };

/**
 * Why an IdP's assertion did not sign anyone in (the flow ends denied with it):
 * NO_LINKED_ACCOUNT: no local account is linked and none may be created or linked here (said the
 * same way whether or not an account with that email exists); DOMAIN_NOT_ALLOWED: the email's
 * domain is not among the provider's; ACCOUNT_UNUSABLE: the linked account is disabled or locked.
 */
export type FederationRefusal = 'NO_LINKED_ACCOUNT' | 'DOMAIN_NOT_ALLOWED' | 'ACCOUNT_UNUSABLE' | 'PROVIDER_MISMATCH' | 'PROVIDER_DISABLED';

/** Cheap shape check of an assertion arriving in an event (the machine rejects anything else). */
export function isAssertion(v: unknown): v is ExternalAssertion {
  const a = v as ExternalAssertion;
  return (
    !!a &&
    typeof a.providerId === 'string' &&
    (a.protocol === 'oidc' || a.protocol === 'saml') &&
    typeof a.issuer === 'string' &&
    typeof a.subject === 'string' &&
    a.subject.length > 0 &&
    Array.isArray(a.groups) &&
    Array.isArray(a.upstreamAmr)
  );
}
