import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../src/risk/policy.ts';
import { Client, device, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Remembered devices (issue 12 item 5) over HTTP on real Postgres, Redis and the BullMQ risk
 * worker. The attempts come from a deny-listed address, a risk that history never learns away:
 * every login from it is stepped up unless the device is remembered.
 */
const BAD_IP = '81.2.69.160';
const COOKIE = 'threshold_remember';

describe('remembered devices', () => {
  let t: TestServer;
  let secret = '';
  let userId = '';
  const email = 'rita@example.test';
  let pw = 'rita-has-a-long-password';

  beforeAll(async () => {
    t = await startTestServer({ RISK_DENY_CIDRS: `${BAD_IP}/32` });
    const u = await t.services.users.create({ email, password: pw, roles: ['PATHOLOGIST'] });
    userId = u.id;
    const e = await t.services.totp.enrol(u.id, u.email);
    secret = e.secret;
    await t.services.totp.confirm(u.id, e.id, oathtool(secret, t.clock.now()));
    // A deny-listed address weighs 30 here (medium band); a remembered device -35, as the policy says.
    const doc = { ...DEFAULT_POLICY, version: 'remember-test', weights: { ...DEFAULT_POLICY.weights, SUSPICIOUS_IP: 30, REMEMBERED_DEVICE: -35 } };
    await t.db.query('UPDATE risk_policies SET active = false WHERE active');
    await t.db.query('INSERT INTO risk_policies (version, document, active, created_at) VALUES ($1, $2::jsonb, true, now())', [doc.version, JSON.stringify(doc)]);
  });
  afterAll(async () => t?.close());

  const browser = (name: string) => new Client(t.url, { 'x-forwarded-for': BAD_IP, 'x-device-id': device(name), 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36' });

  /** A login with the password: answers the flow after the password step. */
  const login = async (c: Client) => {
    const r = await c.passwordLogin(email, pw);
    expect(r.status).toBe(200);
    return r;
  };
  /** The TOTP step of a stepped-up login, each at a new time step (a code is accepted once). */
  const totp = async (c: Client, flowId: string, remember?: boolean) => {
    t.clock.advance(31_000);
    const r = await c.post(`/auth/login/${flowId}`, { type: 'totp', code: oathtool(secret, t.clock.now()), ...(remember === undefined ? {} : { remember }) });
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('done');
    return r;
  };
  /** A stepped-up login whose TOTP step asks to remember the device. */
  const remembered = async (c: Client) => {
    const r = await login(c);
    expect(r.body.step).toBe('totp');
    const done = await totp(c, r.flowId, true);
    expect(c.cookies.get(COOKIE)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return done;
  };

  it('a remembered device is not stepped up again at the same risk, and never gets mfa from it', async () => {
    const c = browser('a');
    const first = await remembered(c);
    expect(first.body.session.amr).toEqual(['pwd', 'otp', 'mfa']);

    const again = await login(c);
    expect(again.body.step).toBe('done');
    expect(again.body.risk.reasons).toContain('REMEMBERED_DEVICE');
    expect(again.body.risk.reasons).toContain('SUSPICIOUS_IP');
    expect(again.body.session.amr).toEqual(['pwd']);
    // WRITE_BACK_EPIC needs mfa within 15 minutes: the remembered device is no factor.
    const epic = await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' });
    expect(epic.status).toBe(401);
    expect(epic.headers.get('www-authenticate')).toContain('insufficient_user_authentication');

    // Listed with a name, first and last seen and the place; no token or device id in it.
    const list = await c.get('/auth/devices');
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(1);
    expect(list.body[0]).toMatchObject({ name: 'Chrome on Linux', country: 'GB' });
    expect(Object.keys(list.body[0]).sort()).toEqual(['country', 'expiresAt', 'firstSeenAt', 'id', 'lastSeenAt', 'name']);
    expect(Date.parse(list.body[0].lastSeenAt)).toBeGreaterThan(Date.parse(list.body[0].firstSeenAt));
  });

  it('without remember, the same device is stepped up every time (the control)', async () => {
    const c = browser('control');
    const r = await login(c);
    expect(r.body.step).toBe('totp');
    await totp(c, r.flowId);
    expect(c.cookies.has(COOKIE)).toBe(false);
    expect((await login(c)).body.step).toBe('totp');
  });

  it('a login allowed without a step-up cannot remember the device', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': '81.2.69.142', 'x-device-id': device('plain') });
    const start = await c.post('/auth/login', {});
    const r = await c.post(`/auth/login/${start.body.id}`, { type: 'password', identifier: email, password: pw });
    expect(r.body.step).toBe('done');
    // `remember` belongs to factor events only; on a password event it is refused.
    const bad = await c.post('/auth/login', {});
    const withFlag = await c.post(`/auth/login/${bad.body.id}`, { type: 'password', identifier: email, password: pw, remember: true });
    expect(withFlag.status).toBe(400);
    expect(c.cookies.has(COOKIE)).toBe(false);
  });

  it('is stepped up again after the user revokes it; someone else cannot revoke it', async () => {
    const c = browser('revoke');
    await remembered(c);
    const mine = (await c.get('/auth/devices')).body.find((d: { lastSeenAt: string }) => d) as { id: string };
    const other = await t.services.users.create({ email: 'mallory@example.test', password: 'mallory-long-password', roles: [] });
    const m = new Client(t.url, { 'x-forwarded-for': '81.2.69.142', 'x-device-id': device('mallory') });
    expect((await m.passwordLogin(other.email, 'mallory-long-password')).body.step).toBe('done');
    expect((await m.req('DELETE', `/auth/devices/${mine.id}`)).status).toBe(404);
    expect((await m.req('DELETE', '/auth/devices/not-a-uuid')).status).toBe(404);

    const all = (await c.get('/auth/devices')).body as { id: string }[];
    for (const d of all) expect((await c.req('DELETE', `/auth/devices/${d.id}`)).status).toBe(204);
    expect((await c.get('/auth/devices')).body).toEqual([]);
    expect((await login(c)).body.step).toBe('totp');
  });

  it('a rotated token presented again is refused and forgets the device', async () => {
    const c = browser('replay');
    await remembered(c);
    const stolen = c.cookies.get(COOKIE)!;
    // The owner uses it: it rotates.
    expect((await login(c)).body.step).toBe('done');
    const current = c.cookies.get(COOKIE)!;
    expect(current).not.toBe(stolen);
    // The copy is presented again (same device id: a full copy of the browser's secrets).
    const copy = new Client(t.url, c.headers);
    copy.cookies.set(COOKIE, stolen);
    const replay = await login(copy);
    expect(replay.body.step).toBe('totp');
    expect(copy.cookies.has(COOKIE)).toBe(false);
    // The device is forgotten: even the owner's current token no longer counts.
    expect((await login(c)).body.step).toBe('totp');
    const { rows } = await t.db.query<{ revoked_reason: string }>('SELECT revoked_reason FROM remembered_devices WHERE identity_id = $1 AND revoked_reason = $2', [userId, 'TOKEN_REUSE']);
    expect(rows.length).toBe(1);
  });

  it('50 parallel uses of one token: exactly one rotates it, the rest read as a replay and the device is forgotten', async () => {
    const c = browser('race');
    await remembered(c);
    const token = c.cookies.get(COOKIE)!;
    const dev = c.headers['x-device-id'];
    const results = await Promise.all(Array.from({ length: 50 }, () => t.services.remembered.use(token, dev)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'REUSED').length).toBe(49);
    const winner = results.find((r) => r.ok)!;
    if (!winner.ok) throw new Error('unreachable');
    // The winner's fresh token is dead too: a copy was in use, so the device is no longer trusted.
    expect(await t.services.remembered.use(winner.token, dev)).toEqual({ ok: false, reason: 'EXPIRED' });
  });

  it("the policy caps the days per band (rememberDeviceDays), 0 remembers nothing", async () => {
    const activate = async (version: string, days: { medium?: number; high?: number }) => {
      const doc = { ...DEFAULT_POLICY, version, weights: { ...DEFAULT_POLICY.weights, SUSPICIOUS_IP: 30, REMEMBERED_DEVICE: -35 }, rememberDeviceDays: days };
      await t.db.query('UPDATE risk_policies SET active = false WHERE active');
      await t.db.query('INSERT INTO risk_policies (version, document, active, created_at) VALUES ($1, $2::jsonb, true, now())', [version, JSON.stringify(doc)]);
    };
    try {
      await activate('remember-2-days', { medium: 2 });
      const c = browser('capped');
      await remembered(c);
      const [d] = (await c.get('/auth/devices')).body as { expiresAt: string }[];
      expect(Date.parse(d.expiresAt) - t.clock.now()).toBeGreaterThan(2 * 86_400_000 - 60_000);
      expect(Date.parse(d.expiresAt) - t.clock.now()).toBeLessThanOrEqual(2 * 86_400_000);

      await activate('remember-never', { medium: 0 });
      const n = browser('never');
      const r = await login(n);
      await totp(n, r.flowId, true);
      expect(n.cookies.has(COOKIE)).toBe(false);
      expect((await n.get('/auth/devices')).body).toHaveLength(1); // only the capped one above
    } finally {
      await t.db.query('UPDATE risk_policies SET active = false WHERE active');
      await t.db.query("UPDATE risk_policies SET active = true WHERE version = 'remember-test'");
    }
  });

  it('a token is bound to its device: on another device id it counts for nothing', async () => {
    const c = browser('bound');
    await remembered(c);
    const other = browser('elsewhere');
    other.cookies.set(COOKIE, c.cookies.get(COOKIE)!);
    expect((await login(other)).body.step).toBe('totp');
    // And the owner's token still works (a mismatched device is no reuse).
    expect((await login(c)).body.step).toBe('done');
  });

  it('"this wasn\'t me" forgets every remembered device', async () => {
    const c = browser('report');
    const done = await remembered(c);
    const ev = await t.db.query<{ id: string }>("SELECT id FROM login_events WHERE identity_id = $1 AND outcome = 'succeeded' ORDER BY created_at DESC LIMIT 1", [userId]);
    const sid = (await t.services.sessions.listFor(userId)).find((s) => s.amr.includes('mfa'))!.id;
    expect(done.body.session).toBeTruthy();
    const token = await t.services.reports.create({ identityId: userId, sessionId: sid, loginEventId: ev.rows[0].id });
    const r = await new Client(t.url).post(`/auth/report/${token}`, undefined, { accept: 'application/json' });
    expect(r.status).toBe(200);
    expect(await t.services.remembered.list(userId)).toEqual([]);
    expect((await login(c)).body.step).toBe('totp');
  });

  it('is stepped up again after a password change', async () => {
    const c = browser('password');
    await remembered(c);
    expect((await login(c)).body.step).toBe('done');
    // Change it from the session that proved TOTP (fresh MFA is required for that).
    const mfaSession = browser('changer');
    const r = await login(mfaSession);
    await totp(mfaSession, r.flowId);
    const changed = await mfaSession.post('/auth/password', { currentPassword: pw, newPassword: 'a brand new long passphrase' });
    expect(changed.status).toBe(200);
    pw = 'a brand new long passphrase';
    expect(await t.services.remembered.list(userId)).toEqual([]);
    expect((await login(c)).body.step).toBe('totp');
  });
});
