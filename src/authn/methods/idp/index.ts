import { fromPromise } from 'xstate';
import type { FederatedOutcome, IdpStart } from '../../../../machines/login.machine.ts';
import type { MethodDescriptor } from '../registry.ts';
import type { PasswordResult } from '../../../../machines/types.ts';
import { idpRouteDocs, idpRoutes } from './routes.ts';

/**
 * What the login chart's federated branch calls (src/authn/federation/federation.ts implements it):
 * start a round trip at the provider named by slug, and resolve a verified assertion to a local identity.
 */
export interface IdpPort {
  start(o: { flowId: string; provider: string; loginHint: string | null }): Promise<IdpStart>;
  resolve(o: { providerId: string; assertion: unknown }): Promise<FederatedOutcome>;
  /** The password step's legacy upstream check (ROPC); null: not this identifier's, check locally. */
  upstreamPassword?(identifier: string, password: string): Promise<PasswordResult | null>;
}

const port = (p: IdpPort | undefined): IdpPort => {
  if (!p) throw new Error('federation is not configured');
  return p;
};

/**
 * Sign-in at an external identity provider (OIDC: ../oidc/; SAML plugs its protocol into the same
 * provider store, start and `resumeWithAssertion`): a first factor proven elsewhere. POST
 * /auth/login `{ method: 'idp', provider }` (or home-realm discovery) starts it; the flow rests at
 * step `redirect` while the browser is at the IdP; the protocol's callback verifies the answer and
 * sends `federated` (or `federation_failed`), events no client can send. amr: `fed`, plus `mfa`
 * only from a provider trusted for it whose answer proves MFA recently (../../federation/amr.ts).
 */
export const idp: MethodDescriptor = {
  id: 'idp',
  kind: 'first',
  methods: ['idp'],
  amr: ['fed', 'mfa'],
  events: [],
  steps: [{ step: 'redirect' }],
  loginActors: (d) => ({
    startIdp: fromPromise(async ({ input }) => port(d.idp).start(input)),
    resolveFederated: fromPromise(async ({ input }) => port(d.idp).resolve({ providerId: input.providerId, assertion: input.assertion })),
  }),
  routes: { mount: '/auth/idp', tag: 'Identity providers', docs: idpRouteDocs, app: idpRoutes },
  internalEvents: ['federated', 'federation_failed'],
};
