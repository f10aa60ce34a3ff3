import type { Context } from 'hono';
import { AppError } from '../../errors.ts';
import type { Env, Services } from '../../http/services.ts';
import { TrustedTokenError } from './verifier.ts';
import { authorizeWorkload, type WorkloadDecision, type WorkloadPrincipal } from './workload.ts';

/**
 * The smallest wiring of workload tokens into /auth/authorize and /auth/verify until the
 * principal pipeline (src/principals/) takes them as one of its authenticators.
 */
const BEARER = /^Bearer ([A-Za-z0-9_.-]{20,16384})$/;
export const NAMESPACE_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The workload principal of the request's bearer token; null when the bearer is not from an
 * issuer trusted for workloads (the ordinary bearer path decides). Stops a workload token that
 * fails verification: UNAUTHENTICATED (or SERVICE_UNAVAILABLE when its issuer's keys or
 * TokenReview cannot be reached).
 */
export async function workloadOf(c: Context<Env>, s: Services): Promise<WorkloadPrincipal | null> {
  const m = BEARER.exec(c.req.header('authorization') ?? '');
  if (!m || !(await s.trusted.workloads.isWorkloadToken(m[1]))) return null;
  try {
    return await s.trusted.workloads.verify(m[1]);
  } catch (e) {
    if (!(e instanceof TrustedTokenError)) throw e;
    if (e.reason === 'JWKS_UNAVAILABLE' || e.reason === 'REVIEW_UNAVAILABLE') throw new AppError('SERVICE_UNAVAILABLE', { privateDetail: e.reason });
    s.logger.info({ reason: e.reason }, 'workload token refused');
    throw new AppError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' }, privateDetail: e.reason });
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
