import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { AppError } from '../../errors.ts';
import { checkRequirement, decisionError, type Principal } from '../../rbac/rbac.ts';
import type { Env, Services } from '../services.ts';

export const sessionCookieName = (secure: boolean) => (secure ? '__Host-threshold_session' : 'threshold_session');

/**
 * Who is calling: a session cookie (sliding its idle window) or a bearer access token whose
 * session (`sid`) must still be live. Stops use of unknown, expired or revoked credentials.
 */
export async function authenticate(c: Context<Env>, s: Services, mode: 'activity' | 'check' = 'activity'): Promise<Principal | null> {
  const cached = c.get('principal');
  if (cached) return cached;
  const auth = c.req.header('authorization');
  let p: Principal | null = null;
  if (auth !== undefined) {
    const m = /^Bearer ([A-Za-z0-9_.-]{20,4096})$/.exec(auth);
    if (!m) return null;
    // A token verified recently (its signature, its session) is known by its hash: no signature
    // check and no session read per request. The entry never outlives the token's exp or the
    // session's expiry, and revocation is still checked below on every request.
    const key = `bearer:${auth}`;
    const hit = s.verifyCache.get(key);
    if (hit) {
      p = hit.principal;
    } else {
      try {
        const claims = await s.tokens.verify(m[1]);
        const [session, user] = await Promise.all([s.sessions.byId(claims.sid), s.users.get(claims.sub)]);
        if (!session || session.identityId !== claims.sub || !user) return null;
        p = {
          identityId: claims.sub,
          sessionId: claims.sid,
          amr: claims.amr,
          authTime: claims.auth_time,
          factorTimes: Object.fromEntries(claims.amr.map((a) => [a, session.factorTimes[a] ?? claims.auth_time])),
        };
        s.verifyCache.set(key, { principal: p, email: user.email, roles: [], permissions: [] }, Math.min(claims.exp * 1000, session.idleExpiresAt, session.absoluteExpiresAt));
      } catch {
        return null;
      }
    }
    c.set('via', 'bearer');
  } else {
    const token = getCookie(c, sessionCookieName(s.config.secureCookies));
    if (!token) return null;
    const session = await s.sessions.authenticate(token, mode);
    if (!session) return null;
    p = {
      identityId: session.identityId,
      sessionId: session.id,
      amr: session.amr,
      authTime: session.authTime,
      factorTimes: session.factorTimes,
    };
    c.set('via', 'cookie');
  }
  // The deny-list answers at once for every process, even before the row is seen as revoked here.
  if (await s.revocations.isRevoked(p.sessionId)) {
    s.verifyCache.clearSession(p.sessionId);
    return null;
  }
  c.set('principal', p);
  return p;
}

export async function requirePrincipal(c: Context<Env>, s: Services, mode: 'activity' | 'check' = 'activity'): Promise<Principal> {
  const p = await authenticate(c, s, mode);
  if (!p) throw new AppError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': 'Bearer' } });
  return p;
}

/**
 * Stops sensitive changes (removing a factor, new recovery codes) by a session without a recent
 * second factor: answers 401 with the RFC 9470 challenge the client can satisfy by step-up.
 */
export async function requireFreshMfa(c: Context<Env>, s: Services, maxAge = 900): Promise<Principal> {
  const p = await requirePrincipal(c, s);
  const d = checkRequirement(p, { amr: ['mfa'], maxAge }, Math.floor(s.clock.now() / 1000));
  if (d.allow) return p;
  throw decisionError(d);
}

/** Stops non-administrators from using admin routes. */
export async function requirePermission(c: Context<Env>, s: Services, permission: string): Promise<Principal> {
  const p = await requirePrincipal(c, s);
  const d = await s.rbac.authorize(p, permission);
  if (!d.allow) {
    await s.audit.append({ type: 'authorization.denied', actor: p.identityId, subject: permission, reason: d.code, data: { route: c.req.path } });
    throw decisionError(d);
  }
  return p;
}
