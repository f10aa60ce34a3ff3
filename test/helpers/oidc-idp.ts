import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, importJWK } from 'jose';

/**
 * A real OpenID Provider on loopback: `oidc-provider` 9 (dev dependency) with its in-memory
 * adapter, PKCE required, one confidential client, and its own login and consent pages (plain
 * HTML forms, served by the interaction routes below) that a test drives with an HTTP client or a
 * browser. Accounts are plain objects the test may change between logins (groups, amr).
 */
export interface IdpAccount {
  password: string;
  email: string;
  emailVerified: boolean;
  name?: string;
  groups: string[];
  /** What the login result says was used (the ID token's `amr`), e.g. ['pwd', 'otp', 'mfa']. */
  amr?: string[];
  acr?: string;
}

interface Interaction {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, string>;
  session?: { accountId?: string };
  grantId?: string;
}
interface OidcGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, o?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: { new (o: { accountId: string; clientId: string }): OidcGrant; find(id: string): Promise<OidcGrant | undefined> };
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => Provider;
interface TokenCtx {
  oidc: { params: Record<string, string | undefined>; client: { clientId: string } };
  body: unknown;
}
/** What the password grant handler uses of oidc-provider's models (its documented registerGrantType extension point). */
interface PasswordGrantModels {
  registerGrantType(name: string, handler: (ctx: TokenCtx) => Promise<void>, params: string[]): void;
  AccessToken: new (o: Record<string, unknown>) => { save(): Promise<string>; expiration: number };
  IdToken: new (claims: Record<string, unknown>, o: { ctx: TokenCtx }) => { scope: string; issue(o: { use: 'idtoken' }): Promise<string> };
}
type OidcErrors = { InvalidGrant: new (description: string) => Error };
const PKG: string = 'oidc-provider';

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
const page = (title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startOidcIdp(o: { redirectUris: string[]; accounts: Record<string, IdpAccount>; clientId?: string; passwordGrant?: boolean }) {
  const mod = (await import(PKG)) as { default: ProviderCtor; errors: OidcErrors };
  const Provider = mod.default;
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = o.clientId ?? 'threshold';
  const clientSecret = randomBytes(24).toString('base64url');
  const jwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: `k-${randomBytes(4).toString('hex')}` };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: o.passwordGrant ? ['authorization_code', 'password'] : ['authorization_code'],
        response_types: ['code'],
        redirect_uris: o.redirectUris,
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    // The openid scope also says how and when the person authenticated (amr, acr, auth_time).
    claims: { acr: null, auth_time: null, sid: null, iss: null, openid: ['sub', 'amr', 'acr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Scope claims in the ID token too (Threshold also reads userinfo when configured to).
    conformIdTokenClaims: false,
    findAccount: async (_ctx: unknown, sub: string) => {
      const a = o.accounts[sub];
      if (!a) return undefined;
      return { accountId: sub, claims: async () => ({ sub, email: a.email, email_verified: a.emailVerified, name: a.name ?? sub, groups: [...a.groups] }) };
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
    ttl: { AccessToken: 600, IdToken: 600, AuthorizationCode: 60, Grant: 3600, Interaction: 600, Session: 3600 },
  });
  /** A password grant's ID token forged as a rogue token endpoint would: under a key not in the JWKS (same kid), or for another audience. */
  let tamper: 'foreign-key' | 'wrong-aud' | null = null;
  async function forged(sub: string, how: 'foreign-key' | 'wrong-aud') {
    const key = how === 'foreign-key' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : await importJWK(jwk, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ email: o.accounts[sub].email, email_verified: true })
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
      .setIssuer(issuer)
      .setAudience(how === 'wrong-aud' ? 'another-client' : clientId)
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(key);
  }
  /** Every password grant the token endpoint received (the test checks when none is made). */
  const passwordGrants: { username: string }[] = [];
  if (o.passwordGrant) {
    // The resource-owner password grant (not built into oidc-provider): registered through its
    // extension point; checks the account book by login or email, issues an access and an ID token.
    const models = provider as unknown as PasswordGrantModels;
    models.registerGrantType(
      'password',
      async (ctx) => {
        const username = ctx.oidc.params.username ?? '';
        passwordGrants.push({ username });
        const sub = Object.keys(o.accounts).find((k) => k === username || o.accounts[k].email.toLowerCase() === username.toLowerCase());
        const a = sub ? o.accounts[sub] : undefined;
        if (!sub || !a || a.password !== ctx.oidc.params.password) throw new mod.errors.InvalidGrant('wrong username or password');
        const scope = ctx.oidc.params.scope ?? 'openid';
        const at = new models.AccessToken({ accountId: sub, client: ctx.oidc.client, scope, gty: 'password' });
        const accessToken = await at.save();
        const idToken = new models.IdToken(
          { sub, email: a.email, email_verified: a.emailVerified, name: a.name ?? sub, groups: [...a.groups], amr: a.amr ?? ['pwd'], auth_time: Math.floor(Date.now() / 1000) },
          { ctx },
        );
        idToken.scope = scope;
        ctx.body = { access_token: accessToken, token_type: 'Bearer', expires_in: at.expiration, id_token: tamper ? await forged(sub, tamper) : await idToken.issue({ use: 'idtoken' }), scope };
      },
      ['username', 'password', 'scope'],
    );
  }
  const callback = provider.callback();
  let up = true;

  async function interaction(req: IncomingMessage, res: ServerResponse, path: string) {
    const [, , uid, action] = path.split('/');
    const html = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
      res.end(body);
    };
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return html(400, page('Error', '<p>interaction mismatch</p>'));
    if (req.method === 'GET') {
      if (details.prompt.name === 'login')
        return html(200, page('Sign in', `<form method="post" action="/interaction/${esc(uid)}/login">
          <label>Login <input name="login" id="login" autocomplete="username"></label>
          <label>Password <input name="password" id="password" type="password"></label>
          <button type="submit" id="submit">Sign in</button></form>
          <form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit" id="cancel">Cancel</button></form>`));
      return html(200, page('Allow access', `<p>${esc(details.params.client_id)} asks for ${esc(details.params.scope ?? '')}</p>
        <form method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit" id="allow">Allow</button></form>`));
    }
    const body = await form(req);
    if (action === 'abort') return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled' }, { mergeWithLastSubmission: false });
    if (action === 'login') {
      const login = body.get('login') ?? '';
      const a = o.accounts[login];
      if (!a || a.password !== body.get('password')) return html(200, page('Sign in', '<p id="error">Wrong login or password</p>'));
      return provider.interactionFinished(req, res, { login: { accountId: login, ...(a.amr ? { amr: a.amr } : {}), ...(a.acr ? { acr: a.acr } : {}) } }, { mergeWithLastSubmission: false });
    }
    if (action === 'confirm') {
      const accountId = details.session?.accountId as string;
      const grant = details.grantId ? ((await provider.Grant.find(details.grantId)) as OidcGrant) : new provider.Grant({ accountId, clientId: details.params.client_id });
      const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [ind, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(ind, scopes.join(' '));
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    }
    html(404, page('Not found', ''));
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // "Down": every connection is dropped, as a crashed IdP behind a load balancer would.
    if (!up) return req.socket.destroy();
    const path = (req.url ?? '/').split('?')[0];
    if (path.startsWith('/interaction/'))
      return void interaction(req, res, path).catch((e: Error) => {
        res.writeHead(500);
        res.end(e.message);
      });
    callback(req, res);
  });

  return {
    issuer,
    clientId,
    clientSecret,
    accounts: o.accounts,
    passwordGrants,
    /** Makes the password grant answer a forged ID token (null: genuine ones again). */
    tamperPasswordGrant(v: 'foreign-key' | 'wrong-aud' | null) {
      tamper = v;
    },
    /** Simulate an outage (connections dropped) and recovery. */
    setUp(v: boolean) {
      up = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
export type OidcIdp = Awaited<ReturnType<typeof startOidcIdp>>;

/**
 * A browser for the round trip: a cookie jar per host (Threshold and the IdP are both on
 * 127.0.0.1, so cookies are keyed by origin here, as a browser keys them by site and path), and
 * manual redirects so a test sees each hop.
 */
export class Browser {
  jars = new Map<string, Map<string, string>>();
  constructor(public headers: Record<string, string> = {}) {}
  private jar(url: string) {
    const origin = new URL(url).origin;
    let j = this.jars.get(origin);
    if (!j) this.jars.set(origin, (j = new Map()));
    return j;
  }
  cookie(url: string, name: string) {
    return this.jar(url).get(name);
  }
  async fetch(url: string, init: { method?: string; body?: string | URLSearchParams; headers?: Record<string, string> } = {}) {
    const jar = this.jar(url);
    const h: Record<string, string> = { ...this.headers, ...init.headers };
    if (jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.body instanceof URLSearchParams) h['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method: init.method ?? 'GET', headers: h, body: init.body?.toString(), redirect: 'manual' });
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      const k = pair.slice(0, i).trim();
      const v = pair.slice(i + 1);
      if (v === '' || /max-age=0|expires=Thu, 01 Jan 1970/i.test(sc)) jar.delete(k);
      else jar.set(k, v);
    }
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, text, json, url };
  }
  /** Follows redirects (GET) until an answer that is not one, or until `stopAt` matches a Location. */
  async follow(url: string, stopAt?: (location: string) => boolean, init?: Parameters<Browser['fetch']>[1]) {
    let r = await this.fetch(url, init);
    for (let i = 0; i < 10 && r.status >= 300 && r.status < 400 && r.location; i++) {
      const next = new URL(r.location, r.url).href;
      if (stopAt?.(next)) return { ...r, location: next };
      r = await this.fetch(next);
    }
    return r;
  }
}

/**
 * Drives the IdP's own pages for a login that the browser was sent to: the login form (login and
 * password posted), then the consent form if asked; answers the redirect back to the relying
 * party (the callback URL with code, state and iss), not yet followed.
 */
export async function signInAtIdp(b: Browser, authorizationUrl: string, login: string, password: string, opts: { cancel?: boolean } = {}): Promise<string> {
  const isCallback = (l: string) => l.includes('/auth/idp/');
  let r = await b.follow(authorizationUrl, isCallback);
  for (let step = 0; step < 6; step++) {
    if (r.location && isCallback(r.location)) return r.location;
    const action = /<form method="post" action="([^"]+)"/.exec(r.text)?.[1];
    if (r.status !== 200 || !action) throw new Error(`IdP page not understood: ${r.status} ${r.text.slice(0, 200)}`);
    const origin = new URL(r.url).origin;
    const target = r.text.includes('/login"') ? (opts.cancel ? action.replace(/\/login$/, '/abort') : action) : action;
    const body = target.endsWith('/login') ? new URLSearchParams({ login, password }) : new URLSearchParams();
    r = await b.follow(new URL(target, origin).href, isCallback, { method: 'POST', body });
  }
  throw new Error('the IdP never redirected back');
}
