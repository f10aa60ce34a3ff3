import type { Logger } from '../../src/logger.ts';
import { freePort } from './nginx.ts';
import { IP, device, signInAdmin, startTestServer, type Client } from './server.ts';
import { Browser, signInAtIdp, startOidcIdp, type IdpAccount, type OidcIdp } from './oidc-idp.ts';

/**
 * Threshold on a known port (its PUBLIC_URL is the IdPs' redirect URI) beside real OpenID
 * Providers on loopback, one per slug, and the bootstrap admin signed in to configure them.
 * The IdPs share one account book the test edits (groups, amr).
 */
export async function startFederation(o: { slugs?: string[]; env?: Record<string, string>; passwordGrant?: boolean; logger?: Logger } = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t = await startTestServer({ PORT: String(port), PUBLIC_URL: url, FEDERATION_LANDING_URL: '/auth/me', ...o.env }, { logger: o.logger });
  const accounts: Record<string, IdpAccount> = {};
  const idps: Record<string, OidcIdp> = {};
  for (const slug of o.slugs ?? ['acme']) idps[slug] = await startOidcIdp({ redirectUris: [`${url}/auth/idp/${slug}/callback`], accounts, passwordGrant: o.passwordGrant });
  const admin: Client = await signInAdmin(t);
  /** Configures an OIDC provider for a running IdP through the admin API. */
  async function addProvider(slug: string, extra: Record<string, unknown> = {}, idp: OidcIdp = idps[slug]) {
    const r = await admin.post('/api/idps', {
      slug,
      type: 'oidc',
      displayName: `${slug} SSO`,
      jitProvisioning: true,
      ...extra,
      settings: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, scopes: ['openid', 'email', 'profile', 'groups'], ...(extra.settings as object) },
    });
    if (r.status !== 201) throw new Error(`provider ${slug}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as { id: string; slug: string };
  }
  return {
    t,
    url,
    idps,
    accounts,
    admin,
    addProvider,
    async close() {
      for (const i of Object.values(idps)) await i.close();
      await t.close();
    },
  };
}
export type FederationRig = Awaited<ReturnType<typeof startFederation>>;

/** A browser on its own device at an IP (London unless told). */
export const browser = (name: string, ip: string = IP.london) => new Browser({ 'x-forwarded-for': ip, 'x-device-id': device(name) });

/**
 * Starts an IdP login (POST /auth/login, method idp), signs in at the IdP's own pages and answers
 * the flow and the callback URL the IdP redirected the browser to (not yet followed).
 */
export async function idpRoundTrip(b: Browser, base: string, provider: string, login: string, password: string, opts: { cancel?: boolean; returnTokens?: boolean } = {}) {
  const start = await b.fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'idp', provider, ...(opts.returnTokens ? { returnTokens: true } : {}) }),
  });
  if (start.status !== 201 || start.json?.step !== 'redirect') throw new Error(`IdP start failed: ${start.status} ${start.text}`);
  const callback = await signInAtIdp(b, start.json.redirect.url, login, password, { cancel: opts.cancel });
  return { flow: start.json, callback };
}

/** Follows a callback as an API client would (JSON). */
export const finishJson = (b: Browser, callback: string) => b.fetch(callback, { headers: { accept: 'application/json' } });
