import type { Context } from 'hono';
import { AppError } from '../../errors.ts';
import type { Env, Services } from '../../http/services.ts';
import { decodeJwt } from 'jose';
import { peekIssuer, TrustedTokenError } from './verifier.ts';
import { authorizeWorkload, type WorkloadDecision, type WorkloadPrincipal } from './workload.ts';

/**
 * The smallest wiring of workload tokens into /auth/authorize and /auth/verify until the
 * principal pipeline (src/principals/) takes them as one of its authenticators.
 */
const BEARER = /^Bearer ([A-Za-z0-9_.-]{20,16384})$/;
export const NAMESPACE_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The workload principal of the request's bearer token (a trusted issuer's workload token, or a
 * machine client's own client_credentials token); null otherwise (the ordinary bearer path decides). Stops a workload token that
 * fails verification: UNAUTHENTICATED (or SERVICE_UNAVAILABLE when its issuer's keys or
 * TokenReview cannot be reached).
 */
export async function workloadOf(c: Context<Env>, s: Services): Promise<WorkloadPrincipal | null> {
  const m = BEARER.exec(c.req.header('authorization') ?? '');
  if (!m) return null;
  if (isMachineToken(m[1], s)) return machineClientOf(m[1], s);
  if (!(await s.trusted.workloads.isWorkloadToken(m[1]))) return null;
  try {
    return await s.trusted.workloads.verify(m[1]);
  } catch (e) {
    if (!(e instanceof TrustedTokenError)) throw e;
    if (e.reason === 'JWKS_UNAVAILABLE' || e.reason === 'REVIEW_UNAVAILABLE') throw new AppError('SERVICE_UNAVAILABLE', { privateDetail: e.reason });
    s.logger.info({ reason: e.reason }, 'workload token refused');
    throw new AppError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' }, privateDetail: e.reason });
  }
}

/** Our own token without a session: what client_credentials issues (the signature is checked next). */
function isMachineToken(token: string, s: Services): boolean {
  if (peekIssuer(token) !== s.config.PUBLIC_URL) return false;
  try {
    const p = decodeJwt(token);
    return p.sid === undefined && typeof p.client_id === 'string' && p.client_id === p.sub;
  } catch {
    return false;
  }
}

/** A machine client's roles apply everywhere (a namespace-less binding is global); its token cannot be stepped up. */
async function machineClientOf(token: string, s: Services): Promise<WorkloadPrincipal> {
  try {
    const t = await s.tokens.verifyClient(token);
    return { kind: 'machine_client', subject: t.client_id, roles: t.roles, namespaces: ['*'], issuer: s.config.PUBLIC_URL, expiresAt: t.exp * 1000 };
  } catch {
    throw new AppError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' }, privateDetail: 'machine token refused' });
  }
}

/** The decision for a workload, with refusals audited (the reason says which check refused). */
export async function decideForWorkload(s: Services, p: WorkloadPrincipal, permission: string, namespace: string | undefined, via: string): Promise<WorkloadDecision> {
  const d = await authorizeWorkload(p, permission, namespace, (roles, perm) => s.rbac.grantForRoles(roles, perm));
  if (!d.allow) {
    await s.audit.append({ type: 'authorization.denied', actor: null, subject: permission, reason: d.code, data: { kind: p.kind, principal: p.subject, issuer: p.issuer, why: d.reason, via, ...(namespace ? { namespace } : {}) } });
  }
  return d;
}
