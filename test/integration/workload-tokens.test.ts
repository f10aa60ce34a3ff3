import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';
import { startWorkloadIssuer, type WorkloadIssuer } from '../helpers/issuers.ts';

/**
 * Issue 11 §5: Kubernetes-shaped service-account tokens signed by a loopback issuer (discovery +
 * JWKS, and a TokenReview endpoint) authorize in their mapped namespaces only.
 */
const AUD = 'threshold';
let srv: TestServer;
let k8s: WorkloadIssuer;
let reviewed: WorkloadIssuer;
let stranger: WorkloadIssuer;
let admin: Client;

const authorize = (token: string, body: Record<string, unknown>) =>
  new Client(srv.url).post('/auth/authorize', body, { authorization: `Bearer ${token}` });
const verify = (token: string, h: Record<string, string>) => new Client(srv.url).get('/auth/verify', { authorization: `Bearer ${token}`, ...h });

beforeAll(async () => {
  srv = await startTestServer();
  [k8s, reviewed, stranger] = await Promise.all([startWorkloadIssuer(), startWorkloadIssuer(), startWorkloadIssuer()]);
  admin = await signInAdmin(srv);
  const base = { audiences: [AUD], purposes: 'workload', algorithms: ['RS256'] };
  const a = await admin.post('/api/trusted-issuers', {
    ...base,
    issuer: k8s.issuer,
    discoveryUrl: k8s.discoveryUrl,
    subjectMappings: [
      { subject: 'system:serviceaccount:payments:*', roles: ['TECHNICIAN'] },
      { subject: 'system:serviceaccount:ops:deployer', roles: ['TECHNICIAN'], namespaces: ['ops', 'staging'] },
    ],
  });
  expect(a.status).toBe(201);
  const b = await admin.post('/api/trusted-issuers', {
    ...base,
    issuer: reviewed.issuer,
    jwksUri: reviewed.jwksUri,
    tokenReviewUrl: reviewed.tokenReviewUrl,
    subjectMappings: [{ subject: 'system:serviceaccount:payments:api', roles: ['TECHNICIAN'] }],
  });
  expect(b.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await srv?.close();
  await Promise.all([k8s?.close(), reviewed?.close(), stranger?.close()]);
});

describe('service-account tokens at /auth/authorize and /auth/verify', () => {
  it('authorizes in its own namespace only, and only what its roles grant', async () => {
    const t = await k8s.sign({ namespace: 'payments', name: 'api', audience: AUD });
    expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'payments' })).status).toBe(200);
    for (const body of [{ permission: 'VIEW_CASES', namespace: 'billing' }, { permission: 'VIEW_CASES' }, { permission: 'MANAGE_USERS', namespace: 'payments' }]) {
      const r = await authorize(t, body);
      expect(r.status, JSON.stringify(body)).toBe(403);
      expect(r.body.code).toBe('PERMISSION_DENIED');
    }
    const denied = await srv.db.query<{ reason: string; subject: string }>("SELECT reason, subject FROM audit_events WHERE type = 'authorization.denied' AND actor = $1", ['sa:system:serviceaccount:payments:api']);
    expect(denied.rows).toHaveLength(3);
    expect(denied.rows.every((r) => r.reason === 'PERMISSION_DENIED')).toBe(true);
  });

  it('a mapping may name other namespaces', async () => {
    const t = await k8s.sign({ namespace: 'ops', name: 'deployer', audience: AUD });
    expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'staging' })).status).toBe(200);
    expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'ops' })).status).toBe(200);
    expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'payments' })).status).toBe(403);
  });

  it('forward-auth: 200 with the subject in its namespace, 403 elsewhere', async () => {
    const t = await k8s.sign({ namespace: 'payments', name: 'worker', audience: AUD });
    const ok = await verify(t, { 'x-required-permission': 'VIEW_CASES', 'x-required-namespace': 'payments' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-auth-credential')).toBe('service_account:system:serviceaccount:payments:worker');
    // Prefixed: a workload can never name an identity row (and pick up a person's bindings).
    expect(ok.headers.get('x-auth-user')).toBe('sa:system:serviceaccount:payments:worker');
    expect((await verify(t, { 'x-required-permission': 'VIEW_CASES', 'x-required-namespace': 'billing' })).status).toBe(403);
    expect((await verify(t, { 'x-required-permission': 'VIEW_CASES', 'x-required-namespace': 'bad namespace!' })).status).toBe(400);
  });

  it('untrusted issuer, wrong audience, expired, unmapped, mismatched claim shape, unknown key → 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      await stranger.sign({ namespace: 'payments', name: 'api', audience: AUD }),
      await k8s.sign({ namespace: 'payments', name: 'api', audience: 'someone-else' }),
      await k8s.sign({ namespace: 'payments', name: 'api', audience: AUD, iat: now - 7200, ttl: 3600 }),
      await k8s.sign({ namespace: 'kube-system', name: 'admin', audience: AUD }),
      await k8s.sign({ namespace: 'payments', name: 'api', audience: AUD, claims: { 'kubernetes.io': { namespace: 'ops', serviceaccount: { name: 'api' } } } }),
      // A token claiming the trusted issuer, signed by another one's key.
      await stranger.sign({ namespace: 'payments', name: 'api', audience: AUD, iss: k8s.issuer }),
    ];
    for (const [i, t] of bad.entries()) {
      const r = await authorize(t, { permission: 'VIEW_CASES', namespace: 'payments' });
      expect(r.status, `token ${i}`).toBe(401);
      expect((await verify(t, { 'x-required-permission': 'VIEW_CASES', 'x-required-namespace': 'payments' })).status, `token ${i}`).toBe(401);
    }
  });

  it('an issuer that demands it is asked through TokenReview; a token revoked in the cluster stops within the review cache', async () => {
    const jti = randomUUID();
    const t = await reviewed.sign({ namespace: 'payments', name: 'api', audience: AUD, claims: { jti } });
    expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'payments' })).status).toBe(200);
    expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'payments' })).status).toBe(200);
    expect(reviewed.counts.reviews).toBe(1); // the second answer came from the cache
    reviewed.revoke(jti);
    srv.clock.advance(11_000); // past the 10 s review cache
    try {
      expect((await authorize(t, { permission: 'VIEW_CASES', namespace: 'payments' })).status).toBe(401);
      expect(reviewed.counts.reviews).toBe(2);
    } finally {
      srv.clock.advance(-11_000);
    }
  });

  it('a person keeps the ordinary bearer path', async () => {
    const r = await admin.post('/auth/authorize', { permission: 'MANAGE_USERS' });
    expect(r.status).toBe(200);
  });
});
