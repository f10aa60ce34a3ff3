import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { ADMIN, Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Issue 7 (hardening), items 3, 4, 7 and 8, over HTTP as a user's browser meets them:
 * cross-site and sibling-subdomain forms, the dev mailbox behind a proxy, framing, and flows
 * finished from another device.
 */
const OWN = 'https://id.sibling.example';
const SIBLING = 'https://evil.sibling.example';
const FOREIGN = 'https://evil.example';

/** What a browser adds to a request from Threshold's own page. */
const SAME_ORIGIN = { origin: OWN, 'sec-fetch-site': 'same-origin' };
/** Everything a hostile page can make a browser send, with the user's cookies. */
const ATTACKS: Record<string, Record<string, string>> = {
  'a sibling subdomain (same-site, which SameSite=Lax lets through)': { origin: SIBLING, 'sec-fetch-site': 'same-site' },
  'a foreign site': { origin: FOREIGN, 'sec-fetch-site': 'cross-site' },
  'a sandboxed frame in a browser without Sec-Fetch-Site (Origin: null)': { origin: 'null' },
  'a foreign site in a browser without Origin': { 'sec-fetch-site': 'cross-site' },
  'a sibling in a browser without Sec-Fetch-Site': { origin: SIBLING },
};
const FORM = 'application/x-www-form-urlencoded';

describe('browser safety (issue 7: CSRF, dev mailbox, frames, flow binding)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PUBLIC_URL: OWN, DEV_MAILBOX: 'on', FLOW_TTL_SECONDS: '120' });
  });
  afterAll(async () => t?.close());

  /** A browser on Threshold's own page: cookies only (no X-Device-Id), same-origin headers. */
  const browser = (ip: string) => new Client(t.url, { ...SAME_ORIGIN, 'x-forwarded-for': ip });

  /** One raw request with the jar's cookies and exactly the given headers (what a form, a script or curl sends). */
  async function send(c: Client | null, method: string, path: string, o: { headers?: Record<string, string>; type?: string; body?: string } = {}) {
    const h: Record<string, string> = { 'x-forwarded-for': c?.headers['x-forwarded-for'] ?? IP.london, ...(o.headers ?? {}) };
    if (o.type) h['content-type'] = o.type;
    if (c?.cookies.size) h.cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(t.url + path, { method, headers: h, body: o.body });
    const text = await res.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, headers: res.headers, body };
  }

  const signIn = async (c: Client, email: string, password: string, returnTokens = false) => {
    const r = await c.passwordLogin(email, password, { returnTokens });
    expect(r.body.step).toBe('done');
    return r;
  };
  const auditSeq = async () => Number((await t.db.query<{ s: string }>('SELECT coalesce(max(seq), 0) AS s FROM audit_events')).rows[0].s);
  const auditCount = async (types: string[], afterSeq: number) =>
    Number((await t.db.query<{ n: string }>('SELECT count(*) AS n FROM audit_events WHERE type = ANY($1) AND seq > $2', [types, afterSeq])).rows[0].n);

  describe('state-changing cookie routes (item 3)', () => {
    let admin: Client;
    let victim: { id: string; sid: string; client: Client };
    beforeAll(async () => {
      admin = browser(IP.london);
      await signIn(admin, ADMIN.email, ADMIN.password);
      const u = await t.services.users.create({ email: 'victim@example.test', password: 'victim-long-password', roles: [] });
      const vc = browser(IP.mountainView);
      await signIn(vc, 'victim@example.test', 'victim-long-password');
      victim = { id: u.id, sid: (await vc.get('/auth/me')).body.session.id, client: vc };
    });

    // Logout, TOTP enrolment, recovery codes, password, step-up, and the admin's user and session actions.
    const routes = (): [string, string, string][] => [
      ['POST', '/auth/logout', ''],
      ['POST', '/auth/mfa/totp', ''],
      ['POST', '/auth/mfa/recovery-codes', ''],
      ['POST', '/auth/password', 'currentPassword=x&newPassword=attacker-chosen'],
      ['POST', '/auth/stepup', ''],
      ['POST', '/auth/authorize', 'permission=MANAGE_USERS'],
      ['POST', '/api/users', 'email=planted%40evil.test&roles=ADMIN'],
      ['POST', `/api/users/${victim.id}/lock`, ''],
      ['POST', `/api/sessions/${victim.sid}/lock`, ''],
      ['DELETE', `/api/sessions/${victim.sid}`, ''],
      ['DELETE', `/auth/sessions/${victim.sid}`, ''],
    ];

    it('refuses every one from a sibling subdomain, a foreign site or an opaque origin, and nothing changes', async () => {
      const since = await auditSeq();
      for (const [what, headers] of Object.entries(ATTACKS)) {
        for (const [method, path, body] of routes()) {
          // A plain form post, and a script's no-cors fetch (no content type at all).
          for (const type of [FORM, undefined]) {
            const r = await send(admin, method, path, { headers, type, body: body || undefined });
            expect({ what, method, path, type, status: r.status, code: r.body?.code }).toEqual({ what, method, path, type, status: 403, code: 'CROSS_SITE_REQUEST' });
          }
        }
      }
      expect((await admin.get('/auth/me')).status).toBe(200);
      expect((await victim.client.get('/auth/me')).status).toBe(200);
      expect((await t.services.users.get(victim.id))?.locked).toBe(false);
      expect(await t.services.users.byEmail('planted@evil.test')).toBeFalsy();
      expect(await auditCount(['mfa.enrolment_started', 'mfa.recovery_codes_regenerated', 'user.created', 'user.locked', 'session.locked', 'session.revoked', 'password.changed', 'stepup.started'], since)).toBe(0);
    });

    it('refuses form and text bodies from a browser that sends neither Origin nor Sec-Fetch-Site (JSON or no body only)', async () => {
      for (const [method, path, body] of routes()) {
        for (const type of [FORM, 'text/plain', 'multipart/form-data; boundary=x']) {
          const r = await send(admin, method, path, { type, body: type === 'text/plain' ? '{"email":"planted@evil.test","roles":[]}' : body || undefined });
          expect({ path, type, status: r.status, code: r.body?.code }).toEqual({ path, type, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
        }
      }
      expect((await admin.get('/auth/me')).status).toBe(200);
      expect((await t.services.users.get(victim.id))?.locked).toBe(false);
    });

    it('lets Threshold’s own pages act: same-origin, Origin: null under no-referrer, Sec-Fetch-Site: none', async () => {
      const u = await admin.post('/api/users', { email: 'made-here@example.test', roles: [] });
      expect(u.status).toBe(201);
      // Under Referrer-Policy: no-referrer a browser sends Origin: null even to its own origin; Sec-Fetch-Site is the truth.
      const noReferrer = await send(admin, 'POST', `/api/users/${u.body.id}/lock`, { headers: { origin: 'null', 'sec-fetch-site': 'same-origin' } });
      expect(noReferrer.status).toBe(200);
      expect(noReferrer.body.locked).toBe(true);
      const typed = await send(admin, 'POST', `/api/users/${u.body.id}/unlock`, { headers: { 'sec-fetch-site': 'none' }, type: 'application/json', body: '{}' });
      expect(typed.status).toBe(200);
      expect((await admin.post(`/api/sessions/${victim.sid}/lock`)).status).toBe(204);
      expect((await admin.post(`/api/sessions/${victim.sid}/unlock`)).status).toBe(204);
    });

    it('lets Threshold’s own pages enrol TOTP, step up and replace recovery codes', async () => {
      await t.services.users.create({ email: 'enrols@example.test', password: 'enrols-long-password', roles: [] });
      const c = browser(IP.mountainView);
      await signIn(c, 'enrols@example.test', 'enrols-long-password');
      const e = await c.post('/auth/mfa/totp');
      expect(e.status).toBe(201);
      const confirmed = await c.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: oathtool(e.body.secret, t.clock.now()) });
      expect(confirmed.body.recoveryCodes).toHaveLength(10);
      // Replacing them needs fresh MFA: the normal 401 challenge, not a CSRF refusal.
      expect((await c.post('/auth/mfa/recovery-codes')).body.code).toBe('STEP_UP_REQUIRED');
      t.clock.advance(30_000);
      const flow = await c.post('/auth/stepup', {});
      expect(flow.body.methods).toEqual(['totp', 'recovery_code']);
      expect((await c.post(`/auth/stepup/${flow.body.id}`, { type: 'choose', method: 'totp' })).body.step).toBe('totp');
      const up = await c.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: oathtool(e.body.secret, t.clock.now()) });
      expect(up.body.step).toBe('done');
      const fresh = await c.post('/auth/mfa/recovery-codes');
      expect(fresh.status).toBe(200);
      expect(fresh.body.recoveryCodes).toHaveLength(10);
    });

    it('lets curl-like clients (neither header) act with a cookie jar, with JSON or no body', async () => {
      // (Every admin sign-in here is from one network: a new device and a new country would need a second factor.)
      const curl = new Client(t.url, { 'x-forwarded-for': IP.london });
      await signIn(curl, ADMIN.email, ADMIN.password);
      const made = await send(curl, 'POST', '/api/users', { type: 'application/json', body: JSON.stringify({ email: 'by-curl@example.test', roles: [] }) });
      expect(made.status).toBe(201);
      expect((await send(curl, 'POST', `/api/users/${made.body.id}/lock`)).status).toBe(200);
      expect((await send(curl, 'POST', '/auth/logout')).status).toBe(204);
      expect((await send(curl, 'GET', '/auth/me')).status).toBe(401);
    });

    it('leaves bearer calls alone, and a bearer header never carries the cookie past the check', async () => {
      const api = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('bearer') });
      const tokens = (await signIn(api, ADMIN.email, ADMIN.password, true)).body.tokens;
      const bearer = { authorization: `Bearer ${tokens.access_token}` };
      // Whatever Origin headers ride along: a browser cannot send Authorization cross-origin without a CORS preflight.
      for (const headers of Object.values(ATTACKS)) {
        const r = await send(null, 'POST', '/auth/authorize', { headers: { ...headers, ...bearer }, type: 'application/json', body: '{"permission":"MANAGE_USERS"}' });
        expect(r.status).toBe(200);
      }
      const made = await send(null, 'POST', '/api/users', { headers: { ...ATTACKS['a foreign site'], ...bearer }, type: 'application/json', body: '{"email":"by-bearer@example.test","roles":[]}' });
      expect(made.status).toBe(201);
      expect((await send(null, 'POST', `/api/sessions/${victim.sid}/lock`, { headers: bearer })).status).toBe(204);
      expect((await send(null, 'POST', `/api/sessions/${victim.sid}/unlock`, { headers: bearer })).status).toBe(204);

      // The admin's cookie with a bogus bearer: the bearer is what authenticates (and fails); the cookie is ignored.
      const bogus = await send(admin, 'POST', '/api/users', {
        headers: { ...ATTACKS['a sibling subdomain (same-site, which SameSite=Lax lets through)'], authorization: `Bearer ${'x'.repeat(40)}` },
        type: 'application/json',
        body: '{"email":"planted2@evil.test","roles":[]}',
      });
      expect(bogus.status).toBe(401);
      // Basic credentials a browser attaches on its own are no exemption.
      const basic = await send(admin, 'POST', '/api/users', {
        headers: { ...ATTACKS['a foreign site'], authorization: 'Basic YWRtaW46YWRtaW4=' },
        type: FORM,
        body: 'email=planted3%40evil.test',
      });
      expect(basic.status).toBe(403);
      expect(await t.services.users.byEmail('planted2@evil.test')).toBeFalsy();
      expect(await t.services.users.byEmail('planted3@evil.test')).toBeFalsy();
      expect((await admin.get('/auth/me')).status).toBe(200);
    });

    it('logout from Threshold’s own page works; from a sibling it does not', async () => {
      const c = browser(IP.mountainView);
      await signIn(c, 'victim@example.test', 'victim-long-password');
      expect((await send(c, 'POST', '/auth/logout', { headers: ATTACKS['a sibling subdomain (same-site, which SameSite=Lax lets through)'], type: FORM })).status).toBe(403);
      expect((await c.get('/auth/me')).status).toBe(200);
      expect((await c.req('POST', '/auth/logout')).status).toBe(204);
      expect((await c.get('/auth/me')).status).toBe(401);
    });
  });

  describe('login flows (login CSRF)', () => {
    it('refuses to start or drive a login from another site, even in a browser with no cookies yet', async () => {
      for (const headers of Object.values(ATTACKS)) {
        const start = await send(null, 'POST', '/auth/login', { headers, type: FORM });
        expect(start.status).toBe(403);
        expect(start.body.code).toBe('CROSS_SITE_REQUEST');
      }
      // The attacker's own flow, pushed into the victim's browser with the attacker's password.
      const victimBrowser = browser(IP.london);
      const flow = await victimBrowser.post('/auth/login', {});
      expect(flow.status).toBe(201);
      const planted = await send(victimBrowser, 'POST', `/auth/login/${flow.body.id}`, {
        headers: ATTACKS['a sibling subdomain (same-site, which SameSite=Lax lets through)'],
        type: 'text/plain',
        body: JSON.stringify({ type: 'password', identifier: ADMIN.email, password: ADMIN.password }),
      });
      expect(planted.status).toBe(403);
      expect((await victimBrowser.get(`/auth/login/${flow.body.id}`)).body.step).toBe('password');
      // The same browser on Threshold's own page signs in.
      expect((await victimBrowser.post(`/auth/login/${flow.body.id}`, { type: 'password', identifier: ADMIN.email, password: ADMIN.password })).body.step).toBe('done');
    });
  });

  describe('the "this wasn\'t me" page (items 3 and 7)', () => {
    async function reportLink() {
      const u = await t.services.users.create({ email: `reporter-${randomBytes(4).toString('hex')}@example.test`, password: 'reporter-long-password', roles: [] });
      const c = browser(IP.sydney);
      await signIn(c, u.email, 'reporter-long-password');
      const sid = (await c.get('/auth/me')).body.session.id as string;
      const ev = await t.db.query<{ id: string }>("SELECT id FROM login_events WHERE identity_id = $1 AND outcome = 'succeeded'", [u.id]);
      const token = await t.services.reports.create({ identityId: u.id, sessionId: sid, loginEventId: ev.rows[0].id });
      return { path: `/auth/report/${token}`, c };
    }

    it('cannot be framed, and its form still works from the page itself (but not from another site)', async () => {
      const { path, c } = await reportLink();
      const page = await send(null, 'GET', path);
      expect(page.status).toBe(200);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      const csp = page.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp.match(/frame-ancestors/g)).toHaveLength(1);
      expect(page.headers.get('referrer-policy')).toBe('same-origin');
      expect(page.body).toContain('<form method="post">');

      const forged = await send(null, 'POST', path, { headers: ATTACKS['a foreign site'], type: FORM });
      expect(forged.status).toBe(403);
      expect((await c.get('/auth/me')).status).toBe(200);
      // What the browser sends when the button on that page is pressed: a form post from the same origin.
      const pressed = await send(null, 'POST', path, { headers: SAME_ORIGIN, type: FORM, body: '' });
      expect(pressed.status).toBe(200);
      expect(pressed.body).toContain('signed out');
      expect((await c.get('/auth/me')).status).toBe(401);
    });

    it('works from a browser that sends Origin but no Sec-Fetch-Site (the page asks for same-origin referrers)', async () => {
      const { path, c } = await reportLink();
      expect((await send(null, 'POST', path, { headers: { origin: OWN }, type: FORM })).status).toBe(200);
      expect((await c.get('/auth/me')).status).toBe(401);
    });
  });

  describe('frames (item 7)', () => {
    it('every kind of answer forbids framing', async () => {
      const answers = [
        await send(null, 'GET', '/auth/check'),
        await send(null, 'GET', '/no/such/route'),
        await send(null, 'GET', '/auth/me'),
        await send(null, 'POST', '/auth/logout', { headers: ATTACKS['a foreign site'] }),
        await send(null, 'POST', '/auth/login', { headers: SAME_ORIGIN, type: 'application/json', body: '{}' }),
        await send(null, 'GET', '/.well-known/jwks.json'),
        await send(null, 'POST', '/auth/login', { headers: SAME_ORIGIN, type: 'application/json', body: JSON.stringify({ pad: 'x'.repeat(70_000) }) }),
      ];
      expect(answers.map((a) => a.status)).toEqual([200, 404, 401, 403, 201, 200, 413]);
      for (const a of answers) {
        expect(a.headers.get('x-frame-options')).toBe('DENY');
        expect(a.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
      }
    });
  });

  describe('/dev/mailbox (item 4)', () => {
    const mailbox = (headers: Record<string, string> = {}) => fetch(`${t.url}/dev/mailbox`, { headers }).then((r) => r.status);

    it('answers a client on this machine talking to it directly', async () => {
      expect(await mailbox()).toBe(200);
    });

    it('refuses anything a proxy forwarded, even from a loopback proxy it trusts and whatever the client claims', async () => {
      // TRUSTED_PROXIES=loopback here: a remote client behind the local proxy.
      expect(await mailbox({ 'x-forwarded-for': '203.0.113.7' })).toBe(404);
      expect(await mailbox({ 'x-forwarded-for': '127.0.0.1' })).toBe(404);
      expect(await mailbox({ 'x-forwarded-for': '203.0.113.7, 127.0.0.1' })).toBe(404);
      expect(await mailbox({ forwarded: 'for=127.0.0.1' })).toBe(404);
      expect(await mailbox({ 'x-real-ip': '203.0.113.7' })).toBe(404);
      expect(await mailbox({ via: '1.1 nginx' })).toBe(404);
    });

    it('is never served when NODE_ENV is production, whatever the rest of the config says', async () => {
      const local = { incoming: { socket: { remoteAddress: '127.0.0.1' } } };
      const dev = createApp(t.services);
      expect((await dev.request('/dev/mailbox', {}, local)).status).toBe(200); // the control: same request, same services
      const prod = createApp({ ...t.services, config: { ...t.config, NODE_ENV: 'production', devMailbox: true } });
      expect((await prod.request('/dev/mailbox', {}, local)).status).toBe(404);
    });
  });

  describe('flows are bound to the browser that started them (item 8)', () => {
    const unknown = () => `flw_${randomBytes(16).toString('base64url')}`;
    const sameAnswer = (a: { status: number; body: any }, b: { status: number; body: any }) => expect({ status: a.status, body: a.body }).toEqual({ status: b.status, body: b.body });

    it('another browser gets exactly the unknown-flow answer on GET and POST; the refusal is audited; the first browser finishes', async () => {
      const u = await t.services.users.create({ email: 'bound@example.test', password: 'bound-long-password', roles: [] });
      const a = browser(IP.london);
      const flow = await a.post('/auth/login', {});
      expect(flow.status).toBe(201);
      const id = flow.body.id as string;
      const b = browser(IP.sydney);
      await b.post('/auth/login', {}); // b has a device cookie of its own

      sameAnswer(await b.get(`/auth/login/${id}`), await b.get(`/auth/login/${unknown()}`));
      const event = { type: 'password', identifier: u.email, password: 'bound-long-password' };
      const stolen = await b.post(`/auth/login/${id}`, event);
      sameAnswer(stolen, await b.post(`/auth/login/${unknown()}`, event));
      expect(stolen.body.code).toBe('FLOW_NOT_FOUND');
      // A client with no device at all is no better.
      expect((await send(null, 'GET', `/auth/login/${id}`)).status).toBe(404);

      const refused = await t.db.query<{ reason: string; data: { flow: string; device: string; presentedDevice: string | null } }>("SELECT reason, data FROM audit_events WHERE type = 'flow.refused' AND data->>'flow' = $1 ORDER BY seq", [id]);
      expect(refused.rows.map((r) => r.reason)).toEqual(['OTHER_DEVICE', 'OTHER_DEVICE', 'OTHER_DEVICE']);
      const deviceA = [...a.cookies].find(([k]) => k.endsWith('threshold_device'))![1];
      const deviceB = [...b.cookies].find(([k]) => k.endsWith('threshold_device'))![1];
      expect(JSON.stringify(refused.rows)).not.toContain(deviceA);
      expect(JSON.stringify(refused.rows)).not.toContain(deviceB);
      // Who presented it can still be told apart (a digest): the same stranger twice, then no device at all.
      expect(refused.rows.map((r) => (r.data as { presentedDevice: string | null }).presentedDevice)).toEqual([expect.any(String), refused.rows[0].data.presentedDevice, null]);
      expect(refused.rows[0].data.presentedDevice).not.toBe(refused.rows[0].data.device);
      // The password was never checked for the stolen submission; the real browser signs in.
      expect((await a.get(`/auth/login/${id}`)).body.step).toBe('password');
      expect((await a.post(`/auth/login/${id}`, event)).body.step).toBe('done');
    });

    it('API clients are bound by X-Device-Id; the id is never shown anywhere it could be copied from', async () => {
      await t.services.users.create({ email: 'api-bound@example.test', password: 'api-bound-long-password', roles: [] });
      const dev = device('api');
      const api = new Client(t.url, { 'x-forwarded-for': IP.falkenstein, 'x-device-id': dev });
      const flow = await api.post('/auth/login', { returnTokens: true });
      const other = new Client(t.url, { 'x-forwarded-for': IP.falkenstein, 'x-device-id': device('thief') });
      const event = { type: 'password', identifier: 'api-bound@example.test', password: 'api-bound-long-password' };
      expect((await other.post(`/auth/login/${flow.body.id}`, event)).status).toBe(404);
      expect((await send(null, 'POST', `/auth/login/${flow.body.id}`, { type: 'application/json', body: JSON.stringify(event) })).status).toBe(404);
      const done = await api.post(`/auth/login/${flow.body.id}`, event);
      expect(done.body.step).toBe('done');

      const seen = [
        flow,
        done,
        await api.get(`/auth/login/${flow.body.id}`),
        await api.get('/auth/me'),
        await api.get('/auth/sessions'),
        await send(null, 'GET', '/auth/sessions', { headers: { authorization: `Bearer ${done.body.tokens.access_token}` } }),
      ];
      for (const r of seen) {
        expect(JSON.stringify(r.body)).not.toContain(dev);
        expect(JSON.stringify([...r.headers])).not.toContain(dev);
      }
      const audit = await t.db.query('SELECT 1 FROM audit_events WHERE data::text LIKE $1', [`%${dev}%`]);
      expect(audit.rowCount).toBe(0);
    });

    it('an expired flow from another device is still just unknown (its 410 would confirm the id)', async () => {
      const a = browser(IP.london);
      const id = (await a.post('/auth/login', {})).body.id as string;
      const b = browser(IP.london);
      await b.post('/auth/login', {});
      t.clock.advance(121_000);
      expect((await a.get(`/auth/login/${id}`)).body.code).toBe('FLOW_EXPIRED');
      const other = await b.get(`/auth/login/${id}`);
      expect(other.status).toBe(404);
      expect(other.body.code).toBe('FLOW_NOT_FOUND');
      expect(other.body.flow).toBeUndefined();
    });

    it('a step-up flow answers only its session on its device', async () => {
      const pw = 'stepper-long-password';
      const u = await t.services.users.create({ email: 'stepper@example.test', password: pw, roles: [] });
      const e = await t.services.totp.enrol(u.id, u.email);
      await t.services.totp.confirm(u.id, e.id, oathtool(e.secret, t.clock.now()));
      t.clock.advance(30_000);
      // A browser that also asked for tokens: the token carries the same session (sid).
      const a = browser(IP.london);
      const login = await a.passwordLogin(u.email, pw, { returnTokens: true });
      expect(login.body.step).toBe('done');
      const flow = await a.post('/auth/stepup', {});
      expect(flow.status).toBe(201);
      const id = flow.body.id as string;
      const code = () => ({ type: 'totp', code: oathtool(e.secret, t.clock.now()) });

      // The same session's access token, used from another device.
      const elsewhere = { authorization: `Bearer ${login.body.tokens.access_token}`, 'x-device-id': device('elsewhere') };
      expect((await send(null, 'GET', `/auth/stepup/${id}`, { headers: elsewhere })).status).toBe(404);
      expect((await send(null, 'POST', `/auth/stepup/${id}`, { headers: elsewhere, type: 'application/json', body: JSON.stringify(code()) })).body.code).toBe('FLOW_NOT_FOUND');
      // Another session of the same user, in another browser.
      const b = browser(IP.london);
      expect((await b.passwordLogin(u.email, pw)).status).toBe(200);
      expect((await b.post(`/auth/stepup/${id}`, code())).body.code).toBe('FLOW_NOT_FOUND');

      const reasons = await t.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'flow.refused' AND data->>'flow' = $1 ORDER BY seq", [id]);
      expect(reasons.rows.map((r) => r.reason)).toEqual(['OTHER_DEVICE', 'OTHER_DEVICE', 'OTHER_SESSION']);
      const done = await a.post(`/auth/stepup/${id}`, code());
      expect(done.status).toBe(200);
      expect(done.body.step).toBe('done');
    });
  });
});
