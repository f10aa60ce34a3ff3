import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, oathtool, signIn, signInAdmin, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

/**
 * Issue 11 item 2, RBAC as the operator design draws it, over HTTP on real Postgres and Redis:
 * ADMIN allows everything (requirements still apply), direct permissions, role permissions,
 * namespace-scoped bindings (granted in A, refused in B), audited decisions.
 */
describe('RBAC matrix', () => {
  let t: TestServer;
  let admin: Client;
  const pw = 'a-long-enough-password';
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer();
    for (const name of ['dora', 'rolf', 'nina', 'pete']) ids[name] = (await t.services.users.create({ email: `${name}@example.test`, password: pw, roles: [] })).id;
    ids.admin = (await t.db.query<{ id: string }>('SELECT id FROM identities WHERE email = $1', [ADMIN.email])).rows[0].id;
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  const authorize = (c: Client, permission: string, namespace?: string) => c.post('/auth/authorize', namespace ? { permission, namespace } : { permission });
  const audit = async (type: string, actor: string) =>
    (await t.db.query<{ subject: string; reason: string; data: any }>('SELECT subject, reason, data FROM audit_events WHERE type = $1 AND actor = $2 ORDER BY seq', [type, actor])).rows;

  it('ADMIN allows every permission, even one its role does not list, but is challenged for a requirement without fresh MFA', async () => {
    expect((await authorize(admin, 'MANAGE_CONFIG')).status).toBe(200);
    // VIEW_CASES is granted to PATHOLOGIST and TECHNICIAN, not to the ADMIN role: ADMIN allows it anyway.
    expect((await authorize(admin, 'VIEW_CASES')).status).toBe(200);
    const challenged = await authorize(admin, 'CONFIRM_RESULTS');
    expect(challenged.status).toBe(401);
    expect(challenged.body.code).toBe('STEP_UP_REQUIRED');
    expect(challenged.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_user_authentication", error_description="Requires mfa", acr_values="urn:threshold:acr:aal2", max_age=900',
    );
    // The same admin, after a TOTP step-up, is allowed.
    const e = await admin.post('/auth/mfa/totp');
    expect((await admin.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: oathtool(e.body.secret, t.clock.now()) })).status).toBe(200);
    const flow = await admin.post('/auth/stepup', { acr_values: challenged.body.acr_values, max_age: 900 });
    expect(flow.status).toBe(201);
    // The first factor also gave recovery codes: two methods, choose TOTP.
    expect((await admin.post(`/auth/stepup/${flow.body.id}`, { type: 'choose', method: 'totp' })).body.step).toBe('totp');
    t.clock.advance(30_000);
    const done = await admin.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: oathtool(e.body.secret, t.clock.now()) });
    expect(done.body.step).toBe('done');
    expect((await authorize(admin, 'CONFIRM_RESULTS')).status).toBe(200);
    // Fifteen minutes later the proof is stale: challenged again, like anyone.
    t.clock.advance(901_000);
    expect((await authorize(admin, 'CONFIRM_RESULTS')).status).toBe(401);
  });

  it('an unknown permission is PERMISSION_UNKNOWN to an admin, a plain PERMISSION_DENIED to anyone else; the audit names it', async () => {
    const r = await authorize(admin, 'NO_SUCH_PERMISSION');
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('PERMISSION_UNKNOWN');
    const { c } = await signIn(t.url, 'pete@example.test', pw);
    const unknown = await authorize(c, 'NO_SUCH_PERMISSION');
    const refused = await authorize(c, 'MANAGE_CONFIG');
    expect([unknown.status, unknown.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect([refused.status, refused.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect(Object.keys(unknown.body).sort()).toEqual(Object.keys(refused.body).sort());
    const rows = await audit('authorization.denied', ids.pete);
    expect(rows.map((x) => [x.subject, x.reason])).toEqual([
      ['NO_SUCH_PERMISSION', 'PERMISSION_UNKNOWN'],
      ['MANAGE_CONFIG', 'PERMISSION_DENIED'],
    ]);
  });

  it('a direct permission grants that permission only; granting and withdrawing is audited with before/after', async () => {
    const { c } = await signIn(t.url, 'dora@example.test', pw);
    expect((await authorize(c, 'VIEW_CASES')).status).toBe(403);
    const put = await admin.req('PUT', `/api/users/${ids.dora}/permissions`, { permission: 'VIEW_CASES' });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ permissions: [{ permission: 'VIEW_CASES', namespace: null }] });
    expect((await authorize(c, 'VIEW_CASES')).status).toBe(200);
    expect((await authorize(c, 'VIEW_CASES', 'any-namespace')).status).toBe(200); // global: every namespace
    expect((await authorize(c, 'MANAGE_DATA_INGESTION')).status).toBe(403);
    const del = await admin.req('DELETE', `/api/users/${ids.dora}/permissions?permission=VIEW_CASES`);
    expect(del.body).toEqual({ permissions: [] });
    expect((await authorize(c, 'VIEW_CASES')).status).toBe(403);
    expect((await admin.req('DELETE', `/api/users/${ids.dora}/permissions?permission=VIEW_CASES`)).status).toBe(404);
    const rows = await audit('user.permissions_changed', ids.admin);
    expect(rows.map((x) => [x.subject, x.reason, x.data.before, x.data.after])).toEqual([
      [ids.dora, 'GRANTED', [], [{ permission: 'VIEW_CASES', namespace: null }]],
      [ids.dora, 'WITHDRAWN', [{ permission: 'VIEW_CASES', namespace: null }], []],
    ]);
  });

  it("a role's permissions, through a role bound by the admin API", async () => {
    const { c } = await signIn(t.url, 'rolf@example.test', pw);
    expect((await authorize(c, 'MANAGE_DATA_INGESTION')).status).toBe(403);
    expect((await admin.req('PUT', `/api/users/${ids.rolf}/roles`, { role: 'TECHNICIAN' })).status).toBe(200);
    expect((await authorize(c, 'MANAGE_DATA_INGESTION')).status).toBe(200);
    expect((await authorize(c, 'CONFIRM_RESULTS')).status).toBe(403); // PATHOLOGIST's, not TECHNICIAN's
    expect((await c.get('/auth/me')).body.roles).toEqual(['TECHNICIAN']);
  });

  it('a namespace-scoped binding grants in its namespace and nowhere else, with requirements; /auth/verify honours X-Required-Namespace', async () => {
    const { c, token } = await signIn(t.url, 'nina@example.test', pw, { returnTokens: true });
    expect((await admin.req('PUT', `/api/users/${ids.nina}/roles`, { role: 'PATHOLOGIST', namespace: 'ward-a' })).status).toBe(200);
    expect((await authorize(c, 'VIEW_CASES', 'ward-a')).status).toBe(200);
    expect((await authorize(c, 'VIEW_CASES', 'ward-b')).status).toBe(403);
    expect((await authorize(c, 'VIEW_CASES')).status).toBe(403); // no global grant
    // A requirement applies inside the namespace too.
    const step = await authorize(c, 'CONFIRM_RESULTS', 'ward-a');
    expect(step.status).toBe(401);
    expect(step.headers.get('www-authenticate')).toContain('insufficient_user_authentication');
    // A scoped role is not a global role.
    expect((await c.get('/auth/me')).body.roles).toEqual([]);

    const verify = (ns?: string) =>
      fetch(`${t.url}/auth/verify`, { headers: { authorization: `Bearer ${token}`, 'x-required-permission': 'VIEW_CASES', ...(ns ? { 'x-required-namespace': ns } : {}) } });
    expect((await verify('ward-a')).status).toBe(200);
    expect((await verify('ward-b')).status).toBe(403);
    expect((await verify()).status).toBe(403);
    expect((await verify('bad namespace!')).status).toBe(400);

    // A direct permission scoped to ward-b.
    expect((await admin.req('PUT', `/api/users/${ids.nina}/permissions`, { permission: 'CREATE_AI_SUGGESTIONS', namespace: 'ward-b' })).status).toBe(200);
    expect((await authorize(c, 'CREATE_AI_SUGGESTIONS', 'ward-b')).status).toBe(200);
    expect((await authorize(c, 'CREATE_AI_SUGGESTIONS', 'ward-c')).status).toBe(403); // (ward-a grants it through PATHOLOGIST)

    // Unbinding takes effect on the next request.
    const del = await admin.req('DELETE', `/api/users/${ids.nina}/roles?role=PATHOLOGIST&namespace=ward-a`);
    expect(del.body).toEqual({ roles: [] });
    expect((await verify('ward-a')).status).toBe(403);
    expect((await authorize(c, 'VIEW_CASES', 'ward-a')).status).toBe(403);
    const rows = await audit('user.roles_changed', ids.admin);
    expect(rows.at(-1)).toMatchObject({ subject: ids.nina, reason: 'WITHDRAWN', data: { role: 'PATHOLOGIST', namespace: 'ward-a', before: [{ role: 'PATHOLOGIST', namespace: 'ward-a' }], after: [] } });
  });

  it('binding routes: only MANAGE_ROLES; unknown role, bad namespace and unknown user are refused', async () => {
    const { c } = await signIn(t.url, 'pete@example.test', pw);
    expect((await c.req('PUT', `/api/users/${ids.pete}/roles`, { role: 'ADMIN' })).status).toBe(403);
    expect((await c.get(`/api/users/${ids.pete}/roles`)).status).toBe(403);
    expect((await admin.req('PUT', `/api/users/${ids.pete}/roles`, { role: 'NO_SUCH_ROLE' })).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.req('PUT', `/api/users/${ids.pete}/roles`, { role: 'TECHNICIAN', namespace: '../x' })).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.req('PUT', `/api/users/00000000-0000-4000-8000-000000000000/roles`, { role: 'TECHNICIAN' })).status).toBe(404);
    expect((await admin.get(`/api/users/${ids.rolf}/roles`)).body).toEqual({ roles: [{ role: 'TECHNICIAN', namespace: null }] });
  });

  it('a workload principal (service-account slot) brings its own namespace-scoped bindings: allowed in its namespace only', async () => {
    const sa = { kind: 'service_account' as const, via: 'service_token' as const, identityId: 'system:serviceaccount:lab-1:ingest', credentialId: 'system:serviceaccount:lab-1:ingest', amr: [], authTime: 0, factorTimes: {}, bindings: [{ role: 'TECHNICIAN', namespace: 'lab-1' }] };
    expect((await t.services.authz.check(sa, 'MANAGE_DATA_INGESTION', { namespace: 'lab-1' })).decision.allow).toBe(true);
    expect((await t.services.authz.check(sa, 'MANAGE_DATA_INGESTION', { namespace: 'lab-2' })).decision.allow).toBe(false);
    expect((await t.services.authz.check(sa, 'MANAGE_DATA_INGESTION')).decision.allow).toBe(false);
  });

  it('successes are aggregated, not written per request: one authorization.granted per key and flush, with the count', async () => {
    const { c } = await signIn(t.url, 'rolf@example.test', pw);
    await t.services.authz.flush();
    const before = (await audit('authorization.granted', ids.rolf)).length;
    for (let i = 0; i < 5; i++) expect((await authorize(c, 'MANAGE_DATA_INGESTION')).status).toBe(200);
    expect((await audit('authorization.granted', ids.rolf)).length).toBe(before); // nothing written yet
    await t.services.authz.flush();
    const rows = (await audit('authorization.granted', ids.rolf)).slice(before);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ subject: 'MANAGE_DATA_INGESTION', reason: 'AGGREGATED', data: { count: 5, via: 'cookie' } });
  });
});
