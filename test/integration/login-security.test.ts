import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, device, enrolTotp, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

async function makeUser(t: TestServer, email: string, password = 'a-very-good-password') {
  return t.services.users.create({ email, password, roles: ['PATHOLOGIST'] });
}

describe('risk worker down: fail closed', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ RISK_TIMEOUT_MS: '400' });
  });
  afterAll(async () => t?.close());

  it('steps up with RISK_UNAVAILABLE within the deadline, and denies a user with no factor', async () => {
    await makeUser(t, 'bob@example.test');
    const bob = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('bob') });
    // With the worker running, bob's first login is allowed.
    expect((await bob.passwordLogin('bob@example.test', 'a-very-good-password')).body.step).toBe('done');
    await enrolTotp(bob, t);

    const healthy = await bob.get('/health');
    expect(healthy.status).toBe(200);
    expect(healthy.body).toEqual({ status: 'ok', checks: { db: 'ok', redis: 'ok', queue: 'ok' } });

    await t.stopWorker();
    const sick = await bob.get('/health');
    expect(sick.status).toBe(503);
    expect(sick.body.checks).toEqual({ db: 'ok', redis: 'ok', queue: 'down' });
    const started = Date.now();
    const r = await bob.passwordLogin('bob@example.test', 'a-very-good-password');
    const elapsed = Date.now() - started;
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('choose_method');
    expect(r.body.risk).toEqual({ level: 'high', reasons: ['RISK_UNAVAILABLE'], message: expect.any(String) });
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(5000); // the deadline bounds the wait; no hang
    const { rows } = await t.db.query<{ reasons: string[]; decision: string }>(
      "SELECT reasons, decision FROM login_events WHERE outcome = 'stepped_up' ORDER BY created_at DESC LIMIT 1",
    );
    expect(rows[0]).toEqual({ reasons: ['RISK_UNAVAILABLE'], decision: 'step_up' });

    // A user without a second factor is refused, never let in silently.
    await makeUser(t, 'carol@example.test');
    const carol = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('carol') });
    const denied = await carol.passwordLogin('carol@example.test', 'a-very-good-password');
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('LOGIN_DENIED');
    expect(denied.body.flow.step).toBe('denied');
    expect(denied.headers.getSetCookie().some((c) => c.startsWith('threshold_session='))).toBe(false);
    await t.startWorker();
  });
});

describe('races', () => {
  let t: TestServer;
  beforeAll(async () => {
    // Every login from this range is suspicious (30 ≥ 25): always a TOTP step-up.
    // 20 parallel logins of one account from one IP are in flight together: above the default IP+account limit.
    t = await startTestServer({ RISK_DENY_CIDRS: '81.2.69.0/24', LOCKOUT_THRESHOLD: '50', MFA_MAX_ATTEMPTS: '5', RATE_LIMIT_IP_ACCOUNT_FAILURES: '50' });
  });
  afterAll(async () => t?.close());

  it('accepts the same TOTP code exactly once across 20 parallel submissions', async () => {
    const dave = await makeUser(t, 'dave@example.test');
    // Enrol through the service (a login from the deny-listed range could not reach a session).
    const e = await t.services.totp.enrol(dave.id, dave.email);
    await t.services.totp.confirm(dave.id, e.id, oathtool(e.secret, t.clock.now()));
    const secret = e.secret;
    t.clock.advance(30_000);

    const clients = Array.from({ length: 20 }, (_, i) => new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device(`dave${i}`) }));
    const flows = await Promise.all(
      clients.map(async (c) => {
        const r = await c.passwordLogin('dave@example.test', 'a-very-good-password');
        // TOTP is dave's only method, so the flow asks for it directly.
        expect(r.body.step, JSON.stringify(r.body)).toBe('totp');
        expect(r.body.methods).toEqual(['totp']);
        return r.flowId;
      }),
    );
    const code = oathtool(secret, t.clock.now());
    const results = await Promise.all(clients.map((c, i) => c.post(`/auth/login/${flows[i]}`, { type: 'totp', code })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400).every((r) => r.body.code === 'MFA_CODE_INVALID')).toBe(true);
    expect(results.filter((r) => r.status === 400)).toHaveLength(19);
    const sessions = await t.db.query("SELECT s.id FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE i.email = 'dave@example.test' AND s.amr @> '[\"otp\"]'");
    expect(sessions.rowCount).toBe(1);
  });

  it('applies one of many concurrent events on one flow; the others get 409 FLOW_CONFLICT', async () => {
    await makeUser(t, 'erin@example.test');
    // Not Sydney (1.1.1.1 is Cloudflare, a proxy network: default-3 steps that up) and not the deny-listed London range.
    const c = new Client(t.url, { 'x-forwarded-for': '90.200.1.1', 'x-device-id': device('erin') });
    const start = await c.post('/auth/login', {});
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        c.post(`/auth/login/${start.body.id}`, { type: 'password', identifier: 'erin@example.test', password: 'a-very-good-password' }),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    const conflicts = results.filter((r) => r.status === 409);
    expect(ok).toHaveLength(1);
    expect(conflicts.length + ok.length).toBe(10);
    expect(conflicts.every((r) => ['FLOW_CONFLICT', 'INVALID_EVENT'].includes(r.body.code))).toBe(true);
    const sessions = await t.db.query("SELECT 1 FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE i.email = 'erin@example.test'");
    expect(sessions.rowCount).toBe(1);
  });
});

describe('enumeration and lockout', () => {
  let t: TestServer;
  const pw = 'frank-has-a-long-password';
  beforeAll(async () => {
    // A failure window shorter than the lock, so FAILED_ATTEMPTS has lapsed when the lock does.
    // No progressive delay: the lock-period checks below assume little real time passes.
    t = await startTestServer({ LOCKOUT_THRESHOLD: '3', LOCKOUT_SECONDS: '600', RISK_FAILURE_WINDOW_SECONDS: '300', RATE_LIMIT_DELAY_BASE_MS: '0' });
    await makeUser(t, 'frank@example.test', pw);
  });
  afterAll(async () => t?.close());

  const shape = (b: Record<string, unknown>) => {
    const { flow, ...rest } = b as { flow: Record<string, unknown> };
    const { id: _i, expiresAt: _e, ...f } = flow;
    return { ...rest, flow: f };
  };

  it('answers an unknown user and a wrong password identically', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('enum') });
    const unknown = await c.passwordLogin('nobody@example.test', 'whatever-password');
    const wrong = await c.passwordLogin('frank@example.test', 'whatever-password');
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(wrong.status);
    expect(shape(unknown.body)).toEqual(shape(wrong.body));
    expect(unknown.body.code).toBe('INVALID_CREDENTIALS');
    // Both cost one argon2 verification: compare medians of interleaved samples.
    const time = async (id: string) => {
      const s = await c.post('/auth/login', {});
      const t0 = performance.now();
      await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: id, password: 'whatever-password' });
      return performance.now() - t0;
    };
    const a: number[] = [];
    const b: number[] = [];
    await t.services.users.unlock((await t.services.users.byEmail('frank@example.test'))!.id);
    for (let i = 0; i < 2; i++) {
      a.push(await time('nobody@example.test'));
      b.push(await time('frank@example.test'));
    }
    const med = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const ratio = med(a) / med(b);
    expect(ratio).toBeGreaterThan(0.33);
    expect(ratio).toBeLessThan(3);
    await t.services.users.unlock((await t.services.users.byEmail('frank@example.test'))!.id);
  });

  it('locks after the configured failures, identically for unknown users, and unlocks only after the lock period', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('frank') });
    const lockedShapes = [];
    for (const id of ['frank@example.test', 'ghost@example.test']) {
      const s = await c.post('/auth/login', {});
      let last;
      for (let i = 0; i < 3; i++) last = await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: id, password: 'not-the-password' });
      expect(last!.status).toBe(423);
      expect(last!.body.code).toBe('ACCOUNT_LOCKED');
      expect(last!.body.flow.step).toBe('locked');
      lockedShapes.push(shape(last!.body));
      // A locked flow takes no more events.
      const again = await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: id, password: pw });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('INVALID_EVENT');
    }
    expect(lockedShapes[0]).toEqual(lockedShapes[1]);

    // The right password does not open a locked account, and looks like a wrong one.
    const during = await c.passwordLogin('frank@example.test', pw);
    expect(during.status).toBe(401);
    expect(during.body.code).toBe('INVALID_CREDENTIALS');
    expect(during.headers.getSetCookie().some((x) => x.startsWith('threshold_session='))).toBe(false);

    // Measured from the lock's recorded end, not from when it landed: real time passes between
    // the two (seconds on a loaded machine), and the check must not straddle the end.
    const until = async () =>
      (await t.db.query<{ locked_until: Date }>("SELECT locked_until FROM identities WHERE email = 'frank@example.test'")).rows[0].locked_until.getTime();
    const end = await until();
    expect(end - t.clock.now()).toBeGreaterThan(590_000); // the 600 s period, less the time the test took
    t.clock.advance(end - t.clock.now() - 5_000);
    expect((await c.passwordLogin('frank@example.test', pw)).status).toBe(401);
    expect(await until()).toBe(end); // a refused attempt does not extend the lock
    t.clock.advance(end - t.clock.now() + 1_000);
    const after = await c.passwordLogin('frank@example.test', pw);
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(after.body.step).toBe('done');
    const { rows } = await t.db.query<{ type: string }>("SELECT type FROM audit_events WHERE type IN ('login.locked', 'login.failed')");
    expect(rows.some((r) => r.type === 'login.locked')).toBe(true);
  });
});

describe('admin-only unlock, and locks reach the second factor', () => {
  let t: TestServer;
  const pw = 'gina-has-a-long-password';
  beforeAll(async () => {
    // No deny list needed: default-3 steps up a new device on a foreign hosting network (Hetzner) by itself.
    t = await startTestServer({ LOCKOUT_THRESHOLD: '2', LOCKOUT_SECONDS: '0' });
    await makeUser(t, 'gina@example.test', pw);
  });
  afterAll(async () => t?.close());

  it('stays locked with LOCKOUT_SECONDS=0 until an administrator unlocks', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('gina') });
    for (let i = 0; i < 2; i++) await c.passwordLogin('gina@example.test', 'wrong-password-here');
    t.clock.advance(7 * 24 * 3600 * 1000);
    expect((await c.passwordLogin('gina@example.test', pw)).status).toBe(401);
    const admin = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('admin') });
    expect((await admin.passwordLogin(ADMIN.email, ADMIN.password)).body.step).toBe('done');
    const gina = await t.services.users.byEmail('gina@example.test');
    expect(gina?.locked).toBe(true);
    const un = await admin.post(`/api/users/${gina!.id}/unlock`);
    expect(un.status).toBe(200);
    expect(un.body.locked).toBe(false);
    expect((await c.passwordLogin('gina@example.test', pw)).body.step).toBe('done');
  });

  it('refuses a correct TOTP code once the account is locked mid-flow', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('gina') });
    const first = await c.passwordLogin('gina@example.test', pw);
    expect(first.body.step, JSON.stringify(first.body)).toBe('done');
    const secret = await enrolTotp(c, t);
    t.clock.advance(3 * 3600_000); // London → Falkenstein in 3 h is plausible travel
    const stepped = new Client(t.url, { 'x-forwarded-for': IP.falkenstein, 'x-device-id': device('gina-b') });
    const r = await stepped.passwordLogin('gina@example.test', pw);
    expect(r.body.step, JSON.stringify(r.body)).toBe('choose_method');
    await stepped.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'totp' });
    const gina = await t.services.users.byEmail('gina@example.test');
    await t.services.users.lock(gina!.id);
    const res = await stepped.post(`/auth/login/${r.flowId}`, { type: 'totp', code: oathtool(secret, t.clock.now()) });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('MFA_CODE_INVALID');
    expect(res.headers.getSetCookie().some((x) => x.startsWith('threshold_session='))).toBe(false);
  });
});

describe('flow contract and bad input', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ FLOW_TTL_SECONDS: '60' });
  });
  afterAll(async () => t?.close());

  it('answers unknown flows 404, expired flows 410, events the step does not take 409', async () => {
    const c = new Client(t.url, { 'x-device-id': device('x') });
    expect((await c.get('/auth/login/flw_doesnotexist000000')).body.code).toBe('FLOW_NOT_FOUND');
    expect((await c.get('/auth/login/../../etc')).status).toBe(404);
    const s = await c.post('/auth/login', {});
    const wrong = await c.post(`/auth/login/${s.body.id}`, { type: 'totp', code: '123456' });
    expect(wrong.status).toBe(409);
    expect(wrong.body.code).toBe('INVALID_EVENT');
    expect(wrong.body.flow.step).toBe('password');
    t.clock.advance(61_000);
    const expired = await c.get(`/auth/login/${s.body.id}`);
    expect(expired.status).toBe(410);
    expect(expired.body.code).toBe('FLOW_EXPIRED');
    expect(expired.body.flow.step).toBe('expired');
    expect((await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: 'a@b.c', password: 'x' })).status).toBe(410);
  });

  it('rejects malformed events with VALIDATION_FAILED, other media types with 415, large bodies with 413', async () => {
    const c = new Client(t.url);
    const s = await c.post('/auth/login', {});
    const bad = await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: 'a@b.c' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
    expect(bad.body.detail).toMatch(/password/);
    const extra = await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: 'a', password: 'b', admin: true });
    expect(extra.body.code).toBe('VALIDATION_FAILED');
    const form = await fetch(`${t.url}/auth/login/${s.body.id}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'type=password' });
    expect(form.status).toBe(415);
    expect(form.headers.get('content-type')).toContain('application/problem+json');
    const big = await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: 'a', password: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    // Nothing was lost: the flow still awaits the password.
    expect((await c.get(`/auth/login/${s.body.id}`)).body.step).toBe('password');
  });

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    const u = await startTestServer({ TRUSTED_PROXIES: '', RISK_DENY_CIDRS: '81.2.69.0/24' });
    try {
      await u.services.users.create({ email: 'hal@example.test', password: 'hal-has-a-long-password', roles: [] });
      const c = new Client(u.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('hal') });
      // If the header were believed, the deny-listed range would force a step-up (and, without a factor, a denial).
      const r = await c.passwordLogin('hal@example.test', 'hal-has-a-long-password');
      expect(r.body.step).toBe('done');
      const { rows } = await u.db.query<{ ip: string }>('SELECT ip FROM login_events');
      expect(rows.every((x) => x.ip === '127.0.0.1')).toBe(true);
    } finally {
      await u.close();
    }
  });

  it('never exposes the snapshot or the password', async () => {
    const c = new Client(t.url);
    const s = await c.post('/auth/login', {});
    await c.post(`/auth/login/${s.body.id}`, { type: 'password', identifier: 'nobody@example.test', password: 'secret-pw-123' });
    const got = await c.get(`/auth/login/${s.body.id}`);
    expect(Object.keys(got.body).sort()).toEqual(['expiresAt', 'id', 'messages', 'state', 'step', 'type']);
    const { rows } = await t.db.query<{ snapshot: unknown }>('SELECT snapshot FROM flows WHERE id = $1', [s.body.id]);
    expect(JSON.stringify(rows[0].snapshot)).not.toContain('secret-pw-123');
  });
});
