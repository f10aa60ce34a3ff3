import type { Context } from 'hono';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import { deviceId } from '../../http/middleware/client.ts';
import type { Env, Services } from '../../http/services.ts';
import { presentSamlSettings, SamlSettingsInputSchema, storeSamlSettings } from '../methods/saml/protocol.ts';
import { samlSettingsSchema, type SamlSettings } from '../methods/saml/settings.ts';
import { createSamlStore } from '../methods/saml/store.ts';
import { createSamlStarter } from '../methods/saml/start.ts';
import { samlRoutes } from '../methods/saml/routes.ts';
import { registerProtocol } from './settings.ts';
import { answerCallback, failCallback, resumeWithAssertion } from './callback.ts';
import type { ProtocolStarter } from './federation.ts';

/**
 * The SAML 2.0 service provider (src/authn/methods/saml/) plugged into federation: its settings
 * schema in the provider store (type `saml`; nothing secret), its AuthnRequest as the start of an
 * `idp` login, and its routes (/auth/saml/:slug/metadata, acs, complete) resuming the flow
 * through the same `resumeWithAssertion` as the OIDC callback.
 */
registerProtocol<ReturnType<typeof SamlSettingsInputSchema.parse>, SamlSettings & Record<string, unknown>>('saml', {
  input: SamlSettingsInputSchema,
  store: (input, ctx) => storeSamlSettings(input, { production: ctx.production }) as SamlSettings & Record<string, unknown>,
  present: (s) => presentSamlSettings(s),
});

export function createSamlSide(deps: { db: Db; clock: Clock }) {
  const store = createSamlStore(deps.db, deps.clock);
  const start = createSamlStarter({ store, clock: deps.clock });
  const starter: ProtocolStarter = (p, o) => start({ id: p.id, slug: p.slug, settings: p.settings }, o);
  return { store, starter };
}

/** /auth/saml: the SAML routes with the federation behind them. */
export function samlMount(s: Services) {
  return samlRoutes({
    store: s.federation.saml.store,
    clock: s.clock,
    async provider(slug) {
      const p = await s.federation.providers.bySlug(slug);
      return p && p.type === 'saml' ? { id: p.id, slug: p.slug, enabled: p.enabled, settings: samlSettingsSchema.parse(p.settings) } : null;
    },
    client: (c) => ({ deviceId: deviceId(c, s.config.secureCookies, false) }),
    fail: (o) => failCallback(s, o),
    async resume(c, flowId, assertion, client) {
      const { flow, completion } = await resumeWithAssertion(s.login, flowId, assertion, client);
      return answerCallback(c as Context<Env>, s, flow, completion);
    },
  });
}
