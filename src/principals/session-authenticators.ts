import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Config } from '../config/config.ts';
import type { UserService } from '../identity/users.ts';
import type { SessionService } from '../session/sessions.ts';
import type { RevocationList } from '../session/revocation.ts';
import type { TokenService } from '../tokens/access-token.ts';
import type { VerifyCache } from '../http/verify-cache.ts';
import { hasHeaderCredential, type Authenticator, type SessionPrincipal } from './types.ts';

export const sessionCookieName = (secure: boolean) => (secure ? '__Host-threshold_session' : 'threshold_session');

interface Deps {
  config: Pick<Config, 'secureCookies'>;
  sessions: SessionService;
  tokens: TokenService;
  users: UserService;
  revocations: RevocationList;
  verifyCache: VerifyCache;
  /** Ask the deny-list on cache hits too (default true): revocation is then immediate even if a broadcast was lost. */
  checkDenyListOnHit?: boolean;
}

const BEARER = /^Bearer ([A-Za-z0-9_.-]{20,4096})$/;
const MAX_COOKIE = 8192;

/** The deny-list answers at once for every process, even before the row is seen as revoked here. */
async function live(d: Deps, p: SessionPrincipal, hit = false): Promise<SessionPrincipal | null> {
  if (hit && d.checkDenyListOnHit === false) return p;
  if (await d.revocations.isRevoked(p.sessionId)) {
    d.verifyCache.clearSession(p.sessionId);
    return null;
  }
  return p;
}

/**
 * The session cookie (sliding its idle window, unless `check`). Never read when the request
 * carries a credential in a header: a browser cannot be made to send one cross-site, which is
 * what the CSRF middleware relies on. Forward-auth (`forward`) answers from the verified-credential
 * cache: no session read per request, the deny-list still asked on every one.
 * Stops use of unknown, expired, locked or revoked sessions.
 */
export function sessionCookieAuthenticator(d: Deps): Authenticator {
  const read = (c: Context) => (hasHeaderCredential(c) ? undefined : getCookie(c, sessionCookieName(d.config.secureCookies)));
  return {
    name: 'session_cookie',
    presented: (c) => read(c) !== undefined,
    async authenticate(c, mode) {
      const token = read(c);
      if (!token || token.length > MAX_COOKIE) return null;
      const key = `cookie:${token}`;
      if (mode === 'forward') {
        const hit = d.verifyCache.get(key);
        if (hit) return live(d, { ...(hit.principal as SessionPrincipal), kind: 'session', via: 'cookie', email: hit.email }, true);
      }
      const session = await d.sessions.authenticate(token, mode === 'check' ? 'check' : 'activity');
      if (!session) return null;
      const p: SessionPrincipal = {
        kind: 'session',
        via: 'cookie',
        identityId: session.identityId,
        sessionId: session.id,
        amr: session.amr,
        authTime: session.authTime,
        factorTimes: session.factorTimes,
      };
      if (mode === 'forward') {
        const user = await d.users.get(p.identityId);
        if (!user) return null;
        p.email = user.email;
        // Never cached beyond the session's idle or absolute expiry.
        d.verifyCache.set(key, { principal: p, email: user.email, roles: [], permissions: [] }, Math.min(session.idleExpiresAt, session.absoluteExpiresAt));
      }
      return live(d, p);
    },
  };
}

/**
 * `Authorization: Bearer <access token>` (RFC 9068) whose session (`sid`) must still be live.
 * A token verified recently (its signature, its session) is known by its hash: no signature
 * check and no session read per request. The entry never outlives the token's exp or the
 * session's expiry, and revocation is still checked on every request. A bearer token that is not
 * one of ours answers nothing, so a later authenticator (service-account tokens) may claim it.
 */
export function bearerTokenAuthenticator(d: Deps): Authenticator {
  return {
    name: 'bearer_access_token',
    presented: (c) => /^Bearer /.test(c.req.header('authorization') ?? ''),
    async authenticate(c) {
      const auth = c.req.header('authorization');
      const m = auth === undefined ? null : BEARER.exec(auth);
      if (!m) return null;
      const key = `bearer:${auth}`;
      const hit = d.verifyCache.get(key);
      if (hit) return live(d, { ...(hit.principal as SessionPrincipal), kind: 'session', via: 'bearer', email: hit.email }, true);
      try {
        const claims = await d.tokens.verify(m[1]);
        const [session, user] = await Promise.all([d.sessions.byId(claims.sid), d.users.get(claims.sub)]);
        if (!session || session.identityId !== claims.sub || !user) return null;
        const p: SessionPrincipal = {
          kind: 'session',
          via: 'bearer',
          identityId: claims.sub,
          sessionId: claims.sid,
          amr: claims.amr,
          authTime: claims.auth_time,
          factorTimes: Object.fromEntries(claims.amr.map((a) => [a, session.factorTimes[a] ?? claims.auth_time])),
          email: user.email,
        };
        d.verifyCache.set(key, { principal: p, email: user.email, roles: [], permissions: [] }, Math.min(claims.exp * 1000, session.idleExpiresAt, session.absoluteExpiresAt));
        return live(d, p);
      } catch {
        return null;
      }
    },
  };
}
