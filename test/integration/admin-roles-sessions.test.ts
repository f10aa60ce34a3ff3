import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, device, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

/** The admin API's sessions, roles and permissions over HTTP (issue 11 §3). */
describe('/api/sessions, /api/roles, /api/permissions', () => {
  let t: TestServer;
  let admin: Client;
  const pw = 'a-long-enough-password';
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    t = await startTestServer();
    admin = await signInAdmin(t);
    for (const n of ['sam', 'sue']) ids[n] = (await t.services.users.create({ email: `${n}@example.test`, password: pw, roles: ['TECHNICIAN'] })).id;
  });
  afterAll(async () => t?.close());

  const audit = async (type: string, subject: string) =>
    (await t.db.query<{ data: any }>('SELECT data FROM audit_events WHERE type = $1 AND subject = $2 ORDER BY seq DESC LIMIT 1', [type, subject])).rows[0]?.data;

  it('lists every live session, filtered by user, IP or subnet, device and age, in cursor pages', async () => {
    const samDevice = device('sam');
    const sam = await signIn(t.url, 'sam@example.test', pw, { device: samDevice, ip: '81.2.69.150' });
    t.clock.advance(10 * 60_000);
    await signIn(t.url, 'sue@example.test', pw, { device: device('sue'), ip: '81.2.69.155' });
    const samSid = (await sam.c.get('/auth/me')).body.session.id;
    const list = async (q: string) => {
      const r = await admin.get(`/api/sessions${q}`);
      expect(r.status, `${q}: ${JSON.stringify(r.body)}`).toBe(200);
      return r.body.items as { id: string; userId: string; email: string; ip: string; device: string }[];
    };
    const all = await list('');
    expect(new Set(all.map((x) => x.email))).toEqual(new Set(['admin@example.test', 'sam@example.test', 'sue@example.test']));
    expect((await list(`?userId=${ids.sam}`)).map((x) => x.id)).toEqual([samSid]);
    expect((await list('?ip=81.2.69.150')).map((x) => x.email)).toEqual(['sam@example.test']);
    expect((await list('?ip=81.2.69.144/28')).map((x) => x.email).sort()).toEqual(['sam@example.test', 'sue@example.test']);
    expect((await list(`?device=${samDevice}`)).map((x) => x.id)).toEqual([samSid]);
    expect((await list('?device=no-such-device')).length).toBe(0);
    // Age: sam's (and the admin's) sessions are 10 minutes older than sue's.
    expect((await list('?minAgeSeconds=300')).map((x) => x.email).sort()).toEqual(['admin@example.test', 'sam@example.test']);
    expect((await list('?maxAgeSeconds=300')).map((x) => x.email)).toEqual(['sue@example.test']);
    // Pages of one, in creation order, each session once.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { body: any } = await admin.get(`/api/sessions?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...r.body.items.map((x: { id: string }) => x.id));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.map((x) => x.id));
    // A revoked session is no longer live.
    expect((await admin.req('DELETE', `/api/sessions/${samSid}`)).status).toBe(204);
    expect((await list(`?userId=${ids.sam}`)).length).toBe(0);
    expect((await admin.get('/api/sessions?ip=999.1.1.1')).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/sessions?userId=sam')).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/sessions?cursor=WzFd')).body.code).toBe('INVALID_CURSOR');
    t.clock.offset = 0;
  });

  it('lists roles with permissions, requirements and holders; permissions with the roles that grant them', async () => {
    const roles = (await admin.get('/api/roles')).body as { name: string; permissions: { name: string; requirement: unknown }[]; holders: number }[];
    const path = roles.find((r) => r.name === 'PATHOLOGIST')!;
    expect(path.permissions).toContainEqual({ name: 'CONFIRM_RESULTS', requirement: { amr: ['mfa'], maxAge: 900 } });
    expect(roles.find((r) => r.name === 'TECHNICIAN')!.holders).toBe(2);
    const adminPerms = roles.find((r) => r.name === 'ADMIN')!.permissions.map((p) => p.name);
    expect(adminPerms).toEqual(expect.arrayContaining(['MANAGE_CONFIG', 'VIEW_AUDIT_LOGS', 'MANAGE_USERS']));
    const perms = (await admin.get('/api/permissions')).body as { name: string; roles: string[] }[];
    expect(perms.find((p) => p.name === 'VIEW_CASES')!.roles).toEqual(['PATHOLOGIST', 'TECHNICIAN']);
  });

  it('creates, changes and deletes roles (MANAGE_CONFIG); the change is enforced at once and audited before/after', async () => {
    const made = await admin.post('/api/roles', { name: 'AUDITOR', description: 'Reads cases', permissions: ['VIEW_CASES'] });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'AUDITOR', permissions: [{ name: 'VIEW_CASES', requirement: null }], holders: 0 });
    expect(await audit('role.created', 'AUDITOR')).toMatchObject({ after: { name: 'AUDITOR', permissions: [{ name: 'VIEW_CASES' }] } });
    expect((await admin.post('/api/roles', { name: 'AUDITOR' })).body.code).toBe('CONFLICT');
    expect((await admin.post('/api/roles', { name: 'X', permissions: ['NO_SUCH'] })).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/roles')).body.some((r: { name: string }) => r.name === 'X')).toBe(false);
    expect((await admin.post('/api/roles', { name: 'lower' })).body.code).toBe('VALIDATION_FAILED');

    expect((await admin.post('/api/users', { email: 'ann@example.test', password: pw, roles: ['AUDITOR'] })).status).toBe(201);
    const ann = (await signIn(t.url, 'ann@example.test', pw)).c;
    const can = async (perm: string) => (await ann.post('/auth/authorize', { permission: perm })).status;
    expect(await can('VIEW_CASES')).toBe(200);
    expect(await can('VIEW_AUDIT_LOGS')).toBe(403);

    const upd = await admin.req('PATCH', '/api/roles/AUDITOR', { permissions: ['VIEW_AUDIT_LOGS'] });
    expect(upd.status).toBe(200);
    expect(await can('VIEW_AUDIT_LOGS')).toBe(200); // rbac.changed(): no stale snapshot
    expect(await can('VIEW_CASES')).toBe(403);
    expect(await audit('role.updated', 'AUDITOR')).toMatchObject({
      before: { permissions: [{ name: 'VIEW_CASES' }] },
      after: { permissions: [{ name: 'VIEW_AUDIT_LOGS' }], holders: 1 },
    });
    expect((await admin.req('PATCH', '/api/roles/NOPE', { description: 'x' })).status).toBe(404);

    const held = await admin.req('DELETE', '/api/roles/AUDITOR');
    expect([held.status, held.body.code, held.body.holders]).toEqual([409, 'ROLE_IN_USE', 1]);
    expect(await can('VIEW_AUDIT_LOGS')).toBe(200);
    await t.db.query("DELETE FROM user_roles WHERE role = 'AUDITOR'");
    // A machine client holding it keeps it too.
    await t.db.query(`INSERT INTO machine_clients (client_id, secret_hash, roles, created_at) VALUES ('svc-a', 'x', '["AUDITOR"]', now())`);
    const byMachine = await admin.req('DELETE', '/api/roles/AUDITOR');
    expect([byMachine.status, byMachine.body.code, byMachine.body.machines]).toEqual([409, 'ROLE_IN_USE', 1]);
    await t.db.query("DELETE FROM machine_clients WHERE client_id = 'svc-a'");
    expect((await admin.req('DELETE', '/api/roles/AUDITOR')).status).toBe(204);
    expect(await audit('role.deleted', 'AUDITOR')).toMatchObject({ before: { name: 'AUDITOR', holders: 0 } });
    expect((await admin.req('DELETE', '/api/roles/AUDITOR')).status).toBe(404);
  });

  it('reading roles needs MANAGE_USERS; changing them needs MANAGE_CONFIG', async () => {
    expect((await admin.post('/api/roles', { name: 'USER_DESK', permissions: ['MANAGE_USERS'] })).status).toBe(201);
    expect((await admin.post('/api/users', { email: 'desk@example.test', password: pw, roles: ['USER_DESK'] })).status).toBe(201);
    const desk = (await signIn(t.url, 'desk@example.test', pw)).c;
    expect((await desk.get('/api/roles')).status).toBe(200);
    expect((await desk.get('/api/users')).status).toBe(200);
    for (const r of [await desk.post('/api/roles', { name: 'SNEAKY', permissions: ['MANAGE_CONFIG'] }), await desk.req('PATCH', '/api/roles/USER_DESK', { permissions: ['MANAGE_CONFIG'] }), await desk.req('DELETE', '/api/roles/PATHOLOGIST')])
      expect([r.status, r.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect((await desk.get('/api/audit')).status).toBe(403); // VIEW_AUDIT_LOGS is not theirs
    // Managing users gives no way to more than one holds: no ADMIN made, no admin taken over or shut out.
    const adminId = (await admin.get('/auth/me')).body.user.id;
    for (const r of [
      await desk.post('/api/users', { email: 'made-admin@example.test', roles: ['ADMIN'] }),
      await desk.req('PATCH', `/api/users/${adminId}`, { email: 'desk-owns-this@example.test' }),
      await desk.post(`/api/users/${adminId}/lock`),
      await desk.post(`/api/users/${adminId}/disable`),
      await desk.req('DELETE', `/api/users/${adminId}`),
      await desk.post(`/api/users/${ids.sam}/disable`), // a technician holds VIEW_CASES, which desk does not
    ])
      expect([r.status, r.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect(await t.services.users.byEmail('made-admin@example.test')).toBeNull();
    expect((await admin.get(`/api/users/${adminId}`)).body).toMatchObject({ email: 'admin@example.test', locked: false, status: 'active' });
    const plain = await desk.post('/api/users', { email: 'plain@example.test', roles: [] });
    expect(plain.status).toBe(201);
    expect((await desk.post(`/api/users/${plain.body.id}/disable`)).body.status).toBe('disabled');
    expect((await desk.req('DELETE', `/api/users/${plain.body.id}`)).status).toBe(204);
    // A configuration manager who is not an ADMIN grants only what they hold.
    expect((await admin.post('/api/roles', { name: 'CONFIG_DESK', permissions: ['MANAGE_CONFIG', 'VIEW_CASES'] })).status).toBe(201);
    expect((await admin.post('/api/users', { email: 'conf@example.test', password: pw, roles: ['CONFIG_DESK'] })).status).toBe(201);
    const conf = (await signIn(t.url, 'conf@example.test', pw)).c;
    for (const r of [await conf.post('/api/roles', { name: 'GRAB', permissions: ['MANAGE_USERS'] }), await conf.req('PATCH', '/api/roles/CONFIG_DESK', { permissions: ['MANAGE_CONFIG', 'VIEW_AUDIT_LOGS'] })])
      expect([r.status, r.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect((await conf.post('/api/roles', { name: 'VIEWER', permissions: ['VIEW_CASES'] })).status).toBe(201);
    const anon = new Client(t.url);
    expect((await anon.post('/api/roles', { name: 'ANON' })).status).toBe(401);
  });
});

describe('/api/roles under concurrency (real Postgres)', () => {
  let t: TestServer;
  let admin: Client;
  beforeAll(async () => {
    t = await startTestServer();
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  it('a role bound while it is being deleted is kept (409 ROLE_IN_USE); the binding is never cascaded away', async () => {
    expect((await admin.post('/api/roles', { name: 'RACE', permissions: ['VIEW_CASES'] })).status).toBe(201);
    const u = await t.services.users.create({ email: 'race@example.test', roles: [] });
    // A binding in flight: inserted in an open transaction on a connection of its own.
    const binder = new pg.Client({ connectionString: t.dbUrl });
    await binder.connect();
    try {
      await binder.query('BEGIN');
      await binder.query('INSERT INTO user_roles (identity_id, role) VALUES ($1, $2)', [u.id, 'RACE']);
      const del = admin.req('DELETE', '/api/roles/RACE');
      // The delete must be waiting on the binding's lock before the binding commits.
      await vi.waitFor(
        async () => {
          const { rows } = await t.db.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%FROM roles%' AND datname = current_database()",
          );
          expect(rows[0].n).toBeGreaterThan(0);
        },
        { timeout: 10_000, interval: 20 },
      );
      await binder.query('COMMIT');
      const r = await del;
      expect([r.status, r.body.code]).toEqual([409, 'ROLE_IN_USE']);
      expect((await t.db.query('SELECT 1 FROM user_roles WHERE identity_id = $1 AND role = $2', [u.id, 'RACE'])).rowCount).toBe(1);
    } finally {
      await binder.end();
    }
  });

  it('50 concurrent replacements of a role’s permissions leave exactly one of them, each audited', async () => {
    expect((await admin.post('/api/roles', { name: 'CHURN', permissions: [] })).status).toBe(201);
    const sets = [['VIEW_CASES'], ['MANAGE_DATA_INGESTION'], ['VIEW_CASES', 'CREATE_AI_SUGGESTIONS'], ['CONFIRM_RESULTS'], []];
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => admin.req('PATCH', '/api/roles/CHURN', { permissions: sets[i % sets.length] })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const final = (await t.db.query<{ permission: string }>("SELECT permission FROM role_permissions WHERE role = 'CHURN' ORDER BY permission")).rows.map((r) => r.permission);
    expect(sets.map((s) => [...s].sort())).toContainEqual(final);
    const audited = await t.db.query<{ data: { after: { permissions: { name: string }[] } } }>("SELECT data FROM audit_events WHERE type = 'role.updated' AND subject = 'CHURN' ORDER BY seq");
    expect(audited.rowCount).toBe(50);
    // Each entry's after is one whole set, never a mixture of two concurrent replacements.
    for (const r of audited.rows) expect(sets.map((s) => [...s].sort())).toContainEqual(r.data.after.permissions.map((p) => p.name));
  });
});
