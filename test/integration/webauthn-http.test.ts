import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticatorEmulator, PasskeysCredentialsMemoryRepository, WebAuthnEmulator } from 'nid-webauthn-emulator';
import { Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

const ORIGIN = 'https://threshold.test';

describe('WebAuthn over HTTP: registration, passkey sign-in, phishing-resistant step-up', () => {
  let t: TestServer;
  const pw = 'leo-has-a-long-password';
  const emu = new WebAuthnEmulator(new AuthenticatorEmulator({ credentialsRepository: new PasskeysCredentialsMemoryRepository() }));

  beforeAll(async () => {
    t = await startTestServer({ WEBAUTHN_RP_ID: 'threshold.test', WEBAUTHN_ORIGINS: ORIGIN });
    await t.services.users.create({ email: 'leo@example.test', password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => t?.close());

  it('registers a passkey from a signed-in session and returns recovery codes for the first factor', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('leo') });
    expect((await c.passwordLogin('leo@example.test', pw)).body.step).toBe('done');
    const options = await c.post('/auth/mfa/webauthn/options', { passkey: true });
    expect(options.status).toBe(200);
    expect(options.body.rp.id).toBe('threshold.test');
    expect(options.body.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'required' });
    const response = emu.createJSON(ORIGIN, options.body);
    const reg = await c.post('/auth/mfa/webauthn', { response, label: 'Laptop' });
    expect(reg.status).toBe(201);
    expect(reg.body).toMatchObject({ type: 'webauthn', label: 'Laptop', passkey: true });
    expect(reg.body.recoveryCodes).toHaveLength(10);
    // The same registration response cannot be replayed (and adding beside a factor needs fresh MFA).
    expect((await c.post('/auth/mfa/webauthn', { response })).body.code).toBe('STEP_UP_REQUIRED');
    expect(await t.services.webauthn.register({ identityId: (await t.services.users.byEmail('leo@example.test'))!.id, flowKey: 'session:x', response }).catch((e: { code?: string }) => e.code)).toBe('WEBAUTHN_FAILED');
    const list = await c.get('/auth/mfa');
    expect(list.body.map((f: { type: string }) => f.type)).toEqual(['webauthn', 'recovery_code']);
  });

  it('signs in with the passkey alone: no identifier, no password, amr with user and mfa', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('leo-passkey') });
    const start = await c.post('/auth/login', { method: 'passkey', returnTokens: true });
    expect(start.status).toBe(201);
    expect(start.body.step).toBe('webauthn');
    expect(start.body.challenge.rpId).toBe('threshold.test');
    expect(start.body.challenge.allowCredentials ?? []).toEqual([]);
    const response = emu.getJSON(ORIGIN, start.body.challenge);
    const done = await c.post(`/auth/login/${start.body.id}`, { type: 'webauthn', response });
    expect(done.status).toBe(200);
    expect(done.body.step).toBe('done');
    expect(done.body.session.amr).toEqual(expect.arrayContaining(['user', 'mfa']));
    expect(done.body.session.amr.some((a: string) => a === 'hwk' || a === 'swk')).toBe(true);
    expect(done.body.session.amr).not.toContain('pwd');
    expect((await c.get('/auth/me')).body.user.email).toBe('leo@example.test');
    // Replaying the assertion in a new flow fails (its challenge was single-use and bound to the old flow).
    const again = await c.post('/auth/login', { method: 'passkey' });
    const replay = await c.post(`/auth/login/${again.body.id}`, { type: 'webauthn', response });
    expect(replay.status).toBe(400);
    expect(replay.body.code).toBe('WEBAUTHN_FAILED');
    expect(replay.body.flow.step).toBe('webauthn');
  });

  it('steps a high-risk password login up to WebAuthn only, then WRITE_BACK_EPIC passes', async () => {
    // Mountain View right after London: impossible travel + new device + new country = high risk.
    const c = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('leo-b') });
    const r = await c.passwordLogin('leo@example.test', pw);
    expect(r.body.risk.level).toBe('high');
    expect(r.body.step).toBe('webauthn'); // phishing-resistant only: the recovery code is not offered
    expect(r.body.methods).toEqual(['webauthn']);
    expect(r.body.challenge.allowCredentials).toHaveLength(1);
    const done = await c.post(`/auth/login/${r.flowId}`, { type: 'webauthn', response: emu.getJSON(ORIGIN, r.body.challenge) });
    expect(done.status).toBe(200);
    expect(done.body.session.amr).toEqual(expect.arrayContaining(['pwd', 'user', 'mfa']));
    expect((await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' })).status).toBe(200);
  });
});
