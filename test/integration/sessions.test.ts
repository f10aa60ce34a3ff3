import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, signIn as signInAs, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

const MIN = 60_000;

describe('session lifecycle over HTTP', () => {
  let t: TestServer;
  const pw = 'olga-has-a-long-password';
  beforeAll(async () => {
    t = await startTestServer({ SESSION_IDLE_SECONDS: '1200', SESSION_ABSOLUTE_SECONDS: '3600', SESSION_WARNING_SECONDS: '300' });
    await t.services.users.create({ email: 'olga@example.test', password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => t?.close());

  const signIn = async (name = 'olga') => (await signInAs(t.url, 'olga@example.test', pw, { device: device(name) })).c;

  it('activity every 10 minutes still ends the session at the absolute lifetime; the warning appears and clears', async () => {
    const c = await signIn();
    const active = async () => (await c.post('/auth/authorize', { permission: 'VIEW_CASES' })).status;
    // A status read inside the window warns; it does not extend the session.
    t.clock.advance(16 * MIN);
    const me = await c.get('/auth/me');
    expect(me.body.session.warning).toBe(true);
    expect(Date.parse(me.body.session.warningEndsAt) - t.clock.now()).toBeLessThanOrEqual(5 * MIN);
    expect(await active()).toBe(200); // activity...
    expect((await c.get('/auth/me')).body.session.warning).toBe(false); // ...clears it
    let minutes = 16;
    while (minutes + 10 < 60) {
      t.clock.advance(10 * MIN);
      minutes += 10;
      expect(await active(), `at ${minutes} min`).toBe(200);
    }
    t.clock.advance((60 - minutes) * MIN); // the absolute lifetime, whatever the activity
    expect(await active()).toBe(401);
    expect((await c.get('/auth/check')).body.authenticated).toBe(false);
    t.clock.offset = 0;
  });

  it('a session left idle expires, and expired sessions are removed from the store', async () => {
    const c = await signIn('olga-idle');
    const id = (await c.get('/auth/me')).body.session.id;
    t.clock.advance(21 * MIN);
    expect((await c.get('/auth/me')).status).toBe(401);
    expect((await t.db.query('SELECT 1 FROM sessions WHERE id = $1', [id])).rowCount).toBe(0);
    t.clock.offset = 0;
  });

  it('lists my sessions and revokes another device at once', async () => {
    const a = await signIn('olga-a');
    const b = await signIn('olga-b');
    const list = await a.get('/auth/sessions');
    const mine = list.body.find((x: { current: boolean }) => x.current);
    const other = list.body.find((x: { id: string }) => x.id === (/* b's id */ undefined));
    expect(mine).toBeDefined();
    expect(other).toBeUndefined();
    const bId = (await b.get('/auth/me')).body.session.id;
    expect(list.body.map((x: { id: string }) => x.id)).toContain(bId);
    expect(list.body[0]).toHaveProperty('country', 'GB');
    expect(list.body[0]).not.toHaveProperty('ip');
    expect((await a.req('DELETE', `/auth/sessions/${bId}`)).status).toBe(204);
    expect((await b.get('/auth/check')).body.authenticated).toBe(false);
    // Another user's session id is not mine to revoke.
    const admin = await signInAdmin(t);
    const adminSession = (await admin.get('/auth/me')).body.session.id;
    expect((await a.req('DELETE', `/auth/sessions/${adminSession}`)).status).toBe(404);
  });

  it('admins list, lock, unlock and revoke sessions', async () => {
    const c = await signIn('olga-locked');
    const sid = (await c.get('/auth/me')).body.session.id;
    const admin = await signInAdmin(t);
    const olga = await t.services.users.byEmail('olga@example.test');
    const listed = await admin.get(`/api/sessions?userId=${olga!.id}`);
    expect(listed.body.items.map((x: { id: string }) => x.id)).toContain(sid);
    expect((await admin.post(`/api/sessions/${sid}/lock`)).status).toBe(204);
    expect((await c.get('/auth/check')).body.authenticated).toBe(false);
    expect((await c.post('/auth/authorize', { permission: 'VIEW_CASES' })).status).toBe(401);
    expect((await admin.post(`/api/sessions/${sid}/unlock`)).status).toBe(204);
    expect((await c.get('/auth/check')).body.authenticated).toBe(true);
    expect((await admin.req('DELETE', `/api/sessions/${sid}`)).status).toBe(204);
    expect((await c.get('/auth/check')).body.authenticated).toBe(false);
    expect((await c.post('/api/sessions/x/lock')).status).toBe(401);
  });

  it('locking the account ends its live sessions and their access tokens at once', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('olga-acct') });
    const r = await c.passwordLogin('olga@example.test', pw, { returnTokens: true });
    const token = r.body.tokens.access_token;
    const admin = await signInAdmin(t);
    const olga = await t.services.users.byEmail('olga@example.test');
    expect((await admin.post(`/api/users/${olga!.id}/lock`)).status).toBe(200);
    expect((await c.get('/auth/check')).body.authenticated).toBe(false);
    expect((await new Client(t.url).get('/auth/verify', { authorization: `Bearer ${token}` })).status).toBe(401);
    expect((await new Client(t.url).post('/auth/authorize', { permission: 'VIEW_CASES' }, { authorization: `Bearer ${token}` })).status).toBe(401);
    await admin.post(`/api/users/${olga!.id}/unlock`);
  });
});

describe('password change', () => {
  it('needs the current password and ends every other session unless asked to keep them', async () => {
    const t = await startTestServer();
    try {
      await t.services.users.create({ email: 'quin@example.test', password: 'quin-old-password', roles: [] });
      const sign = async (n: string) => {
        const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device(n) });
        expect((await c.passwordLogin('quin@example.test', 'quin-old-password')).body.step).toBe('done');
        return c;
      };
      const a = await sign('quin-a');
      const b = await sign('quin-b');
      const c = await sign('quin-c');
      const wrong = await a.post('/auth/password', { currentPassword: 'not-it-at-all', newPassword: 'quin-new-password' });
      expect(wrong.status).toBe(401);
      expect((await a.post('/auth/password', { currentPassword: 'quin-old-password', newPassword: 'short' })).body.code).toBe('PASSWORD_REJECTED');
      const keep = await a.post('/auth/password', { currentPassword: 'quin-old-password', newPassword: 'a-mid-passphrase-1', endOtherSessions: false });
      expect(keep.body).toEqual({ changed: true, endedSessions: 0 });
      expect((await b.get('/auth/check')).body.authenticated).toBe(true);
      const end = await a.post('/auth/password', { currentPassword: 'a-mid-passphrase-1', newPassword: 'a-new-passphrase-2' });
      expect(end.body).toEqual({ changed: true, endedSessions: 2 });
      expect((await a.get('/auth/check')).body.authenticated).toBe(true);
      expect((await b.get('/auth/check')).body.authenticated).toBe(false);
      expect((await c.get('/auth/check')).body.authenticated).toBe(false);
      const fresh = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('quin-a') });
      expect((await fresh.passwordLogin('quin@example.test', 'quin-old-password')).status).toBe(401);
      expect((await fresh.passwordLogin('quin@example.test', 'a-new-passphrase-2')).body.step).toBe('done');
    } finally {
      await t.close();
    }
  });
});

describe('concurrent-session cap under concurrent logins', () => {
  for (const policy of ['evict_oldest', 'refuse'] as const) {
    it(`${policy}: 20 concurrent logins at a cap of 3 leave exactly 3 sessions`, async () => {
      // Attempts in flight count toward the lockout, so the burst of 20 needs a threshold above it.
      const t = await startTestServer({ SESSION_MAX_PER_USER: '3', SESSION_CAP_POLICY: policy, PASSWORD_HASH_CONCURRENCY: '2', LOCKOUT_THRESHOLD: '50', RATE_LIMIT_IP_ACCOUNT_FAILURES: '50' });
      try {
        await t.services.users.create({ email: 'pat@example.test', password: 'pat-has-a-long-password', roles: [] });
        const dev = device('pat');
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': dev }).passwordLogin('pat@example.test', 'pat-has-a-long-password'),
          ),
        );
        const { rows } = await t.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE i.email = 'pat@example.test' AND s.revoked_at IS NULL",
        );
        expect(rows[0].n).toBe(3);
        const ok = results.filter((r) => r.status === 200).length;
        if (policy === 'refuse') {
          expect(ok).toBe(3);
          expect(results.filter((r) => r.status === 409).every((r) => r.body.code === 'SESSION_LIMIT_REACHED')).toBe(true);
        } else {
          expect(ok).toBe(20);
          const evicted = await t.db.query("SELECT 1 FROM sessions WHERE revoke_reason = 'evicted'");
          expect(evicted.rowCount).toBe(17);
        }
      } finally {
        await t.close();
      }
    }, 60_000);
  }
});

describe('the idle slide of cookie sessions is batched (issue 9)', () => {
  it('a burst of requests writes the session once; a request after the granularity (60 s) writes again', async () => {
    const { createTestDb } = await import('../helpers/db.ts');
    const { createSessionService } = await import('../../src/session/sessions.ts');
    const { ManualClock } = await import('../../src/clock.ts');
    const tdb = await createTestDb();
    try {
      const writes: string[] = [];
      const db = {
        ...tdb.db,
        query: ((sql: string, params?: unknown[]) => {
          if (/^\s*UPDATE sessions/.test(sql)) writes.push(sql);
          return tdb.db.query(sql, params as never);
        }) as typeof tdb.db.query,
      };
      const clock = new ManualClock();
      const sessions = createSessionService({ db, clock, idleSeconds: 1800, absoluteSeconds: 43200 });
      const { rows } = await tdb.db.query<{ id: string }>("INSERT INTO identities (id, email, created_at) VALUES (gen_random_uuid(), 'slide@example.test', now()) RETURNING id");
      const { token } = await sessions.create({ identityId: rows[0].id, amr: ['pwd'], acr: 'a', authTime: Math.floor(clock.now() / 1000), factorTimes: {}, deviceId: null, ip: null, country: null });
      for (let i = 0; i < 10; i++) {
        clock.advance(5_000);
        expect(await sessions.authenticate(token, 'activity')).not.toBeNull();
      }
      expect(writes).toHaveLength(0); // 50 s of requests: nothing to write yet
      clock.advance(11_000);
      const s = await sessions.authenticate(token, 'activity');
      expect(writes).toHaveLength(1);
      expect(s!.idleExpiresAt).toBe(clock.now() + 1800_000);
    } finally {
      await tdb.drop();
    }
  });
});
