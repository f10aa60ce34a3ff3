import type { Clock } from '../../clock.ts';
import { peekIssuer, tokenDigest, TrustedTokenError, type TrustedTokenVerifier, type VerifiedExternalToken } from './verifier.ts';
import { servesPurpose, type IssuerRegistry, type TrustedIssuer } from './registry.ts';

/**
 * Workload identity: a Kubernetes service-account token (or another workload issuer's JWT)
 * becomes a principal whose roles apply in its mapped namespaces only.
 *
 *   verify (verifier.ts, purpose workload) → Kubernetes claim shape → optional TokenReview →
 *   subject mappings → { kind: 'service_account', subject, roles, namespaces, issuer }
 *
 * Verified tokens are remembered by digest until their exp (at most `cacheMs`; `reviewTtlMs`
 * when a TokenReview vouched for them, so a token revoked in the cluster stops soon).
 */
export interface WorkloadPrincipal {
  /** A workload token from a trusted issuer, or a registered machine client's own token (client_credentials). */
  kind: 'service_account' | 'machine_client';
  subject: string;
  roles: string[];
  /** Where the roles apply; `*` = everywhere. */
  namespaces: string[];
  issuer: string;
  /** Epoch ms: the token's exp. */
  expiresAt: number;
  serviceAccount?: { namespace: string; name: string; pod?: string };
}

const SA_SUBJECT = /^system:serviceaccount:([a-z0-9]([-a-z0-9.]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

interface K8sClaim {
  namespace?: unknown;
  serviceaccount?: { name?: unknown };
  pod?: { name?: unknown };
}

/** Stops a token whose `kubernetes.io` claim disagrees with its subject (a confused or forged shape). */
function serviceAccountOf(v: VerifiedExternalToken): WorkloadPrincipal['serviceAccount'] | undefined {
  const m = SA_SUBJECT.exec(v.claims.sub);
  if (!m) return undefined;
  const k = v.claims['kubernetes.io'] as K8sClaim | undefined;
  if (!k || typeof k !== 'object') throw new TrustedTokenError('CLAIMS_INVALID', 'no kubernetes.io claim');
  if (k.namespace !== m[1] || k.serviceaccount?.name !== m[3]) throw new TrustedTokenError('CLAIMS_INVALID', 'kubernetes.io claim does not match sub');
  return { namespace: m[1], name: m[3], ...(typeof k.pod?.name === 'string' ? { pod: k.pod.name } : {}) };
}

const matches = (pattern: string, subject: string) => (pattern.endsWith('*') ? subject.startsWith(pattern.slice(0, -1)) : pattern === subject);

/** The subject's roles and namespaces from the issuer's mappings (union of every match). */
export function mapSubject(issuer: TrustedIssuer, subject: string, ownNamespace: string | undefined) {
  const roles = new Set<string>();
  const namespaces = new Set<string>();
  let matched = false;
  for (const m of issuer.subjectMappings) {
    if (!matches(m.subject, subject)) continue;
    matched = true;
    for (const r of m.roles) roles.add(r);
    for (const n of m.namespaces ?? (ownNamespace ? [ownNamespace] : [])) namespaces.add(n);
  }
  return matched ? { roles: [...roles].sort(), namespaces: [...namespaces].sort() } : null;
}

export function createWorkloadVerifier(deps: {
  verifier: TrustedTokenVerifier;
  registry: IssuerRegistry;
  clock: Clock;
  fetch?: typeof fetch;
  cacheMs?: number;
  reviewTtlMs?: number;
  reviewTimeoutMs?: number;
  maxEntries?: number;
}) {
  const { clock } = deps;
  const f = deps.fetch ?? fetch;
  const cacheMs = deps.cacheMs ?? 60_000;
  const reviewTtlMs = deps.reviewTtlMs ?? 10_000;
  const maxEntries = deps.maxEntries ?? 10_000;
  const cache = new Map<string, { p: WorkloadPrincipal; until: number }>();
  const stats = { hits: 0, misses: 0, reviews: 0 };

  /** Stops tokens the cluster no longer honours (a deleted pod or service account): asks its TokenReview API. */
  async function review(url: string, token: string, v: VerifiedExternalToken) {
    stats.reviews++;
    let body: { status?: { authenticated?: boolean; user?: { username?: string } } };
    try {
      const res = await f(url, {
        method: 'POST',
        redirect: 'error',
        signal: AbortSignal.timeout(deps.reviewTimeoutMs ?? 3000),
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: v.issuer.audiences } }),
      });
      if (!res.ok) throw new Error(`TokenReview answered ${res.status}`);
      body = (await res.json()) as typeof body;
    } catch (e) {
      throw new TrustedTokenError('REVIEW_UNAVAILABLE', 'TokenReview unavailable', { cause: e });
    }
    if (body.status?.authenticated !== true || body.status.user?.username !== v.claims.sub) throw new TrustedTokenError('REVIEW_REFUSED', 'TokenReview did not authenticate the token');
  }

  /** A workload principal for a verified token; throws TrustedTokenError. */
  async function verify(token: string): Promise<WorkloadPrincipal> {
    const key = tokenDigest(token);
    const now = clock.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) {
      stats.hits++;
      return hit.p;
    }
    stats.misses++;
    const v = await deps.verifier.verify(token, 'workload');
    const sa = serviceAccountOf(v);
    if (v.issuer.tokenReviewUrl) await review(v.issuer.tokenReviewUrl, token, v);
    const mapped = mapSubject(v.issuer, v.claims.sub, sa?.namespace);
    if (!mapped) throw new TrustedTokenError('SUBJECT_NOT_MAPPED', 'no mapping for this subject');
    const p: WorkloadPrincipal = { kind: 'service_account', subject: v.claims.sub, ...mapped, issuer: v.issuer.issuer, expiresAt: v.claims.exp * 1000, ...(sa ? { serviceAccount: sa } : {}) };
    cache.delete(key);
    cache.set(key, { p, until: Math.min(p.expiresAt, now + (v.issuer.tokenReviewUrl ? reviewTtlMs : cacheMs)) });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
    return p;
  }

  /** Whether a bearer token names an issuer trusted for workloads (so the workload path, not ours, decides). */
  async function isWorkloadToken(token: string): Promise<boolean> {
    const iss = peekIssuer(token);
    if (!iss) return false;
    const i = await deps.registry.byIssuer(iss);
    return !!i && servesPurpose(i, 'workload');
  }

  return { verify, isWorkloadToken, stats, clear: () => cache.clear() };
}
export type WorkloadVerifier = ReturnType<typeof createWorkloadVerifier>;
