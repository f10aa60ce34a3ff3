import type { Context } from 'hono';
import { decodeJwt } from 'jose';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { TokenService } from '../../tokens/access-token.ts';
import type { Authenticator, CredentialPrincipal } from '../../principals/types.ts';
import { peekIssuer, TrustedTokenError } from './verifier.ts';
import type { WorkloadPrincipal, WorkloadVerifier } from './workload.ts';

/**
 * Service tokens in the principal pipeline (src/principals/), after the API key:
 *
 * - a workload token from an issuer trusted for workloads (a Kubernetes service-account token):
 *   verified by workload.ts, its mapped roles bound in its mapped namespaces only;
 * - a registered machine client's own client_credentials token (ours, no `sid`, `sub` =
 *   `client_id`): its roles bound globally (a namespace-less binding).
 *
 * Either answers a `service_account` principal whose `identityId` is prefixed (`sa:` / `client:`)
 * so it can never name an identity row and pick up a person's stored bindings; only the
 * credential's own `bindings` apply. It proves no authentication method (`amr` empty): a
 * permission with a requirement is refused. Anything else (a person's bearer token, an API key)
 * is not for this authenticator: null.
 */
const BEARER = /^Bearer ([A-Za-z0-9_.-]{20,16384})$/;

/** Our own token without a session: what client_credentials issues (the signature is checked next). */
function isMachineToken(token: string, ourIssuer: string): boolean {
  if (peekIssuer(token) !== ourIssuer) return false;
  try {
    const p = decodeJwt(token);
    return p.sid === undefined && typeof p.client_id === 'string' && p.client_id === p.sub;
  } catch {
    return false;
  }
}

/** Bindings of a workload: each role in each mapped namespace (`*`: everywhere, i.e. global). */
export function bindingsOf(w: Pick<WorkloadPrincipal, 'roles' | 'namespaces'>): { role: string; namespace: string | null }[] {
  if (w.namespaces.includes('*')) return w.roles.map((role) => ({ role, namespace: null }));
  return w.roles.flatMap((role) => w.namespaces.map((namespace) => ({ role, namespace })));
}

export function serviceTokenAuthenticator(d: { workloads: WorkloadVerifier; tokens: TokenService; issuer: string; logger: Logger; now: () => number }): Authenticator {
  const principal = (identityId: string, credentialId: string, bindings: { role: string; namespace: string | null }[]): CredentialPrincipal => ({
    kind: 'service_account',
    via: 'service_token',
    identityId,
    credentialId,
    bindings,
    amr: [],
    authTime: Math.floor(d.now() / 1000),
    factorTimes: {},
  });
  return {
    name: 'service_token',
    presented: (c: Context) => BEARER.test(c.req.header('authorization') ?? ''),
    async authenticate(c: Context) {
      const m = BEARER.exec(c.req.header('authorization') ?? '');
      if (!m) return null;
      const token = m[1];
      if (isMachineToken(token, d.issuer)) {
        try {
          const t = await d.tokens.verifyClient(token);
          return principal(`client:${t.client_id}`, t.client_id, t.roles.map((role) => ({ role, namespace: null })));
        } catch {
          return null;
        }
      }
      if (!(await d.workloads.isWorkloadToken(token))) return null;
      try {
        const w = await d.workloads.verify(token);
        return principal(`sa:${w.subject}`, w.subject, bindingsOf(w));
      } catch (e) {
        if (!(e instanceof TrustedTokenError)) throw e;
        // The issuer's keys or its TokenReview cannot be reached: fail closed, and say so (not 401).
        if (e.reason === 'JWKS_UNAVAILABLE' || e.reason === 'REVIEW_UNAVAILABLE') throw new AppError('SERVICE_UNAVAILABLE', { privateDetail: e.reason });
        d.logger.info({ reason: e.reason }, 'workload token refused');
        return null;
      }
    },
  };
}
