import { Hono, type Context } from 'hono';
import { isAppError } from '../../errors.ts';
import { decisionAnswer, unauthenticatedChallenge } from '../../authz/decision.ts';
import { withSessionDeps } from '../../principals/index.ts';
import { hasHeaderCredential, type AnyPrincipal } from '../../principals/types.ts';
import type { RevocationList } from '../../session/revocation.ts';
import type { VerifyCache } from '../verify-cache.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

/**
 * Forward-auth for reverse proxies (nginx `auth_request`, Traefik ForwardAuth, Envoy ext_authz
 * HTTP service): `ALL /auth/verify`, any method since proxies forward the original one.
 *
 *   credential (the principal pipeline: session cookie, bearer, API key, …) → optional
 *   `X-Required-Permission` (in `X-Required-Namespace`) → 200 with identity headers | 401
 *   (`WWW-Authenticate`, RFC 9470 when a step-up would do) | 403 | 400 / 429 from an API key.
 *
 * Bodies are empty: proxies discard them. Decisions are the same as `POST /auth/authorize`
 * (same pipeline, same authorizer); verified session credentials are cached (verify-cache.ts)
 * and every answer, cached or not, checks the revocation deny-list first.
 */
export type VerifyServices = Services & { revocations: RevocationList; verifyCache: VerifyCache };

export interface VerifyOptions {
  /** Check the deny-list on cache hits too (default true): revocation is then immediate even if a broadcast was lost. */
  checkDenyListOnHit?: boolean;
}

export const AUTH_HEADERS = {
  user: 'X-Auth-User',
  email: 'X-Auth-Email',
  roles: 'X-Auth-Roles',
  amr: 'X-Auth-Amr',
  session: 'X-Auth-Session',
  credential: 'X-Auth-Credential',
} as const;

const PERMISSION_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_CREDENTIAL = 8192;

const NAMESPACE_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

type Outcome =
  | { status: 200; p: AnyPrincipal; roles: string[] }
  | { status: 400 | 403 | 429; headers?: Record<string, string> }
  | { status: 401; challenge: string };

export const verifyDocs = routeDocs('/auth/verify', 'Authorization', {
  'ALL /': {
    summary: 'Forward-auth for reverse proxies (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz)',
    description: 'Any method (proxies forward the original one). Bodies are empty. The same decision as POST /auth/authorize.',
    auth: 'session',
    headers: {
      'X-Required-Permission': 'A permission the request needs (A-Z a-z 0-9 _ . : -, at most 128)',
      'X-Required-Namespace': 'The namespace the permission is asked in: role bindings of that namespace count, with the global ones',
      'X-Original-URI': 'The original path, recorded when a denial is audited',
    },
    responses: {
      200: { description: 'Allowed; identity in the headers', headers: { 'X-Auth-User': 'User id', 'X-Auth-Email': 'Email (percent-encoded when not ASCII)', 'X-Auth-Roles': 'Comma-separated roles', 'X-Auth-Amr': 'Space-separated amr', 'X-Auth-Session': 'Session id (sessions only)', 'X-Auth-Credential': 'The machine credential, e.g. `api_key:<id>` (API keys and service accounts only)' } },
      400: { description: 'X-Required-Permission or X-Required-Namespace is malformed (a proxy misconfiguration), or an API key is malformed' },
      401: { description: 'No valid credential, or a step-up is needed', headers: { 'WWW-Authenticate': 'Bearer, with the RFC 9470 challenge when a step-up would do' } },
      403: { description: 'The permission is not granted, or an API key is used from an address outside its allow-list' },
      429: { description: "An API key's rate limit is spent, or too many wrong keys came from this address", headers: { 'Retry-After': 'Seconds' } },
      503: { description: 'The check could not be made (fail closed)' },
    },
  },
});

/** `undefined` when absent, `null` when malformed (a proxy misconfiguration: refuse, never ignore). */
export function readRequiredPermission(c: Context<Env>): string | null | undefined {
  const v = c.req.header('x-required-permission');
  if (v === undefined || v.trim() === '') return undefined;
  return PERMISSION_RE.test(v.trim()) ? v.trim() : null;
}

/** Same rule for `X-Required-Namespace`. */
export function readRequiredNamespace(c: Context<Env>): string | null | undefined {
  const v = c.req.header('x-required-namespace');
  if (v === undefined || v.trim() === '') return undefined;
  return NAMESPACE_RE.test(v.trim()) ? v.trim() : null;
}

/** Header values must be visible ASCII; anything else is percent-encoded (stops header injection). */
const headerValue = (v: string) => (/^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v));
const tokenList = (xs: string[], sep: string) => xs.filter((x) => /^[\x21-\x7e]+$/.test(x) && !x.includes(',')).join(sep);

function present(c: Context<Env>, o: Outcome) {
  c.header('Cache-Control', 'no-store');
  if (o.status === 200) {
    const { p } = o;
    c.header(AUTH_HEADERS.user, p.identityId);
    if (p.email !== undefined) c.header(AUTH_HEADERS.email, headerValue(p.email));
    c.header(AUTH_HEADERS.roles, tokenList(o.roles, ','));
    c.header(AUTH_HEADERS.amr, tokenList(p.amr, ' '));
    if (p.kind === 'session') c.header(AUTH_HEADERS.session, p.sessionId);
    else c.header(AUTH_HEADERS.credential, headerValue(`${p.kind}:${p.credentialId}`));
  }
  if (o.status === 401) c.header('WWW-Authenticate', o.challenge);
  if ('headers' in o && o.headers) for (const [k, v] of Object.entries(o.headers)) c.header(k, v);
  return c.body(null, o.status);
}

export function verifyRoutes(s: VerifyServices, options: VerifyOptions = {}) {
  // The app's pipeline, its session authenticators bound to these caches and options.
  const pipeline = withSessionDeps(s.principals, { ...s, checkDenyListOnHit: options.checkDenyListOnHit ?? true });
  const app = new Hono<Env>();

  // A proxy turns any non-2xx/401/403 into an error page: fail closed, bodiless, and log why.
  app.onError((err, c) => {
    s.logger.error({ err, requestId: c.get('requestId') }, 'forward-auth failed');
    c.header('Cache-Control', 'no-store');
    return c.body(null, 503);
  });

  app.all('/', async (c) => {
    const permission = readRequiredPermission(c);
    const namespace = readRequiredNamespace(c);
    if (permission === null || namespace === null) return present(c, { status: 400 });
    let p: AnyPrincipal | null;
    try {
      p = await pipeline.authenticate(c, 'forward');
    } catch (e) {
      // An API key's own refusals: malformed (400), outside its allow-list (403), rate limit (429).
      if (isAppError(e) && (e.status === 400 || e.status === 403 || e.status === 429)) return present(c, { status: e.status, headers: e.headers });
      if (isAppError(e) && e.status === 401) return present(c, { status: 401, challenge: unauthenticatedChallenge(true) });
      throw e;
    }
    if (!p) return present(c, { status: 401, challenge: unauthenticatedChallenge(hasHeaderCredential(c)) });
    if (permission !== undefined) {
      // Same authorizer as every route; the same refusal is audited once per window (a proxy asks on every request).
      const uri = (c.req.header('x-original-uri') ?? c.req.header('x-forwarded-uri') ?? '').split('?')[0].slice(0, 256);
      const { decision } = await s.authz.check(p, permission, { namespace, windowed: true, data: { via: 'forward_auth', ...(uri ? { uri } : {}) } });
      if (!decision.allow) {
        // Bodiless: an unknown permission is a plain 403 here (the audit names it PERMISSION_UNKNOWN).
        const a = decisionAnswer(decision);
        if (a.status === 403) return present(c, { status: 403 });
        return present(c, { status: 401, challenge: a.headers['WWW-Authenticate'] });
      }
    }
    // What the caller may do comes from the RBAC snapshot at the current version (a role change anywhere applies to the next request).
    const roles = await s.rbac.rolesOf(p.identityId);
    return present(c, { status: 200, p, roles });
  });

  return app;
}

/** Wire a cache to a revocation list: every process drops a revoked session's entries at once. */
export function clearCacheOnRevocation(revocations: RevocationList, cache: VerifyCache): () => void {
  return revocations.onRevoked((sid) => cache.clearSession(sid));
}
