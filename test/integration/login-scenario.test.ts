import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ADMIN, Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * The whole scenario over HTTP on real Postgres, Redis and a BullMQ risk worker:
 * admin creates a user → first login allowed with pwd → TOTP enrolled (oathtool) → login from a
 * new device and country is stepped up → pwd otp mfa → WRITE_BACK_EPIC allowed; a
 * password-only session gets the RFC 9470 challenge.
 */
describe('adaptive login end to end', () => {
  let t: TestServer;
  let admin: Client;
  const alice = { email: 'alice@example.test', password: 'her-own-long-passphrase' };
  let aliceA: Client; // device A, London
  let totpSecret = '';

  beforeAll(async () => {
    t = await startTestServer();
    admin = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('admin') });
    aliceA = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('alice-a') });
  });
  afterAll(async () => t?.close());

  it('lets the bootstrap admin create a user with a role', async () => {
    const r = await admin.passwordLogin(ADMIN.email, ADMIN.password);
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('done');
    const created = await admin.post('/api/users', { ...alice, roles: ['PATHOLOGIST'], displayName: 'Alice' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: alice.email, roles: ['PATHOLOGIST'] });
    expect(created.body).not.toHaveProperty('password');
    const dup = await admin.post('/api/users', { ...alice, roles: [] });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('CONFLICT');
  });

  it('refuses user creation to a non-admin', async () => {
    const r = await aliceA.post('/api/users', { email: 'x@example.test', roles: [] });
    expect(r.status).toBe(401);
  });

  it("allows alice's first login from device A with amr pwd", async () => {
    const r = await aliceA.passwordLogin(alice.email, alice.password);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ step: 'done', risk: { level: 'low', reasons: ['NEW_DEVICE'] } });
    expect(r.body.session.amr).toEqual(['pwd']);
    expect(r.headers.getSetCookie().some((c) => /^threshold_session=.*HttpOnly/i.test(c) && /SameSite=Lax/i.test(c))).toBe(true);
    const me = await aliceA.get('/auth/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user: { email: alice.email, displayName: 'Alice' }, roles: ['PATHOLOGIST'] });
    expect(me.body.permissions).toContain('WRITE_BACK_EPIC');
  });

  it('answers a password-only session with the RFC 9470 step-up challenge', async () => {
    const r = await aliceA.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('STEP_UP_REQUIRED');
    const h = r.headers.get('www-authenticate') ?? '';
    expect(h).toMatch(/^Bearer error="insufficient_user_authentication"/);
    expect(h).toContain('acr_values="urn:threshold:acr:aal2"');
    expect(h).toContain('max_age=900');
    const view = await aliceA.post('/auth/authorize', { permission: 'VIEW_CASES' });
    expect(view.status).toBe(200);
    const denied = await aliceA.post('/auth/authorize', { permission: 'MANAGE_USERS' });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('PERMISSION_DENIED');
  });

  it('enrols TOTP, confirmed with a code computed by oathtool, and shows 10 recovery codes once', async () => {
    const e = await aliceA.post('/auth/mfa/totp');
    expect(e.status).toBe(201);
    expect(e.body.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    totpSecret = e.body.secret;
    const bad = await aliceA.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: '000000' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('MFA_CODE_INVALID');
    const ok = await aliceA.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: oathtool(totpSecret, t.clock.now()) });
    expect(ok.status).toBe(200);
    expect(ok.body.recoveryCodes).toHaveLength(10);
    const { rows } = await t.db.query<{ secret_sealed: string }>('SELECT secret_sealed FROM totp_factors');
    expect(rows[0].secret_sealed).not.toContain(totpSecret);
    const list = await aliceA.get('/auth/mfa');
    expect(list.body.map((f: { type: string }) => f.type)).toEqual(['totp', 'recovery_code']);
  });

  it('steps up a login from a new device in another country and ends with pwd otp mfa', async () => {
    const aliceB = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('alice-b') });
    const r = await aliceB.passwordLogin(alice.email, alice.password, { returnTokens: true });
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('choose_method');
    expect(r.body.methods).toEqual(['totp', 'recovery_code']);
    expect(r.body.risk.level).toBe('high'); // 105 ≥ the default policy's high band (60); no WebAuthn, so TOTP is offered
    expect(r.body.risk.reasons).toEqual(expect.arrayContaining(['NEW_DEVICE', 'NEW_COUNTRY', 'IMPOSSIBLE_TRAVEL']));
    expect(JSON.stringify(r.body)).not.toContain(IP.mountainView); // raw signals stay server-side
    expect(r.body).not.toHaveProperty('snapshot');

    const chosen = await aliceB.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'totp' });
    expect(chosen.body.step).toBe('totp');
    // The enrolment code's time step is spent; use the next one.
    t.clock.advance(30_000);
    const done = await aliceB.post(`/auth/login/${r.flowId}`, { type: 'totp', code: oathtool(totpSecret, t.clock.now()) });
    expect(done.status).toBe(200);
    expect(done.body.step).toBe('done');
    expect(done.body.session.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(done.body.session.acr).toBe('urn:threshold:acr:aal2');
    expect(done.body.tokens.token_type).toBe('Bearer');

    // WRITE_BACK_EPIC now passes, with the cookie and with the bearer token.
    expect((await aliceB.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' })).status).toBe(200);
    const bearer = new Client(t.url);
    const viaToken = await bearer.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' }, { authorization: `Bearer ${done.body.tokens.access_token}` });
    expect(viaToken.status).toBe(200);
    // ...and a password-only session still gets the challenge.
    expect((await aliceA.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' })).status).toBe(401);

    // 15 minutes later the MFA is too old for WRITE_BACK_EPIC.
    t.clock.advance(901_000);
    const stale = await aliceB.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' });
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toContain('max_age=900');
    t.clock.advance(-901_000);

    // The access token verifies with node's own crypto against the published JWKS.
    const [h64, p64, s64] = done.body.tokens.access_token.split('.');
    const header = JSON.parse(Buffer.from(h64, 'base64url').toString());
    const claims = JSON.parse(Buffer.from(p64, 'base64url').toString());
    expect(header).toMatchObject({ typ: 'at+jwt', alg: 'EdDSA' });
    const jwks = (await bearer.get('/.well-known/jwks.json')).body;
    const jwk = jwks.keys.find((k: { kid: string }) => k.kid === header.kid);
    expect(jwk).toBeDefined();
    expect(jwk).not.toHaveProperty('d');
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    expect(nodeVerify(null, Buffer.from(`${h64}.${p64}`), key, Buffer.from(s64, 'base64url'))).toBe(true);
    const forged = Buffer.from(JSON.stringify({ ...claims, amr: ['pwd', 'hwk', 'mfa'] })).toString('base64url');
    expect(nodeVerify(null, Buffer.from(`${h64}.${forged}`), key, Buffer.from(s64, 'base64url'))).toBe(false);
    expect(claims).toMatchObject({ iss: t.config.PUBLIC_URL, aud: t.config.PUBLIC_URL, client_id: 'threshold', amr: ['pwd', 'otp', 'mfa'], acr: 'urn:threshold:acr:aal2' });
    for (const c of ['sub', 'exp', 'iat', 'jti', 'sid', 'auth_time']) expect(claims).toHaveProperty(c);
    expect(claims.exp - claims.iat).toBe(t.config.ACCESS_TOKEN_TTL_SECONDS);
  });

  it('recorded each decision with its signals, policy version and contributions', async () => {
    const { rows } = await t.db.query<{ outcome: string; policy_version: string; contributions: Record<string, number>; signals: Record<string, unknown>; country: string; decision: string }>(
      `SELECT le.outcome, le.policy_version, le.contributions, le.signals, le.country, le.decision
         FROM login_events le JOIN identities i ON i.id = le.identity_id WHERE i.email = $1 ORDER BY le.created_at`,
      [alice.email],
    );
    expect(rows.map((r) => r.outcome)).toEqual(['succeeded', 'stepped_up', 'succeeded']);
    expect(rows[0]).toMatchObject({ policy_version: 'default-3', decision: 'allow', country: 'GB', contributions: { NEW_DEVICE: 10 } });
    expect(rows[1]).toMatchObject({
      decision: 'step_up',
      country: 'US',
      contributions: { NEW_DEVICE: 10, NEW_COUNTRY: 10, IMPOSSIBLE_TRAVEL: 60, NEW_NETWORK: 5, NEW_DEVICE_NEW_NETWORK: 20 },
    });
    expect(rows[1].signals).toMatchObject({ NEW_DEVICE: true, NEW_COUNTRY: true, IMPOSSIBLE_TRAVEL: true, SUSPICIOUS_IP: false, NEW_DEVICE_NEW_NETWORK: true });
  });

  it('audited every step in an unbroken chain', async () => {
    const { rows } = await t.db.query<{ type: string }>('SELECT type FROM audit_events ORDER BY seq');
    const types = rows.map((r) => r.type);
    for (const ty of ['user.created', 'login.succeeded', 'risk.decided', 'login.stepped_up', 'mfa.enrolled', 'authorization.denied', 'session.created'])
      expect(types).toContain(ty);
    expect(await t.services.audit.verify()).toMatchObject({ ok: true });
  });

  it('logs out: the session and its access tokens stop working', async () => {
    // From where alice last signed in (London now would be impossible travel).
    const c = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('alice-b2') });
    const r = await c.passwordLogin(alice.email, alice.password, { returnTokens: true });
    expect(r.body.step).toBe('done');
    const token: string = r.body.tokens.access_token;
    expect((await c.get('/auth/check')).body).toEqual({ authenticated: true });
    expect((await c.post('/auth/logout')).status).toBe(204);
    expect((await c.get('/auth/check')).body).toEqual({ authenticated: false });
    expect((await c.get('/auth/me')).status).toBe(401);
    const viaToken = await new Client(t.url).get('/auth/me', { authorization: `Bearer ${token}` });
    expect(viaToken.status).toBe(401);
  });
});
