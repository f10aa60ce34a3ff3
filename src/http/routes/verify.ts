import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { decodeJwt } from 'jose';
import { authenticate, sessionCookieName } from '../middleware/auth.ts';
import { checkRequirement, stepUpChallenge, type Decision } from '../../rbac/rbac.ts';
import type { RevocationList } from '../../session/revocation.ts';
import type { VerifiedCredential, VerifyCache } from '../verify-cache.ts';
import { routeDocs } from '../openapi/doc.ts';
import { isAppError } from '../../errors.ts';
import { decideForWorkload, NAMESPACE_RE, workloadOf } from '../../authn/trusted-issuers/workload-http.ts';
import type { WorkloadPrincipal } from '../../authn/trusted-issuers/workload.ts';
import type { Env, Services } from '../services.ts';

/**
 * Forward-auth for reverse proxies (nginx `auth_request`, Traefik ForwardAuth, Envoy ext_authz
 * HTTP service): `ALL /auth/verify`, any method since proxies forward the original one.
 *
 *   credential (session cookie or bearer) → optional `X-Required-Permission` → 200 with identity
 *   headers | 401 (`WWW-Authenticate`, RFC 9470 when a step-up would do) | 403.
 *
 * Bodies are empty: proxies discard them. Decisions are the same as `POST /auth/authorize`
 * (same principal, same `checkRequirement`); verified credentials are cached (verify-cache.ts)
 * and every answer, cached or not, checks the revocation deny-list first.
 */
export type VerifyServices = Services & { revocations: RevocationList; verifyCache: VerifyCache };

export interface VerifyOptions {
  /** Check the deny-list on cache hits too (default true): revocation is then immediate even if a broadcast was lost. */
  checkDenyListOnHit?: boolean;
  /** The same denial (session, permission, outcome) is audited at most once per window. Default 5 min. */
  auditWindowMs?: number;
}

export const AUTH_HEADERS = {
  user: 'X-Auth-User',
  email: 'X-Auth-Email',
  roles: 'X-Auth-Roles',
  amr: 'X-Auth-Amr',
  session: 'X-Auth-Session',
  /** `service_account` for a workload token; absent for people. */
  kind: 'X-Auth-Kind',
} as const;

const PERMISSION_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_CREDENTIAL = 8192;

type Credential = { kind: 'cookie' | 'bearer'; key: string };
type Outcome =
  | { status: 200; entry: VerifiedCredential }
  | { status: 400 }
  | { status: 401; challenge: string }
  | { status: 403 };

export const verifyDocs = routeDocs('/auth/verify', 'Authorization', {
  'ALL /': {
    summary: 'Forward-auth for reverse proxies (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz)',
    description: 'Any method (proxies forward the original one). Bodies are empty. The same decision as POST /auth/authorize.',
    auth: 'session',
    headers: {
      'X-Required-Permission': 'A permission the request needs (A-Z a-z 0-9 _ . : -, at most 128)',
      'X-Original-URI': 'The original path, recorded when a denial is audited',
      'X-Required-Namespace': 'Workload (service-account) tokens: the namespace the request acts in; their roles apply only in their mapped namespaces',
    },
    responses: {
      200: { description: 'Allowed; identity in the headers', headers: { 'X-Auth-User': 'User id', 'X-Auth-Email': 'Email (percent-encoded when not ASCII)', 'X-Auth-Roles': 'Comma-separated roles', 'X-Auth-Amr': 'Space-separated amr', 'X-Auth-Session': 'Session id', 'X-Auth-Kind': '`service_account` for a workload token (then X-Auth-User is its subject)' } },
      400: { description: 'X-Required-Permission is malformed (a proxy misconfiguration)' },
      401: { description: 'No valid credential, or a step-up is needed', headers: { 'WWW-Authenticate': 'Bearer, with the RFC 9470 challenge when a step-up would do' } },
      403: { description: 'The permission is not granted' },
      503: { description: 'The check could not be made (fail closed)' },
    },
  },
});

/** The credential `authenticate` will use (bearer wins, as there), as a cache key. */
export function readCredential(c: Context<Env>, s: Services): Credential | null {
  const auth = c.req.header('authorization');
  if (auth !== undefined) return auth.length <= MAX_CREDENTIAL ? { kind: 'bearer', key: `bearer:${auth}` } : null;
  const cookie = getCookie(c, sessionCookieName(s.config.secureCookies));
  return cookie && cookie.length <= MAX_CREDENTIAL ? { kind: 'cookie', key: `cookie:${cookie}` } : null;
}

/** `undefined` when absent, `null` when malformed (a proxy misconfiguration: refuse, never ignore). */
export function readRequiredPermission(c: Context<Env>): string | null | undefined {
  const v = c.req.header('x-required-permission');
  if (v === undefined || v.trim() === '') return undefined;
  return PERMISSION_RE.test(v.trim()) ? v.trim() : null;
}

/** Stops use of a revoked or locked session through a cached verification. */
async function fromCache(s: VerifyServices, cred: Credential, opts: Required<VerifyOptions>): Promise<VerifiedCredential | null | undefined> {
  const hit = s.verifyCache.get(cred.key);
  if (!hit) return undefined;
  if (opts.checkDenyListOnHit && (await s.revocations.isRevoked(hit.principal.sessionId))) {
    s.verifyCache.clearSession(hit.principal.sessionId);
    return null;
  }
  return hit;
}

/** The full check on a cache miss: the same `authenticate` as every route, plus the deny-list. */
async function verifyFresh(c: Context<Env>, s: VerifyServices, cred: Credential): Promise<VerifiedCredential | null> {
  const p = await authenticate(c, s);
  if (!p) return null;
  // A bearer token authenticate() just verified is already cached, with its revocation checked.
  const entered = cred.kind === 'bearer' ? s.verifyCache.get(cred.key) : undefined;
  if (entered) return entered;
  const [revoked, session, user] = await Promise.all([
    s.revocations.isRevoked(p.sessionId),
    s.sessions.byId(p.sessionId),
    s.users.get(p.identityId),
  ]);
  if (revoked || !session || !user) return null;
  // Roles and permissions are filled from the RBAC snapshot on every answer, not cached here.
  const entry: VerifiedCredential = { principal: p, email: user.email, roles: [], permissions: [] };
  // Never cached beyond the token's exp or the session's idle or absolute expiry.
  let notAfter = Math.min(session.idleExpiresAt, session.absoluteExpiresAt);
  if (cred.kind === 'bearer') {
    const exp = decodeJwt(cred.key.slice('bearer:Bearer '.length)).exp;
    notAfter = typeof exp === 'number' ? Math.min(notAfter, exp * 1000) : 0;
  }
  s.verifyCache.set(cred.key, entry, notAfter);
  return entry;
}

/** Same decision as `rbac.authorize`, from the cached permission list. */
export function decide(entry: VerifiedCredential, permission: string | undefined, nowMs: number): Decision {
  if (permission === undefined) return { allow: true };
  const granted = entry.permissions.find((x) => x.name === permission);
  if (!granted) return { allow: false, code: 'PERMISSION_DENIED' };
  return checkRequirement(entry.principal, granted.requirement, Math.floor(nowMs / 1000));
}

/** Header values must be visible ASCII; anything else is percent-encoded (stops header injection). */
const headerValue = (v: string) => (/^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v));
const tokenList = (xs: string[], sep: string) => xs.filter((x) => /^[\x21-\x7e]+$/.test(x) && !x.includes(',')).join(sep);

function present(c: Context<Env>, o: Outcome) {
  c.header('Cache-Control', 'no-store');
  if (o.status === 200) {
    const e = o.entry;
    c.header(AUTH_HEADERS.user, e.principal.identityId);
    c.header(AUTH_HEADERS.email, headerValue(e.email));
    c.header(AUTH_HEADERS.roles, tokenList(e.roles, ','));
    c.header(AUTH_HEADERS.amr, tokenList(e.principal.amr, ' '));
    c.header(AUTH_HEADERS.session, e.principal.sessionId);
  }
  if (o.status === 401) c.header('WWW-Authenticate', o.challenge);
  return c.body(null, o.status);
}

/**
 * Audits denials of a known principal, once per (session, permission, outcome) and window: a
 * proxy asks on every request, and a page reloaded in a loop must not flood the audit chain.
 * Anonymous 401s are not audited at all (every unauthenticated hit of a protected site).
 */
function denialAuditor(s: Services, windowMs: number, max = 10_000) {
  const seen = new Map<string, number>();
  return (c: Context<Env>, entry: VerifiedCredential, permission: string, reason: string) => {
    const now = s.clock.now();
    const k = `${entry.principal.sessionId}\n${permission}\n${reason}`;
    const last = seen.get(k);
    if (last !== undefined && now - last < windowMs) return;
    seen.delete(k);
    seen.set(k, now);
    while (seen.size > max) seen.delete(seen.keys().next().value as string);
    // The original path only: a query string may carry secrets.
    const uri = (c.req.header('x-original-uri') ?? c.req.header('x-forwarded-uri') ?? '').split('?')[0].slice(0, 256);
    void s.audit
      .append({
        type: 'authorization.denied',
        actor: entry.principal.identityId,
        subject: permission,
        reason,
        data: { session: entry.principal.sessionId, via: 'forward_auth', ...(uri ? { uri } : {}) },
      })
      .catch((err) => s.logger.error({ err }, 'audit of a forward-auth denial failed'));
  };
}

export function verifyRoutes(s: VerifyServices, options: VerifyOptions = {}) {
  const opts: Required<VerifyOptions> = { checkDenyListOnHit: options.checkDenyListOnHit ?? true, auditWindowMs: options.auditWindowMs ?? 5 * 60_000 };
  const auditDenial = denialAuditor(s, opts.auditWindowMs);
  const app = new Hono<Env>();

  // A proxy turns any non-2xx/401/403 into an error page: fail closed, bodiless, and log why.
  app.onError((err, c) => {
    s.logger.error({ err, requestId: c.get('requestId') }, 'forward-auth failed');
    c.header('Cache-Control', 'no-store');
    return c.body(null, 503);
  });

  app.all('/', async (c) => {
    const cred = readCredential(c, s);
    if (!cred) return present(c, { status: 401, challenge: 'Bearer' });
    const permission = readRequiredPermission(c);
    if (permission === null) return present(c, { status: 400 });

    // A workload (service-account) token: its mapped roles, in its namespaces only (X-Required-Namespace).
    if (cred.kind === 'bearer') {
      const w = await verifyWorkload(c, s, permission);
      if (w) return w;
    }
    let cached = await fromCache(s, cred, opts);
    if (cached === undefined) cached = await verifyFresh(c, s, cred);
    if (!cached) return present(c, { status: 401, challenge: cred.kind === 'bearer' ? 'Bearer error="invalid_token"' : 'Bearer' });
    // Who the caller is comes from the cache; what they may do from the RBAC snapshot, at the
    // current version (a role change anywhere applies to the next request).
    const entry: VerifiedCredential = { ...cached, ...(await s.rbac.accessOf(cached.principal.identityId)) };

    const d = decide(entry, permission, s.clock.now());
    if (d.allow) return present(c, { status: 200, entry });
    auditDenial(c, entry, permission!, d.code);
    if (d.code === 'PERMISSION_DENIED') return present(c, { status: 403 });
    return present(c, { status: 401, challenge: stepUpChallenge(d) });
  });

  return app;
}

/**
 * Forward-auth for a workload token (null when the bearer is not one): 200 with `X-Auth-Kind:
 * service_account`, the subject and roles; 401 when it fails verification; 403 outside its
 * namespaces or roles; 400 for a malformed `X-Required-Namespace`.
 */
async function verifyWorkload(c: Context<Env>, s: VerifyServices, permission: string | undefined) {
  let p: WorkloadPrincipal | null;
  try {
    p = await workloadOf(c, s);
  } catch (e) {
    if (isAppError(e) && e.code === 'UNAUTHENTICATED') return present(c, { status: 401, challenge: 'Bearer error="invalid_token"' });
    throw e;
  }
  if (!p) return null;
  const ns = c.req.header('x-required-namespace')?.trim() || undefined;
  if (ns !== undefined && !NAMESPACE_RE.test(ns)) return present(c, { status: 400 });
  if (permission !== undefined) {
    const d = await decideForWorkload(s, p, permission, ns, 'forward_auth');
    if (!d.allow) return present(c, { status: 403 });
  }
  c.header('Cache-Control', 'no-store');
  c.header(AUTH_HEADERS.user, headerValue(p.subject));
  c.header(AUTH_HEADERS.roles, tokenList(p.roles, ','));
  c.header(AUTH_HEADERS.kind, p.kind);
  return c.body(null, 200);
}

/** Wire a cache to a revocation list: every process drops a revoked session's entries at once. */
export function clearCacheOnRevocation(revocations: RevocationList, cache: VerifyCache): () => void {
  return revocations.onRevoked((sid) => cache.clearSession(sid));
}
