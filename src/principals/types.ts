import type { Context } from 'hono';
import type { Proof } from '../authz/decision.ts';

/**
 * Who is calling, whatever the credential. Every kind carries what it proved (`amr`,
 * `authTime`, `factorTimes`, empty for machine credentials) so requirements are checked the same
 * way; the session kinds also carry their session.
 */
export interface SessionPrincipal extends Proof {
  kind: 'session';
  via: 'cookie' | 'bearer';
  identityId: string;
  sessionId: string;
  /** Known when the credential was verified with the identity loaded (forward-auth cache). */
  email?: string;
}

/** A machine credential: an API key, or a workload (service-account) token. */
export interface CredentialPrincipal extends Proof {
  kind: 'api_key' | 'service_account';
  via: 'api_key' | 'service_token';
  /** The identity the credential stands for (X-Auth-User); its own roles and bindings apply. */
  identityId: string;
  /** The credential's id (an API key's id, a service account's subject): for audit and headers. */
  credentialId: string;
  sessionId?: undefined;
  email?: string;
  /**
   * Permissions the credential is limited to: a decision needs the permission in this list AND
   * granted to `authority` by RBAC. Absent: the identity's grants apply unlimited.
   */
  scope?: readonly string[];
  /** Whose grants bound the credential (an API key: its creator). Defaults to `identityId`. */
  authority?: string;
  /**
   * Role bindings the credential brings itself (a service-account mapping), in addition to
   * those stored for `identityId`.
   */
  bindings?: readonly { role: string; namespace: string | null }[];
}

export type AnyPrincipal = SessionPrincipal | CredentialPrincipal;

export type AuthMode = 'activity' | 'check' | 'forward';

/**
 * One way of proving who is calling. `authenticate` answers a principal, or null when the request
 * carries no credential of this kind or one that does not verify (the pipeline then tries the
 * next; a request nothing accepts is 401). It throws an AppError only for a definite refusal the
 * caller must see as such (a malformed API key: 400; an address outside a key's allow-list: 403;
 * a spent rate limit: 429).
 *
 * Service-account tokens plug in here: `services.principals.register(authenticator, { after:
 * 'api_key' })` (src/principals/pipeline.ts). Such a token is also `Authorization: Bearer …`: the
 * bearer access-token authenticator answers null for a token that is not Threshold's, so the next
 * one gets it. Answer a `CredentialPrincipal` with `kind: 'service_account'`, `credentialId` the
 * subject, and the mapped roles as `bindings` (namespace-scoped); `identityId` may be an identity
 * row's id (its stored bindings then apply too) or the subject itself (only `bindings` apply).
 */
export interface Authenticator {
  readonly name: string;
  /** Whether the request presents a credential this authenticator reads (decides 401's challenge). */
  presented(c: Context): boolean;
  authenticate(c: Context, mode: AuthMode): Promise<AnyPrincipal | null>;
}

/** Whether the request carries a credential in a header: the session cookie is then never read (CSRF rule). */
export const hasHeaderCredential = (c: Context) => c.req.header('authorization') !== undefined || c.req.header('x-api-key') !== undefined;

/**
 * Stops a request that carries credentials in more than one header (`X-API-Key` beside any
 * `Authorization`), or one such header repeated: the pipeline would otherwise pick one silently
 * (the first authenticator that accepts), so the key's allow-list, rate limit, failure count and
 * audit would not see the other, and a proxy that judged the request by the other header would
 * disagree with us about who is calling.
 */
export function hasConflictingCredentials(c: Context): boolean {
  const raw = c.req.raw.headers;
  const auth = raw.get('authorization');
  const key = raw.get('x-api-key');
  // Headers repeated are joined with ", " by fetch: a key or a token never contains one.
  if (key !== null && (auth !== null || key.includes(','))) return true;
  return auth !== null && /,\s*(Bearer|ApiKey|Basic|DPoP)\s/i.test(auth);
}
