import type { Clock } from '../../../clock.ts';
import { samlSettingsSchema } from './settings.ts';
import { buildAuthnRequest } from './sp.ts';
import type { SamlStore } from './store.ts';

/** The IdP a login is sent to: its id and its stored (validated) settings. */
export interface SamlProviderRef {
  id: string;
  slug: string;
  settings: unknown;
}

/** An AuthnRequest's answer is accepted at most this long, and never after the flow ends. */
export const SAML_REQUEST_MAX_TTL_SECONDS = 600;

/**
 * Begins a login at a SAML IdP: records the AuthnRequest (its ID is what the response must name,
 * once) against the flow and answers the HTTP-Redirect URL. The recorded lifetime ends with the
 * flow, so a response arriving after the flow expired is refused as REQUEST_EXPIRED.
 */
export function createSamlStarter(deps: { store: SamlStore; clock: Clock; purgeEvery?: number }) {
  let started = 0;
  return async (p: SamlProviderRef, o: { flowId: string; expiresAt: number }): Promise<string> => {
    // Expired requests and handles answer nothing (a late response is refused either way): every
    // so many starts, this process deletes them, so the tables stay the size of the live logins.
    if (++started % (deps.purgeEvery ?? 200) === 0) await deps.store.purgeExpired();
    const settings = samlSettingsSchema.parse(p.settings);
    const { id, url } = await buildAuthnRequest(settings);
    const ttl = Math.min(SAML_REQUEST_MAX_TTL_SECONDS, Math.ceil((o.expiresAt - deps.clock.now()) / 1000));
    if (ttl <= 0) throw new Error('the flow has expired');
    await deps.store.recordRequest({ id, providerId: p.id, flowId: o.flowId, ttlSeconds: ttl });
    return url;
  };
}
