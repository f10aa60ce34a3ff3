import type { Context } from 'hono';
import { AppError } from '../../errors.ts';
import { checkRequirement, decisionError, unauthenticatedChallenge } from '../../authz/decision.ts';
import type { AnyPrincipal, AuthMode, SessionPrincipal } from '../../principals/types.ts';
import type { Env, Services } from '../services.ts';

export { sessionCookieName } from '../../principals/session-authenticators.ts';

/**
 * Who is calling through a session (cookie, or bearer access token of a live session), or null.
 * Machine credentials (API keys, service-account tokens) are not sessions: routes that act on
 * the caller's own session or factors refuse them. Stops use of unknown, expired or revoked
 * credentials.
 */
export async function authenticate(c: Context<Env>, s: Services, mode: AuthMode = 'activity'): Promise<SessionPrincipal | null> {
  const p = await s.principals.authenticate(c, mode);
  return p?.kind === 'session' ? p : null;
}

/** Any principal of the pipeline (session, API key, service account), or 401. */
export async function requireAnyPrincipal(c: Context<Env>, s: Services, mode: AuthMode = 'activity'): Promise<AnyPrincipal> {
  const p = await s.principals.authenticate(c, mode);
  if (!p) throw new AppError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': unauthenticatedChallenge(false) } });
  return p;
}

export async function requirePrincipal(c: Context<Env>, s: Services, mode: AuthMode = 'activity'): Promise<SessionPrincipal> {
  const p = await requireAnyPrincipal(c, s, mode);
  if (p.kind !== 'session') throw new AppError('UNAUTHENTICATED', { detail: 'This route needs a signed-in session.', headers: { 'WWW-Authenticate': 'Bearer' } });
  return p;
}

/**
 * Stops sensitive changes (removing a factor, new recovery codes) by a session without a recent
 * second factor: answers 401 with the RFC 9470 challenge the client can satisfy by step-up.
 */
export async function requireFreshMfa(c: Context<Env>, s: Services, maxAge = 900): Promise<SessionPrincipal> {
  const p = await requirePrincipal(c, s);
  const d = checkRequirement(p, { amr: ['mfa'], maxAge }, Math.floor(s.clock.now() / 1000));
  if (d.allow) return p;
  throw decisionError(d);
}

/**
 * Stops callers without a permission (globally, or in `namespace`) from using a route: the one
 * authorization of the admin routes, audited (src/authz/authorizer.ts). Any principal kind.
 */
export async function requirePermission(c: Context<Env>, s: Services, permission: string, namespace?: string): Promise<AnyPrincipal> {
  const p = await requireAnyPrincipal(c, s);
  const { decision, admin } = await s.authz.check(p, permission, { namespace, route: c.req.routePath ?? c.req.path });
  if (!decision.allow) throw decisionError(decision, { tellUnknown: admin });
  return p;
}
