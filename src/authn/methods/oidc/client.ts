import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Clock } from '../../../clock.ts';
import type { Db } from '../../../db/db.ts';
import { sha256, type Sealer } from '../../../crypto/seal.ts';
import { clientSecretAad, issuerAllowed, type OidcSettings } from '../../federation/settings.ts';
import type { ProviderRow } from '../../federation/providers.ts';
import type { ExternalAssertion } from '../../federation/assertion.ts';
import { FederationError } from '../../federation/errors.ts';

/** Discovery documents (and the JWKS openid-client caches with them) are kept this long. */
const DISCOVERY_TTL_MS = 3600_000;
/** Each call to the IdP (discovery, token, userinfo, JWKS) gives up after this many seconds. */
const IDP_TIMEOUT_SECONDS = 5;

/** The callback URL registered at the IdP for this provider. */
export const redirectUri = (publicUrl: string, slug: string) => `${publicUrl.replace(/\/$/, '')}/auth/idp/${slug}/callback`;

interface LoginRequest {
  id: string;
  flow_id: string;
  provider_id: string;
  nonce: string;
  verifier_sealed: string;
}

/** Is this failure the IdP being unreachable or broken (rather than its answer being wrong)? */
export function idpUnavailable(e: unknown): boolean {
  if (e instanceof oidc.ResponseBodyError) return e.status >= 500;
  if (e instanceof oidc.ClientError) return ['OAUTH_TIMEOUT', 'OAUTH_ABORT', 'OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON'].includes(e.code ?? '');
  // fetch's own failure (refused, reset, DNS): a TypeError without a Node argument-error code.
  return e instanceof TypeError && !(e as { code?: string }).code;
}

/**
 * The OIDC relying party (openid-client 6): authorization code flow with PKCE (S256), state and
 * nonce, RFC 9207 `iss` checked on the authorization response (mix-up defence: openid-client
 * refuses a response whose `iss` is not this provider's issuer, which oidc-provider and other
 * RFC 9207 servers always send), ID token validated (signature by the IdP's JWKS, iss, aud, exp,
 * nonce), userinfo read when the provider says so.
 */
export function createOidcClient(deps: { db: Db; clock: Clock; sealer: Sealer; publicUrl: string; production: boolean }) {
  const { db, clock, sealer } = deps;
  const cache = new Map<string, { key: string; at: number; config: Promise<oidc.Configuration> }>();

  /** The provider's discovered configuration, cached per provider version. */
  function configuration(p: ProviderRow): Promise<oidc.Configuration> {
    const key = `${p.id}:${p.updated_at.getTime()}`;
    const hit = cache.get(p.id);
    if (hit && hit.key === key && clock.now() - hit.at < DISCOVERY_TTL_MS) return hit.config;
    const s = p.settings as OidcSettings;
    // Checked again here, not only when saved: a row changed by hand cannot make production use http.
    if (!issuerAllowed(s.issuer, deps.production)) return Promise.reject(new FederationError('IDP_UNAVAILABLE', 'ISSUER_NOT_ALLOWED'));
    const secret = s.clientSecretSealed ? sealer.open(s.clientSecretSealed, clientSecretAad(p.id)).toString('utf8') : undefined;
    const auth = s.tokenAuthMethod === 'none' ? oidc.None() : s.tokenAuthMethod === 'client_secret_post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
    const insecure = new URL(s.issuer).protocol === 'http:';
    const config = oidc.discovery(new URL(s.issuer), s.clientId, { client_secret: secret }, auth, {
      timeout: IDP_TIMEOUT_SECONDS,
      // ID tokens' signatures are checked against the IdP's JWKS too (openid-client trusts a
      // token endpoint's TLS alone unless told): a token endpoint answer is no weaker than a JWT.
      execute: [...(insecure ? [oidc.allowInsecureRequests] : []), oidc.enableNonRepudiationChecks],
    });
    const entry = { key, at: clock.now(), config };
    cache.set(p.id, entry);
    // A failed discovery is not cached: the next login asks again.
    config.catch(() => {
      if (cache.get(p.id) === entry) cache.delete(p.id);
    });
    return config;
  }

  return {
    configuration,
    /**
     * Starts an authorization request for a login flow: a fresh state, nonce and PKCE verifier,
     * kept server-side (the verifier sealed) until the callback consumes them once.
     */
    async start(p: ProviderRow, o: { flowId: string; expiresAt: number; loginHint?: string | null }): Promise<string> {
      const s = p.settings as OidcSettings;
      let config: oidc.Configuration;
      try {
        config = await configuration(p);
      } catch (e) {
        if (e instanceof FederationError) throw e;
        throw new FederationError('IDP_UNAVAILABLE', 'DISCOVERY_FAILED', e);
      }
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const id = randomUUID();
      await db.query(
        `INSERT INTO idp_login_requests (id, state_hash, flow_id, provider_id, nonce, verifier_sealed, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [id, sha256(state), o.flowId, p.id, nonce, sealer.seal(verifier, `idp-request:${id}`), new Date(clock.now()), new Date(o.expiresAt)],
      );
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri(deps.publicUrl, p.slug),
        scope: s.scopes.join(' '),
        response_type: 'code',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...(o.loginHint ? { login_hint: o.loginHint } : {}),
      });
      return url.href;
    },

    /** The stored request a callback's `state` names (not yet consumed), or null. */
    async findRequest(state: string): Promise<LoginRequest | null> {
      const { rows } = await db.query<LoginRequest>(
        'SELECT id, flow_id, provider_id, nonce, verifier_sealed FROM idp_login_requests WHERE state_hash = $1',
        [sha256(state)],
      );
      return rows[0] ?? null;
    },

    /** Consumes a request once: a second callback with the same state (a replay, a race) gets false. */
    async consume(req: LoginRequest): Promise<boolean> {
      const r = await db.query('UPDATE idp_login_requests SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2', [req.id, new Date(clock.now())]);
      return r.rowCount === 1;
    },

    /**
     * Exchanges the code and validates everything the IdP answered; the verified claims become an
     * assertion. Throws FederationError: IDP_UNAVAILABLE when the IdP could not be reached or
     * failed, IDP_RESPONSE_INVALID when anything does not check out (wrong iss, nonce, PKCE, code).
     */
    async finish(p: ProviderRow, req: LoginRequest, state: string, query: URLSearchParams): Promise<ExternalAssertion> {
      const s = p.settings as OidcSettings;
      // The URL the IdP redirected to, rebuilt from our own base (behind a proxy the request's differs).
      const current = new URL(redirectUri(deps.publicUrl, p.slug));
      for (const [k, v] of query) current.searchParams.append(k, v);
      try {
        const config = await configuration(p);
        const tokens = await oidc.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: sealer.open(req.verifier_sealed, `idp-request:${req.id}`).toString('utf8'),
          expectedState: state,
          expectedNonce: req.nonce,
          idTokenExpected: true,
        });
        const idClaims = tokens.claims();
        if (!idClaims) throw new FederationError('IDP_RESPONSE_INVALID', 'NO_ID_TOKEN');
        let claims: Record<string, unknown> = { ...idClaims };
        if (s.useUserinfo) claims = { ...claims, ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)), sub: idClaims.sub };
        return toAssertion(p, s, String(idClaims.iss), claims);
      } catch (e) {
        if (e instanceof FederationError) throw e;
        const code = (e as { code?: string; error?: string }).error ?? (e as { code?: string }).code ?? (e as Error).name;
        throw new FederationError(idpUnavailable(e) ? 'IDP_UNAVAILABLE' : 'IDP_RESPONSE_INVALID', String(code).slice(0, 64), e);
      }
    },
  };
}

export type OidcClient = ReturnType<typeof createOidcClient>;

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** Verified claims → the normalized assertion, by the provider's claim mapping. */
export function toAssertion(p: ProviderRow, s: OidcSettings, issuer: string, claims: Record<string, unknown>): ExternalAssertion {
  const subject = str(claims[s.claims.subject]);
  if (!subject || subject.length > 255) throw new FederationError('IDP_RESPONSE_INVALID', 'NO_SUBJECT');
  const email = str(claims[s.claims.email])?.trim().toLowerCase() ?? null;
  const groupsClaim = claims[s.claims.groups];
  const groups = (Array.isArray(groupsClaim) ? groupsClaim : typeof groupsClaim === 'string' ? [groupsClaim] : []).filter((g): g is string => typeof g === 'string' && g.length <= 256).slice(0, 500);
  const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string').slice(0, 20) : [];
  const verified = claims[s.claims.emailVerified];
  return {
    providerId: p.id,
    protocol: 'oidc',
    issuer,
    subject,
    email: email && email.length <= 254 ? email : null,
    // Only an explicit true: a missing claim, "true" as text or anything else is not verified.
    emailVerified: verified === true,
    name: str(claims[s.claims.name])?.slice(0, 200) ?? null,
    groups,
    upstreamAmr: amr,
    upstreamAcr: str(claims.acr),
    authTime: typeof claims.auth_time === 'number' ? claims.auth_time : null,
  };
}
