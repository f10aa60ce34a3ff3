import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginService } from '../../src/flows/login-service.ts';
import { ADMIN, Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

const audited = async (t: TestServer, flowId: string) =>
  (await t.db.query<{ type: string; reason: string }>("SELECT type, reason FROM audit_events WHERE data->>'flow' = $1 ORDER BY seq", [flowId])).rows;

const loginEvents = async (t: TestServer, flowId: string) =>
  (await t.db.query<{ outcome: string; reasons: string[] }>('SELECT outcome, reasons FROM login_events WHERE flow_id = $1 ORDER BY created_at', [flowId])).rows;

describe('a session refused at the cap is no success (SESSION_MAX_PER_USER=1, SESSION_CAP_POLICY=refuse)', () => {
  let t: TestServer;
  const pw = 'rita-has-a-long-password';
  beforeAll(async () => {
    t = await startTestServer({ SESSION_MAX_PER_USER: '1', SESSION_CAP_POLICY: 'refuse' });
    await t.services.users.create({ email: 'rita@example.test', password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => t?.close());

  it('is recorded and audited as denied, leaves the device unknown, and says why', async () => {
    const first = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('rita-a') });
    expect((await first.passwordLogin('rita@example.test', pw)).body.step).toBe('done');

    const laptop = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('rita-b') });
    const refused = await laptop.passwordLogin('rita@example.test', pw);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('LOGIN_DENIED');
    expect(refused.body.reason).toBe('SESSION_LIMIT_REACHED');
    expect(refused.body.detail).toMatch(/sign out elsewhere/i);
    expect(refused.body.flow.step).toBe('denied');
    expect(refused.headers.getSetCookie().some((c) => c.startsWith('threshold_session='))).toBe(false);

    const events = await loginEvents(t, refused.flowId);
    expect(events.map((e) => e.outcome)).toEqual(['denied']);
    expect(events[0].reasons).toContain('SESSION_LIMIT_REACHED');
    const audit = await audited(t, refused.flowId);
    expect(audit.map((a) => a.type)).not.toContain('login.succeeded');
    expect(audit).toContainEqual({ type: 'login.denied', reason: 'SESSION_LIMIT_REACHED' });
    const { rows } = await t.db.query<{ session_id: string | null; state: string }>('SELECT session_id, state FROM flows WHERE id = $1', [refused.flowId]);
    expect(rows[0]).toEqual({ session_id: null, state: 'denied' });
    // The finished flow reads the same when fetched again.
    expect((await laptop.get(`/auth/login/${refused.flowId}`)).body.step).toBe('denied');

    // Sign out the first device: the laptop's next login is still from a device never seen succeed.
    expect((await first.post('/auth/logout')).status).toBeLessThan(300);
    const again = await laptop.passwordLogin('rita@example.test', pw);
    expect(again.status).toBe(200);
    expect(again.body.step).toBe('done');
    expect(again.body.risk.reasons).toContain('NEW_DEVICE');
    expect((await audited(t, again.flowId)).map((a) => a.type)).toContain('login.succeeded');
  });
});

describe('a completion step that fails after the session was made', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
    await t.services.users.create({ email: 'tess@example.test', password: 'tess-has-a-long-password', roles: [] });
  });
  afterAll(async () => t?.close());

  it('leaves no live session the client never received', async () => {
    const s = t.services;
    // The same wiring as the app, with token issuing broken (the last step).
    const login = createLoginService({
      ...s,
      roleNames: s.rbac.rolesOf,
      risk: s.risk.recorder,
      tokens: { ...s.tokens, issue: async () => Promise.reject(new Error('injected: signing key unavailable')) },
    });
    const flow = await login.start({ deviceId: 'dev-tess', ip: IP.london, returnTokens: true });
    const event = { type: 'password', identifier: 'tess@example.test', password: 'tess-has-a-long-password' };
    await expect(login.submit(flow.id, event, { deviceId: 'dev-tess' })).rejects.toThrow(/injected/);
    const { rows } = await t.db.query<{ revoked_at: Date | null }>(
      "SELECT s.revoked_at FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE i.email = 'tess@example.test'",
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].revoked_at).not.toBeNull();
    // Nothing recorded it as a success: risk history does not learn the device from it.
    const events = await loginEvents(t, flow.id);
    expect(events.map((e) => e.outcome)).not.toContain('succeeded');
    expect((await audited(t, flow.id)).map((a) => a.type)).not.toContain('login.succeeded');
  });
});

describe('answers that say why (LOGIN_DENIED reason, plain words, JSON state)', () => {
  let t: TestServer;
  beforeAll(async () => {
    // Every login from this range is risky enough to need a second factor.
    t = await startTestServer({ RISK_DENY_CIDRS: '81.2.69.0/24' });
    await t.services.users.create({ email: 'nina@example.test', password: 'nina-has-a-long-password', roles: [] });
  });
  afterAll(async () => t?.close());

  it('a user with no second factor who must step up is told what happened and what to do', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('nina') });
    const r = await c.passwordLogin('nina@example.test', 'nina-has-a-long-password');
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('LOGIN_DENIED');
    expect(r.body.reason).toBe('MFA_REQUIRED_NO_FACTOR');
    expect(r.body.detail).toMatch(/no second factor/);
    expect(r.body.detail).toMatch(/administrator/);
    // No signal internals.
    expect(JSON.stringify(r.body.detail)).not.toMatch(/NEW_DEVICE|FAILED_ATTEMPTS|DENY_CIDR|score/i);
    expect(r.body.flow.step).toBe('denied');
    expect(r.body.flow.state).toBe('denied');
  });

  it('the freshly printed admin after three typos is told why, not just refused', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('admin') });
    for (let i = 0; i < 3; i++) expect((await c.passwordLogin(ADMIN.email, `typo-${i}-${ADMIN.password}`)).body.code).toBe('INVALID_CREDENTIALS');
    const r = await c.passwordLogin(ADMIN.email, ADMIN.password);
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'LOGIN_DENIED', reason: 'MFA_REQUIRED_NO_FACTOR' });
    expect(r.body.detail).toMatch(/device you have used before/);
  });

  it('a wrong password (known or unknown user) says nothing more than INVALID_CREDENTIALS', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('nina2') });
    const known = await c.passwordLogin('nina@example.test', 'not-the-password');
    const unknown = await c.passwordLogin('nobody@example.test', 'not-the-password');
    for (const r of [known, unknown]) {
      expect(r.status).toBe(401);
      expect(r.body.code).toBe('INVALID_CREDENTIALS');
      expect(r.body.reason).toBeUndefined();
      expect(r.body.detail).toBeUndefined();
    }
    expect(Object.keys(known.body).sort()).toEqual(Object.keys(unknown.body).sort());
  });

  it("a flow's state is a JSON value, not a string of JSON", async () => {
    const admin = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('admin') });
    const start = await admin.post('/auth/login', {});
    expect(start.body.state).toBe('awaitingPassword');
    // A nested state value is presented as an object.
    const { presentFlow } = await import('../../src/http/present.ts');
    const row = await t.services.login.runtime.load(start.body.id);
    const nested = presentFlow({ ...row, snapshot: { ...row.snapshot, value: { stepUp: 'checking' } } });
    expect(nested.state).toEqual({ stepUp: 'checking' });
  });
});

describe('a user with no second factor when the risk check cannot run (no worker)', () => {
  let t: TestServer;
  const pw = 'nora-has-a-long-password';
  beforeAll(async () => {
    t = await startTestServer({ RISK_TIMEOUT_MS: '300' });
    await t.services.users.create({ email: 'nora@example.test', password: pw, roles: ['PATHOLOGIST'] });
    await t.stopWorker();
  });
  afterAll(async () => t?.close());

  it('is refused fail-closed and told the check could not run, not that the sign-in looks unusual', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('nora') });
    const r = await c.passwordLogin('nora@example.test', pw);
    expect([r.status, r.body.code, r.body.reason]).toEqual([403, 'LOGIN_DENIED', 'MFA_REQUIRED_NO_FACTOR']);
    expect(r.body.detail).toMatch(/could not be checked/);
    expect(r.body.detail).not.toMatch(/looks unusual/);
    expect(r.body.flow.risk.reasons).toContain('RISK_UNAVAILABLE');
  });
});
