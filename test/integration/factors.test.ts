import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

describe('factor management', () => {
  let t: TestServer;
  const pw = 'kim-has-a-long-password';
  let c: Client;
  let secret = '';
  let recovery: string[] = [];
  let factorId = '';

  beforeAll(async () => {
    t = await startTestServer();
    await t.services.users.create({ email: 'kim@example.test', password: pw, roles: ['PATHOLOGIST'] });
    c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('kim') });
    expect((await c.passwordLogin('kim@example.test', pw)).body.step).toBe('done');
    const e = await c.post('/auth/mfa/totp');
    secret = e.body.secret;
    factorId = e.body.id;
    const ok = await c.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: oathtool(secret, t.clock.now()) });
    recovery = ok.body.recoveryCodes;
  });
  afterAll(async () => t?.close());

  const stepUp = async () => {
    const f = await c.post('/auth/stepup', { acr_values: 'urn:threshold:acr:aal2' });
    expect(f.body.step).toBe('choose_method');
    await c.post(`/auth/stepup/${f.body.id}`, { type: 'choose', method: 'totp' });
    t.clock.advance(30_000);
    const done = await c.post(`/auth/stepup/${f.body.id}`, { type: 'totp', code: oathtool(secret, t.clock.now()) });
    expect(done.body.step).toBe('done');
  };

  it('lists every factor, strongest first, and renames one', async () => {
    const list = await c.get('/auth/mfa');
    expect(list.body).toMatchObject([
      { id: factorId, type: 'totp', label: 'Authenticator app' },
      { id: 'recovery_codes', type: 'recovery_code', remaining: 10 },
    ]);
    const r = await c.req('PATCH', `/auth/mfa/${factorId}`, { label: 'Phone app' });
    expect(r.status).toBe(200);
    expect((await c.get('/auth/mfa')).body[0].label).toBe('Phone app');
    expect((await c.req('PATCH', '/auth/mfa/not-a-factor', { label: 'x' })).body.code).toBe('MFA_FACTOR_NOT_FOUND');
  });

  it('asks for fresh MFA before adding another factor, regenerating codes or deleting one', async () => {
    for (const [m, path] of [['POST', '/auth/mfa/totp'], ['POST', '/auth/mfa/recovery-codes'], ['DELETE', `/auth/mfa/${factorId}`]] as const) {
      const r = await c.req(m, path, m === 'POST' ? {} : undefined);
      expect(r.status, path).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/insufficient_user_authentication.*acr_values="urn:threshold:acr:aal2".*max_age=900/);
    }
    expect((await c.get('/auth/mfa')).body).toHaveLength(2);
  });

  it('regenerates recovery codes after step-up; the old ones stop working', async () => {
    await stepUp();
    const r = await c.post('/auth/mfa/recovery-codes');
    expect(r.status).toBe(200);
    expect(r.body.recoveryCodes).toHaveLength(10);
    expect(r.body.recoveryCodes).not.toContain(recovery[0]);
    const kim = await t.services.users.byEmail('kim@example.test');
    expect(await t.services.recovery.consume(kim!.id, recovery[0])).toBe(false);
    expect(await t.services.recovery.consume(kim!.id, r.body.recoveryCodes[0])).toBe(true);
    expect(await t.services.recovery.consume(kim!.id, r.body.recoveryCodes[0])).toBe(false);
  });

  it('deletes the last factor after step-up, and its recovery codes with it; other sessions end on request', async () => {
    const other = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('kim-other') });
    expect((await other.passwordLogin('kim@example.test', pw)).body.step).toBe('done');
    const del = await c.req('DELETE', `/auth/mfa/${factorId}?endOtherSessions=true`);
    expect(del.status).toBe(204);
    expect((await other.get('/auth/check')).body.authenticated).toBe(false);
    expect((await c.get('/auth/check')).body.authenticated).toBe(true);
    expect((await c.get('/auth/mfa')).body).toEqual([]);
    const { rows } = await t.db.query<{ type: string }>("SELECT type FROM audit_events WHERE type LIKE 'mfa.%' OR type LIKE 'recovery_codes.%' ORDER BY seq");
    expect(rows.map((r) => r.type)).toEqual(expect.arrayContaining(['mfa.enrolled', 'mfa.renamed', 'recovery_codes.generated', 'mfa.removed']));
    expect((await c.req('DELETE', `/auth/mfa/${factorId}`)).body.code).toBe('MFA_FACTOR_NOT_FOUND');
  });
});
