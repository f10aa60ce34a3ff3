import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { AppError } from '../../errors.ts';
import { deviceId } from '../../http/middleware/client.ts';
import { routeDocs } from '../../http/openapi/doc.ts';
import type { Env, Services } from '../../http/services.ts';
import type { SessionRecord } from '../../session/sessions.ts';
import { isRefusal } from './exchange.ts';

/**
 * The "demandKnownUser" compatibility middleware of the Okta session-exchange design, for APIs
 * that send one of two schemes instead of a cookie or a Threshold bearer token:
 *
 *   Authorization: okta <jwt>   a token from a trusted issuer (token_exchange purpose). Its first
 *                               use is an exchange (verify locally, linked identity, risk, a new
 *                               session); later uses of the same token find that session.
 *   Authorization: sid <token>  the session token an exchange answered (`session.token`), the
 *                               value a browser holds in the session cookie.
 *
 * Missing header or unknown scheme → 401; unknown session → 401; expired session → deleted and
 * 401; valid → `c.get('knownUser')` holds the user and the session.
 */
export interface KnownUser {
  user: { id: string; email: string; displayName: string | null };
  session: SessionRecord;
  scheme: 'okta' | 'sid';
}

const SCHEME = /^([A-Za-z]+) ([\x21-\x7e]{1,16384})$/;
const CHALLENGE = 'okta, sid';

const unauthenticated = (detail: string) => new AppError('UNAUTHENTICATED', { detail, headers: { 'WWW-Authenticate': CHALLENGE } });

/** Stops requests without a live session behind an okta token or a session token. */
export function demandKnownUser(s: Services): MiddlewareHandler<Env> {
  /** Removes a session that has run out (the design deletes expired sessions on sight). */
  async function deleteIfExpired(id: string) {
    const now = new Date(s.clock.now());
    await s.db.query('DELETE FROM sessions WHERE id = $1 AND (absolute_expires_at <= $2 OR (revoked_at IS NULL AND idle_expires_at <= $2))', [id, now]);
  }

  async function viaOkta(c: Context<Env>, token: string): Promise<SessionRecord> {
    const r = await s.trusted.exchange.exchange(
      token,
      { ip: c.get('clientIp'), deviceId: deviceId(c, s.config.secureCookies, false), userAgent: c.req.header('user-agent')?.slice(0, 512) ?? null },
      { withTokens: false, via: 'okta_scheme', replay: 'reuse' },
    );
    if (isRefusal(r)) {
      if (r.error === 'temporarily_unavailable') throw new AppError('SERVICE_UNAVAILABLE', { headers: { 'Retry-After': '5' } });
      throw unauthenticated('The token is not accepted.');
    }
    if ('session' in r) return r.session;
    if (!r.sessionId) throw unauthenticated('The session of this token has ended.');
    // Activity: slides the idle window like a cookie request.
    const session = await s.sessions.touch(r.sessionId);
    if (session) return session;
    await deleteIfExpired(r.sessionId);
    throw unauthenticated('The session of this token has ended.');
  }

  async function viaSid(token: string): Promise<SessionRecord> {
    // Unknown → null; expired → deleted by the session service, then null.
    const session = await s.sessions.authenticate(token, 'activity');
    if (!session) throw unauthenticated('Unknown or expired session.');
    return session;
  }

  return async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw unauthenticated('Send Authorization: okta <jwt> or sid <session token>.');
    const m = SCHEME.exec(header);
    const scheme = m?.[1].toLowerCase();
    if (!m || (scheme !== 'okta' && scheme !== 'sid')) throw unauthenticated('Unknown authorization scheme.');
    const session = scheme === 'okta' ? await viaOkta(c, m[2]) : await viaSid(m[2]);
    // The deny-list answers for every process at once, before a row is seen as revoked here.
    if (await s.revocations.isRevoked(session.id)) throw unauthenticated('Unknown or expired session.');
    const user = await s.users.get(session.identityId);
    if (!user || user.status !== 'active') throw unauthenticated('Unknown or expired session.');
    c.set('knownUser', { user: { id: user.id, email: user.email, displayName: user.displayName }, session, scheme });
    c.set('principal', { kind: 'session', via: 'bearer', identityId: session.identityId, sessionId: session.id, amr: session.amr, authTime: session.authTime, factorTimes: session.factorTimes });
    await next();
  };
}

export const knownUserDocs = routeDocs('/auth/known-user', 'Session', {
  'GET /': {
    summary: 'Who is calling, by `Authorization: okta <jwt>` or `Authorization: sid <session token>` (the demandKnownUser middleware)',
    description:
      '`okta`: a JWT from a trusted issuer (purpose token_exchange), verified locally; its first use starts a session (like a token exchange), later uses find it. ' +
      '`sid`: the `session.token` a token exchange answered. Missing or unknown scheme, unknown or expired session (which is deleted): 401.',
    auth: 'none',
    headers: { Authorization: '`okta <jwt>` or `sid <session token>`' },
    responses: {
      200: {
        description: '`{ user: { id, email, displayName }, session: { id, amr, acr, authTime, expiresAt, idleExpiresAt }, scheme }`',
        schema: { jsonSchema: { type: 'object', properties: { user: { type: 'object' }, session: { type: 'object' }, scheme: { enum: ['okta', 'sid'] } }, required: ['user', 'session', 'scheme'] } },
      },
    },
    errors: ['UNAUTHENTICATED', 'SERVICE_UNAVAILABLE'],
  },
});

/** GET /auth/known-user: the middleware's answer, for APIs (and tests) to see what it decided. */
export function knownUserRoutes(s: Services) {
  const app = new Hono<Env>();
  app.get('/', demandKnownUser(s), (c) => {
    const k = c.get('knownUser')!;
    c.header('Cache-Control', 'no-store');
    return c.json({
      user: k.user,
      session: {
        id: k.session.id,
        amr: k.session.amr,
        acr: k.session.acr,
        authTime: k.session.authTime,
        expiresAt: new Date(k.session.absoluteExpiresAt).toISOString(),
        idleExpiresAt: new Date(k.session.idleExpiresAt).toISOString(),
      },
      scheme: k.scheme,
    });
  });
  return app;
}
