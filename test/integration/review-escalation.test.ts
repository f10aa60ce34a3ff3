import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, IP, signIn, signInAdmin, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

/**
 * Adversarial review: privilege escalation through the admin API. A holder of one management
 * permission (MANAGE_ROLES, MANAGE_USERS, MANAGE_API_KEYS) who is not an ADMIN must not reach
 * ADMIN, nor act on someone who holds more (globally or in a namespace), nor use an API key that
 * stands for an ADMIN to pass the "who holds more" checks. The last global ADMIN stays.
 */
describe('admin API escalation guards', () => {
  let t: TestServer;
  let admin: Client;
  const pw = 'a-long-enough-password';
  const ids: Record<string, string> = {};

  const bind = async (identity: string, role: string, namespace = '') => {
    await t.db.query('INSERT INTO user_roles (identity_id, role, namespace) VALUES ($1, $2, $3)', [identity, role, namespace]);
    await t.services.rbac.changed();
  };
  const role = async (name: string, permissions: string[]) => {
    await t.db.query('INSERT INTO roles (name, description) VALUES ($1, $2)', [name, 'review test']);
    for (const p of permissions) await t.db.query('INSERT INTO role_permissions (role, permission) VALUES ($1, $2)', [name, p]);
    await t.services.rbac.changed();
  };
  const withKey = (key: string, method: string, path: string, body?: unknown) =>
    fetch(`${t.url}${path}`, {
      method,
      headers: { 'x-api-key': key, 'x-forwarded-for': IP.london, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await startTestServer();
    for (const name of ['mallory', 'ursula', 'nadia', 'victim', 'keith', 'otto']) ids[name] = (await t.services.users.create({ email: `${name}@example.test`, password: pw, roles: [] })).id;
    ids.admin = (await t.db.query<{ id: string }>('SELECT id FROM identities WHERE email = $1', [ADMIN.email])).rows[0].id;
    await role('ROLE_MANAGER', ['MANAGE_ROLES']);
    await role('USER_MANAGER', ['MANAGE_USERS']);
    await role('KEY_MANAGER', ['MANAGE_API_KEYS', 'MANAGE_USERS', 'MANAGE_CONFIG']);
    await bind(ids.mallory, 'ROLE_MANAGER');
    await bind(ids.ursula, 'USER_MANAGER');
    await bind(ids.keith, 'KEY_MANAGER');
    await bind(ids.nadia, 'ADMIN', 'tenant-a');
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  it('a MANAGE_ROLES holder cannot grant ADMIN or a permission it lacks (to itself or others), nor strip an ADMIN', async () => {
    const { c } = await signIn(t.url, 'mallory@example.test', pw);
    const self = await c.req('PUT', `/api/users/${ids.mallory}/roles`, { role: 'ADMIN' });
    expect([self.status, self.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    const scoped = await c.req('PUT', `/api/users/${ids.mallory}/roles`, { role: 'ADMIN', namespace: 'tenant-b' });
    expect([scoped.status, scoped.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    const direct = await c.req('PUT', `/api/users/${ids.mallory}/permissions`, { permission: 'MANAGE_CONFIG' });
    expect([direct.status, direct.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    const other = await c.req('PUT', `/api/users/${ids.otto}/roles`, { role: 'KEY_MANAGER' });
    expect(other.status).toBe(403);
    const strip = await c.req('DELETE', `/api/users/${ids.admin}/roles?role=ADMIN`);
    expect(strip.status).toBe(403);
    // What it holds, it may pass on.
    const ok = await c.req('PUT', `/api/users/${ids.otto}/permissions`, { permission: 'MANAGE_ROLES' });
    expect(ok.status).toBe(200);
    expect(await t.services.rbac.rolesOf(ids.mallory)).toEqual(['ROLE_MANAGER']);
    expect((await t.services.rbac.snapshot.resolve(ids.mallory, 'MANAGE_CONFIG', 'tenant-b')).via).toBeUndefined();
  });

  it('the last global ADMIN binding cannot be withdrawn; with a second ADMIN it can', async () => {
    const last = await admin.req('DELETE', `/api/users/${ids.admin}/roles?role=ADMIN`);
    expect([last.status, last.body.code]).toEqual([409, 'CONFLICT']);
    expect(await t.services.rbac.rolesOf(ids.admin)).toContain('ADMIN');
    expect((await admin.req('PUT', `/api/users/${ids.victim}/roles`, { role: 'ADMIN' })).status).toBe(200);
    expect((await admin.req('DELETE', `/api/users/${ids.victim}/roles?role=ADMIN`)).status).toBe(200);
  });

  it('a MANAGE_USERS holder cannot take over, disable or delete an ADMIN of a namespace', async () => {
    const { c } = await signIn(t.url, 'ursula@example.test', pw);
    for (const r of [
      await c.req('PATCH', `/api/users/${ids.nadia}`, { email: 'ursula+owned@example.test' }),
      await c.post(`/api/users/${ids.nadia}/disable`),
      await c.req('DELETE', `/api/users/${ids.nadia}`),
    ])
      expect([r.status, r.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect((await t.services.users.get(ids.nadia))?.email).toBe('nadia@example.test');
    expect((await c.post(`/api/users/${ids.otto}/disable`)).status).toBe(403); // otto holds MANAGE_ROLES now, ursula does not
    expect((await c.post(`/api/users/${ids.victim}/disable`)).status).toBe(200);
  });

  it('an API key that stands for an ADMIN is bounded by its creator and its own permissions, not by the ADMIN it stands for', async () => {
    // Such a key cannot be made over HTTP any more (next test); one made before (or by the service) must still be bounded.
    const made = { body: await t.services.apiKeys.create(ids.keith, { name: 'ops', permissions: ['MANAGE_USERS', 'MANAGE_CONFIG'], identityId: ids.admin }) };
    // Keith (not an ADMIN) may manage users, but not act on an ADMIN: nor through the key.
    const disable = await withKey(made.body.key, 'POST', `/api/users/${ids.nadia}/disable`);
    expect(disable.status).toBe(403);
    const create = await withKey(made.body.key, 'POST', '/api/users', { email: 'sleeper@example.test', password: 'sleeper-long-password-1', roles: ['ADMIN'] });
    expect(create.status).toBe(403);
    const roleMade = await withKey(made.body.key, 'POST', '/api/roles', { name: 'SHADOW', permissions: ['MANAGE_ROLES'] });
    expect(roleMade.status).toBe(403);
    expect((await t.db.query('SELECT 1 FROM identities WHERE email = $1', ['sleeper@example.test'])).rowCount).toBe(0);
    expect((await t.services.users.get(ids.nadia))?.status).toBe('active');
  });

  it('a MANAGE_API_KEYS holder cannot mint a key that stands for someone who holds more (an ADMIN, a namespace ADMIN)', async () => {
    const { c } = await signIn(t.url, 'keith@example.test', pw);
    for (const who of [ids.admin, ids.nadia, ids.otto]) {
      const r = await c.post('/api/api-keys', { name: 'impersonate', permissions: ['MANAGE_USERS'], identityId: who });
      expect([r.status, r.body.code]).toEqual([403, 'PERMISSION_DENIED']);
    }
    expect((await c.post('/api/api-keys', { name: 'svc', permissions: ['MANAGE_USERS'], identityId: ids.victim })).status).toBe(201);
  });
});
