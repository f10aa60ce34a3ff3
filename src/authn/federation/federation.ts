import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import type { Sealer } from '../../crypto/seal.ts';
import type { Audit } from '../../audit/audit.ts';
import type { MfaMethod } from '../../../machines/types.ts';
import type { IdpStart } from '../../../machines/login.machine.ts';
import { createProviderStore, type ProviderRow } from './providers.ts';
import { createOrganisationStore } from './organisations.ts';
import { createIdentityResolver } from './identities.ts';
import { isAssertion, type FederatedResult } from './assertion.ts';
import { FederationError } from './errors.ts';
import { createOidcClient } from '../methods/oidc/client.ts';
import { createSamlSide } from './saml.ts';
import { createUpstreamPassword } from './upstream-password.ts';
import type { PasswordResult } from '../../../machines/types.ts';

/**
 * Begins a login at an IdP of one protocol: answers the URL to send the browser to. A protocol
 * registers one (OIDC here; SAML: its HTTP-Redirect AuthnRequest).
 */
export type ProtocolStarter = (p: ProviderRow, o: { flowId: string; expiresAt: number; loginHint: string | null }) => Promise<string>;

/** Federation: identity providers, organisations, per-protocol login starts and identity resolution. */
export function createFederation(deps: {
  db: Db;
  clock: Clock;
  sealer: Sealer;
  audit: Audit;
  publicUrl: string;
  production: boolean;
  flowTtlSeconds: number;
  methodsOf: (identityId: string) => Promise<MfaMethod[]>;
  rolesChanged: () => Promise<void>;
  /** The password lockout (LOCKOUT_THRESHOLD, LOCKOUT_SECONDS), spent by upstream password checks too. */
  lockoutThreshold: number;
  lockoutSeconds: number;
}) {
  const { db, clock } = deps;
  const organisations = createOrganisationStore({ db, clock });
  const providers = createProviderStore({ db, clock, sealer: deps.sealer, production: deps.production, onChange: () => organisations.forgetPasswordDomains() });
  const resolver = createIdentityResolver({ db, clock, audit: deps.audit, methodsOf: deps.methodsOf, rolesChanged: deps.rolesChanged });
  const oidc = createOidcClient({ db, clock, sealer: deps.sealer, publicUrl: deps.publicUrl, production: deps.production });
  const saml = createSamlSide({ db, clock });
  const upstream = createUpstreamPassword({
    db,
    clock,
    audit: deps.audit,
    oidc,
    lockoutThreshold: deps.lockoutThreshold,
    lockoutSeconds: deps.lockoutSeconds,
    resolve: (a, providerId) => resolver.resolve(a, providerId),
  });
  const starters = new Map<string, ProtocolStarter>([
    ['oidc', (p, o) => oidc.start(p, o)],
    ['saml', saml.starter],
  ]);

  return {
    providers,
    organisations,
    oidc,
    saml,
    registerStarter(type: string, starter: ProtocolStarter) {
      starters.set(type, starter);
    },
    /** The login machine's `startIdp`: the enabled provider's authorization URL, or why not. */
    async start(o: { flowId: string; provider: string; loginHint: string | null }): Promise<IdpStart> {
      const p = await providers.bySlug(o.provider);
      const starter = p && starters.get(p.type);
      // Checked by the route before a flow exists; a provider disabled in between fails closed.
      if (!p || !p.enabled || !starter) return { ok: false, reason: 'IDP_UNAVAILABLE' };
      try {
        const url = await starter(p, { flowId: o.flowId, expiresAt: clock.now() + deps.flowTtlSeconds * 1000, loginHint: o.loginHint });
        return { ok: true, providerId: p.id, url };
      } catch (e) {
        const what = e instanceof FederationError ? e.what : 'START_FAILED';
        await deps.audit.append({ type: 'federation.failed', actor: `idp:${p.slug}`, reason: 'IDP_UNAVAILABLE', data: { provider: p.slug, flow: o.flowId, what } });
        return { ok: false, reason: 'IDP_UNAVAILABLE' };
      }
    },
    /**
     * The password step's upstream check (legacy `upstreamPassword`): null when the identifier's
     * organisation does not use it (the password is then checked locally).
     */
    async upstreamPassword(identifier: string, password: string): Promise<PasswordResult | null> {
      const slug = await organisations.passwordProviderFor(identifier);
      const p = slug ? await providers.bySlug(slug) : null;
      return p ? upstream.verify(p, identifier, password) : null;
    },
    /** The login machine's `resolveFederated`: the local identity for a verified assertion. */
    async resolve(o: { providerId: string; assertion: unknown }): Promise<FederatedResult> {
      if (!isAssertion(o.assertion)) return { ok: false, reason: 'PROVIDER_MISMATCH' };
      return resolver.resolve(o.assertion, o.providerId);
    },
  };
}

export type Federation = ReturnType<typeof createFederation>;
