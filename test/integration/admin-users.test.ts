import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, enrolTotp, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

/** The admin API's users over HTTP (issue 11 §3): listing, pages, search, changes and their audit. */
describe('/api/users', () => {
  let t: TestServer;
  let admin: Client;
  const pw = 'a-long-enough-password';
  beforeAll(async () => {
    t = await startTestServer();
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  const lastAudit = async (type: string, subject: string) =>
    (
      await t.db.query<{ actor: string; data: any }>('SELECT actor, data FROM audit_events WHERE type = $1 AND subject = $2 ORDER BY seq DESC LIMIT 1', [
        type,
        subject,
      ])
    ).rows[0];

  it('answers 401 without a session and 403 without the permission, on every admin read', async () => {
    await t.services.users.create({ email: 'tech@example.test', password: pw, roles: ['TECHNICIAN'] });
    const tech = (await signIn(t.url, 'tech@example.test', pw)).c;
    const anon = new Client(t.url);
    for (const path of ['/api/users', '/api/sessions', '/api/roles', '/api/permissions', `/api/users/${crypto.randomUUID()}`]) {
      expect((await anon.get(path)).status, path).toBe(401);
      const r = await tech.get(path);
      expect([r.status, r.body.code], path).toEqual([403, 'PERMISSION_DENIED']);
    }
    expect((await tech.req('PATCH', `/api/users/${crypto.randomUUID()}`, { displayName: 'x' })).status).toBe(403);
    expect((await tech.req('DELETE', `/api/users/${crypto.randomUUID()}`)).status).toBe(403);
  });

  it('pages oldest first with an opaque cursor; every user once while others are created concurrently', async () => {
    for (let i = 0; i < 24; i++) await t.services.users.create({ email: `page-${String(i).padStart(2, '0')}@example.test`, roles: [] });
    const before = (await t.db.query<{ id: string }>('SELECT id FROM identities')).rows.map((r) => r.id);
    const seen: string[] = [];
    const walk = async () => {
      let cursor: string | null = null;
      do {
        const r: { status: number; body: any } = await admin.get(`/api/users?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
        expect(r.status).toBe(200);
        expect(r.body.items.length).toBeLessThanOrEqual(4);
        seen.push(...r.body.items.map((u: { id: string }) => u.id));
        cursor = r.body.nextCursor;
      } while (cursor);
    };
    const inserts = Array.from({ length: 20 }, (_, i) => admin.post('/api/users', { email: `during-${i}@example.test`, roles: [] }));
    const [, ...made] = await Promise.all([walk(), ...inserts]);
    expect(made.every((m) => m.status === 201)).toBe(true);
    expect(new Set(seen).size).toBe(seen.length); // nothing twice
    for (const id of before) expect(seen.filter((x) => x === id)).toHaveLength(1); // nothing skipped
  });

  it('searches by email prefix (case-insensitive, LIKE characters literal) and filters by status', async () => {
    const r = await admin.get('/api/users?search=PAGE-1&limit=200');
    expect(r.body.items.map((u: { email: string }) => u.email)).toEqual(Array.from({ length: 10 }, (_, i) => `page-1${i}@example.test`));
    expect((await admin.get('/api/users?search=page_&limit=200')).body.items).toEqual([]);
    expect((await admin.get('/api/users?search=%25')).body.items).toEqual([]);
    expect((await admin.get('/api/users?status=disabled')).body.items).toEqual([]);
  });

  it('refuses a forged cursor with INVALID_CURSOR and an unbounded limit with VALIDATION_FAILED', async () => {
    for (const bad of ['nope', Buffer.from('["2020-01-01T00:00:00.000000Z","x"]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url'), 'a'.repeat(300)]) {
      const r = await admin.get(`/api/users?cursor=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.code, bad).toBe(bad.length > 200 ? 'VALIDATION_FAILED' : 'INVALID_CURSOR');
    }
    expect((await admin.get('/api/users?limit=201')).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/users?limit=0')).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/users?bogus=1')).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/users?limit=2&limit=3')).body.code).toBe('VALIDATION_FAILED');
  });

  it('reads one user with factors and live sessions; updates are audited with before and after', async () => {
    const u = await t.services.users.create({ email: 'vera@example.test', password: pw, roles: ['PATHOLOGIST'], displayName: 'Vera' });
    await signIn(t.url, 'vera@example.test', pw);
    const got = await admin.get(`/api/users/${u.id}`);
    expect(got.body).toMatchObject({ id: u.id, email: 'vera@example.test', roles: ['PATHOLOGIST'], factors: [], liveSessions: 1 });
    expect((await admin.get('/api/users/not-a-uuid')).status).toBe(404);

    const r = await admin.req('PATCH', `/api/users/${u.id}`, { displayName: 'Vera V.', email: 'Vera.V@Example.test' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ email: 'vera.v@example.test', displayName: 'Vera V.' });
    const a = await lastAudit('user.updated', u.id);
    expect(a.data.before).toMatchObject({ email: 'vera@example.test', displayName: 'Vera' });
    expect(a.data.after).toMatchObject({ email: 'vera.v@example.test', displayName: 'Vera V.' });
    expect((await admin.req('PATCH', `/api/users/${u.id}`, { email: 'tech@example.test' })).body.code).toBe('CONFLICT');
    expect((await admin.req('PATCH', `/api/users/${u.id}`, {})).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.req('PATCH', `/api/users/${u.id}`, { roles: ['ADMIN'] })).body.code).toBe('VALIDATION_FAILED');
  });

  it('lock, unlock, disable and enable: sessions end at once, each change audited before/after', async () => {
    const u = await t.services.users.create({ email: 'lena@example.test', password: pw, roles: ['PATHOLOGIST'] });
    const { c } = await signIn(t.url, 'lena@example.test', pw, { device: device('lena') });
    expect((await admin.post(`/api/users/${u.id}/lock`)).body.locked).toBe(true);
    expect((await c.get('/auth/check')).body.authenticated).toBe(false);
    expect(await lastAudit('user.locked', u.id)).toMatchObject({ data: { before: { locked: false }, after: { locked: true }, endedSessions: 1 } });
    expect((await admin.get('/api/users?locked=true')).body.items.map((x: { id: string }) => x.id)).toContain(u.id);
    expect((await admin.post(`/api/users/${u.id}/unlock`)).body.locked).toBe(false);
    expect(await lastAudit('user.unlocked', u.id)).toMatchObject({ data: { before: { locked: true }, after: { locked: false } } });

    const again = (await signIn(t.url, 'lena@example.test', pw, { device: device('lena2') })).c;
    const d = await admin.post(`/api/users/${u.id}/disable`);
    expect(d.body.status).toBe('disabled');
    expect((await again.get('/auth/check')).body.authenticated).toBe(false);
    expect(await lastAudit('user.disabled', u.id)).toMatchObject({ data: { before: { status: 'active' }, after: { status: 'disabled' }, endedSessions: 1 } });
    expect((await new Client(t.url).passwordLogin('lena@example.test', pw)).status).not.toBe(200);
    expect((await admin.get('/api/users?status=disabled')).body.items.map((x: { id: string }) => x.id)).toEqual([u.id]);
    expect((await admin.post(`/api/users/${u.id}/enable`)).body.status).toBe('active');
    expect(await lastAudit('user.enabled', u.id)).toMatchObject({ data: { before: { status: 'disabled' }, after: { status: 'active' } } });
    await signIn(t.url, 'lena@example.test', pw, { device: device('lena3') });
  });

  it('an administrator cannot delete, disable or lock themselves', async () => {
    const me = (await admin.get('/auth/me')).body.user.id;
    for (const [m, p] of [['DELETE', `/api/users/${me}`], ['POST', `/api/users/${me}/disable`], ['POST', `/api/users/${me}/lock`]]) {
      const r = await admin.req(m, p, m === 'POST' ? {} : undefined);
      expect([r.status, r.body.code], p).toEqual([409, 'SELF_ACTION_REFUSED']);
    }
  });

  it('deleting a user ends their sessions and tokens at once (forward-auth 401) and removes their factors', async () => {
    const u = await t.services.users.create({ email: 'dora@example.test', password: pw, roles: ['PATHOLOGIST'] });
    const { c, token } = await signIn(t.url, 'dora@example.test', pw, { device: device('dora'), returnTokens: true });
    const verify = (h: Record<string, string>) => fetch(`${t.url}/auth/verify`, { headers: h }).then((r) => r.status);
    expect(await verify({ authorization: `Bearer ${token}` })).toBe(200); // warms the verify cache
    expect((await c.get('/auth/verify')).status).toBe(200);
    await enrolTotp(c, t);
    const detail = await admin.get(`/api/users/${u.id}`);
    expect(detail.body.factors.map((f: { type: string }) => f.type)).toEqual(['totp', 'recovery_code']);

    expect((await admin.req('DELETE', `/api/users/${u.id}`)).status).toBe(204);
    expect(await verify({ authorization: `Bearer ${token}` })).toBe(401);
    expect((await c.get('/auth/verify')).status).toBe(401);
    expect((await admin.get(`/api/users/${u.id}`)).status).toBe(404);
    expect((await admin.req('DELETE', `/api/users/${u.id}`)).status).toBe(404);
    const left = await t.db.query(`SELECT 1 FROM sessions WHERE identity_id = $1 UNION ALL SELECT 1 FROM refresh_families WHERE identity_id = $1
        UNION ALL SELECT 1 FROM totp_factors WHERE identity_id = $1 UNION ALL SELECT 1 FROM recovery_codes WHERE identity_id = $1`, [u.id]);
    expect(left.rowCount).toBe(0);
    const a = await lastAudit('user.deleted', u.id);
    expect(a.data).toMatchObject({ before: { email: 'dora@example.test', roles: ['PATHOLOGIST'] }, endedSessions: 1 });
  });
});
