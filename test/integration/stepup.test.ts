import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, oathtool, signIn as signInAs, startTestServer, type TestServer } from '../helpers/server.ts';

describe('step-up of a live session (RFC 9470)', () => {
  let t: TestServer;
  let secret = '';
  const pw = 'ivan-has-a-long-password';
  beforeAll(async () => {
    t = await startTestServer();
    const u = await t.services.users.create({ email: 'ivan@example.test', password: pw, roles: ['PATHOLOGIST'] });
    const e = await t.services.totp.enrol(u.id, u.email);
    secret = e.secret;
    await t.services.totp.confirm(u.id, e.id, oathtool(secret, t.clock.now()));
    await t.services.users.create({ email: 'judy@example.test', password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => t?.close());

  const signIn = async (email: string) => {
    const { c, body } = await signInAs(t.url, email, pw);
    expect(body.session.amr).toEqual(['pwd']);
    return c;
  };

  it('challenge → step-up flow → allowed; the session id rotates; the elevation ages out', async () => {
    const c = await signIn('ivan@example.test');
    const oldCookie = c.cookies.get('threshold_session')!;
    const challenge = await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' });
    expect(challenge.status).toBe(401);
    expect(challenge.body).toMatchObject({ acr_values: 'urn:threshold:acr:aal2', max_age: 900 });

    const flow = await c.post('/auth/stepup', { acr_values: challenge.body.acr_values, max_age: challenge.body.max_age, permission: 'WRITE_BACK_EPIC' });
    expect(flow.status).toBe(201);
    expect(flow.body).toMatchObject({ type: 'stepup', step: 'totp', methods: ['totp'] });

    const wrong = await c.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('MFA_CODE_INVALID');

    t.clock.advance(30_000);
    const done = await c.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: oathtool(secret, t.clock.now()) });
    expect(done.status).toBe(200);
    expect(done.body.step).toBe('done');
    expect(done.body.session.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(done.body.session.acr).toBe('urn:threshold:acr:aal2');
    expect(c.cookies.get('threshold_session')).not.toBe(oldCookie);

    expect((await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' })).status).toBe(200);
    // The pre-step-up cookie is dead (no fixation).
    const stale = new Client(t.url);
    stale.cookies.set('threshold_session', oldCookie);
    expect((await stale.get('/auth/check')).body).toEqual({ authenticated: false });

    // maxAge counts from the TOTP proof, not from the login.
    t.clock.advance(899_000);
    expect((await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' })).status).toBe(200);
    t.clock.advance(2_000);
    const aged = await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' });
    expect(aged.status).toBe(401);
    expect(aged.headers.get('www-authenticate')).toContain('insufficient_user_authentication');

    const { rows } = await t.db.query<{ type: string }>("SELECT type FROM audit_events WHERE type IN ('stepup.started', 'session.stepped_up', 'mfa.challenge_failed')");
    expect(new Set(rows.map((r) => r.type))).toEqual(new Set(['stepup.started', 'session.stepped_up', 'mfa.challenge_failed']));
  });

  it('binds a step-up flow to the session that started it', async () => {
    const ivan = await signIn('ivan@example.test');
    const judy = await signIn('judy@example.test');
    const flow = await ivan.post('/auth/stepup', { permission: 'WRITE_BACK_EPIC' });
    t.clock.advance(30_000);
    const stolen = await judy.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: oathtool(secret, t.clock.now()) });
    expect(stolen.status).toBe(404);
    expect(stolen.body.code).toBe('FLOW_NOT_FOUND');
    expect((await judy.get(`/auth/stepup/${flow.body.id}`)).status).toBe(404);
    expect((await new Client(t.url).post('/auth/stepup', {})).status).toBe(401);
  });

  it('refuses a step-up with a clear code when the user has no factor that can satisfy it', async () => {
    const judy = await signIn('judy@example.test');
    const r = await judy.post('/auth/stepup', { permission: 'WRITE_BACK_EPIC' });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('MFA_ENROLMENT_REQUIRED');
    const notMine = await judy.post('/auth/stepup', { permission: 'MANAGE_USERS' });
    expect(notMine.body.code).toBe('PERMISSION_DENIED');
  });
});
