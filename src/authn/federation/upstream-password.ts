import * as oidc from 'openid-client';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import type { Audit } from '../../audit/audit.ts';
import type { PasswordResult } from '../../../machines/types.ts';
import { clearAfterSuccess, decoyAttempt, reserveAttempt, settleFailure } from '../../auth/lockout.ts';
import { normalizeIdentifier } from '../methods/password/password.ts';
import { idpUnavailable, toAssertion, type OidcClient } from '../methods/oidc/client.ts';
import type { OidcSettings } from './settings.ts';
import type { ProviderRow } from './providers.ts';
import type { ExternalAssertion, FederatedResult } from './assertion.ts';
import { FederationError } from './errors.ts';

/**
 * The legacy upstream password check (the Auth0 + database design; OAuth 2.1 removes the grant):
 * for an organisation whose provider has `upstreamPassword`, the password step sends the
 * identifier and password to the provider's token endpoint (resource-owner password grant) and,
 * when the provider answers with a valid ID token (iss, aud, exp and its signature by the
 * provider's JWKS, checked by openid-client), resolves the local identity exactly as a federated
 * login does (link, JIT, verified-email link). The rest of the login is the password path: the
 * same lockout counter on the local account, risk, step-up, amr `pwd`.
 *
 * The password travels to the provider only: never stored, logged, audited, or kept in the flow.
 */
export function createUpstreamPassword(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  oidc: OidcClient;
  lockoutThreshold: number;
  lockoutSeconds: number;
  resolve(a: ExternalAssertion, providerId: string): Promise<FederatedResult>;
}) {
  const { db, clock } = deps;
  const fail = (identityId: string | null, accountLocked = false): PasswordResult => ({ ok: false, identityId, methods: [], accountLocked });

  /** The provider's answer: the verified assertion, null for a refused grant, or a FederationError thrown. */
  async function grant(p: ProviderRow, username: string, password: string): Promise<ExternalAssertion | null> {
    const s = p.settings as OidcSettings;
    try {
      const config = await deps.oidc.configuration(p);
      const tokens = await oidc.genericGrantRequest(config, 'password', { username, password, scope: s.scopes.join(' ') });
      const claims = tokens.claims();
      if (!claims) throw new FederationError('IDP_RESPONSE_INVALID', 'NO_ID_TOKEN');
      return toAssertion(p, s, String(claims.iss), { ...claims });
    } catch (e) {
      // Wrong password and unknown user alike (RFC 6749 §5.2): answered as a wrong password here.
      if (e instanceof oidc.ResponseBodyError && e.error === 'invalid_grant') return null;
      if (e instanceof FederationError) throw e;
      const code = (e as { error?: string }).error ?? (e as { code?: string }).code ?? (e as Error).name;
      // The cause is dropped: nothing of the request (the password) can reach a log through it.
      throw new FederationError(idpUnavailable(e) ? 'IDP_UNAVAILABLE' : 'IDP_RESPONSE_INVALID', String(code).slice(0, 64));
    }
  }

  /**
   * Checks a password at the provider. Stops guessing through us the way the local check does:
   * the attempt is counted on the local account atomically before the provider is asked (a burst
   * cannot all read "unlocked"); a locked account is refused without asking the provider; an
   * identifier with no local account spends a decoy row. Fails closed: a provider that cannot be
   * reached or answers something invalid throws (the step answers SERVICE_UNAVAILABLE, no
   * session) and the attempt is given back, so an outage locks no one.
   */
  async function verify(p: ProviderRow, identifier: string, password: string): Promise<PasswordResult> {
    const email = normalizeIdentifier(identifier);
    const now = clock.now();
    const row = (await db.query<{ id: string }>('SELECT id FROM identities WHERE email = $1', [email])).rows[0];
    const decoy = row ? null : decoyAttempt(db);
    let count: number | undefined;
    if (decoy) await decoy.reserve();
    else count = await reserveAttempt(db, row.id, 'failed_attempts', now);
    if (row && (count === undefined || count > deps.lockoutThreshold)) {
      await settleFailure(db, row.id, 'failed_attempts', deps.lockoutThreshold, now, deps.lockoutSeconds);
      return fail(row.id, true);
    }
    let assertion: ExternalAssertion | null;
    try {
      assertion = await grant(p, email, password);
    } catch (e) {
      if (row) await db.query('UPDATE identities SET failed_attempts = greatest(failed_attempts - 1, 0) WHERE id = $1 AND locked_at IS NULL', [row.id]);
      const f = e as FederationError;
      await deps.audit.append({ type: 'federation.failed', actor: `idp:${p.slug}`, subject: row?.id ?? null, reason: f.code, data: { provider: p.slug, flow: null, what: `PASSWORD_GRANT:${f.what}` } });
      throw e;
    }
    const resolved = assertion ? await deps.resolve(assertion, p.id) : null;
    if (!resolved?.ok) {
      // A wrong password, or a right one for a person who may not sign in here (refusal audited).
      if (decoy) {
        await decoy.settle();
        return fail(null);
      }
      const lockedNow = await settleFailure(db, row!.id, 'failed_attempts', deps.lockoutThreshold, now, deps.lockoutSeconds);
      return fail(row!.id, lockedNow);
    }
    // A lock that landed meanwhile (a burst's, an administrator's) wins over this success.
    if (row && !(await clearAfterSuccess(db, row.id, 'failed_attempts'))) return fail(row.id, true);
    return { ok: true, identityId: resolved.identityId, methods: resolved.methods, accountLocked: false };
  }

  return { verify };
}
