import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, startTestServer, type TestServer } from '../helpers/server.ts';
import { startSmsRecorder, startSmtp } from '../helpers/peers.ts';

const PHONE = '+14155550123';
const SID = 'AC0123456789';
const HOME = '10.0.0.5';
const RISKY = '10.0.0.9';

describe('SMS and email codes over HTTP (real SMTP server, Twilio-format recorder)', () => {
  let t: TestServer;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let sms: Awaited<ReturnType<typeof startSmsRecorder>>;
  const pw = 'mia-has-a-long-password';
  const email = 'mia@example.test';

  beforeAll(async () => {
    smtp = await startSmtp();
    sms = await startSmsRecorder();
    t = await startTestServer({
      SMTP_URL: smtp.url,
      SMS_PROVIDER: 'twilio',
      SMS_TWILIO_BASE_URL: sms.url,
      SMS_TWILIO_ACCOUNT_SID: SID,
      SMS_TWILIO_AUTH_TOKEN: 'secret-token',
      SMS_TWILIO_FROM: '+15005550006',
      CODE_RESEND_COOLDOWN_SECONDS: '0',
      MFA_MAX_ATTEMPTS: '4',
      // Every login from RISKY steps up (SUSPICIOUS_IP 30). Private addresses have no location,
      // so no travel or country signal interferes with what these tests are about.
      RISK_DENY_CIDRS: '10.0.0.8/29',
    });
    await t.services.users.create({ email, password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
    await sms?.close();
  });

  /** A session without any step-up (Sydney is not deny-listed). */
  const plainSession = async () => {
    const c = new Client(t.url, { 'x-forwarded-for': HOME, 'x-device-id': device('mia-home') });
    expect((await c.passwordLogin(email, pw)).body.step).toBe('done');
    return c;
  };

  it('binds a phone number by a code sent in the provider’s format, then an email address', async () => {
    const c = await plainSession();
    const bind = await c.post('/auth/mfa/phone', { phone: PHONE });
    expect(bind.status).toBe(201);
    expect(bind.body.to).toBe('••••••••0123');
    const req = sms.requests.at(-1)!;
    expect(req.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(req.auth).toBe(`Basic ${Buffer.from(`${SID}:secret-token`).toString('base64')}`);
    expect(req.form.get('From')).toBe('+15005550006');
    const ok = await c.post(`/auth/mfa/phone/${bind.body.id}/confirm`, { code: sms.lastCode(PHONE) });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ type: 'sms', restricted: true });
    expect(ok.body.recoveryCodes).toHaveLength(10);
    // Confirming again is refused: with a factor bound, adding needs fresh MFA first.
    expect((await c.post(`/auth/mfa/phone/${bind.body.id}/confirm`, { code: sms.lastCode(PHONE) })).body.code).toBe('STEP_UP_REQUIRED');
    expect((await c.post('/auth/mfa/phone', { phone: '0415 555 0123' })).body.code).toBe('VALIDATION_FAILED');

    // A second factor needs fresh MFA: step up by SMS, then bind the email address.
    const denied = await c.post('/auth/mfa/email', {});
    expect(denied.status).toBe(401);
    const up = await c.post('/auth/stepup', { acr_values: 'urn:threshold:acr:aal2' });
    expect(up.body.step).toBe('choose_method');
    const chosen = await c.post(`/auth/stepup/${up.body.id}`, { type: 'choose', method: 'sms' });
    expect(chosen.body).toMatchObject({ step: 'code', challenge: { channel: 'sms' } });
    expect((await c.post(`/auth/stepup/${up.body.id}`, { type: 'code', code: sms.lastCode(PHONE) })).body.step).toBe('done');
    const bindEmail = await c.post('/auth/mfa/email', {});
    expect(bindEmail.status).toBe(201);
    const confirmed = await c.post(`/auth/mfa/email/${bindEmail.body.id}/confirm`, { code: smtp.lastCode(email) });
    expect(confirmed.status).toBe(200);
    const types = (await c.get('/auth/mfa')).body.map((f: { type: string }) => f.type);
    expect(types).toEqual(['sms', 'email', 'recovery_code']);
    // The code email has both bodies.
    const codeMail = smtp.messages.find((m) => m.to.includes(email) && /Subject:.*code/i.test(m.raw))!;
    expect(codeMail.raw).toMatch(/Content-Type: text\/plain/i);
    expect(codeMail.raw).toMatch(/Content-Type: text\/html/i);
    // Each factor change was mailed to the user (the phone, then the email address).
    for (let i = 0; i < 100 && smtp.messages.filter((m) => /Subject:.*(factor|security|changed)/i.test(m.raw)).length < 2; i++)
      await new Promise((r) => setTimeout(r, 50));
    const notices = smtp.messages.filter((m) => m.to.includes(email) && /Subject:.*(factor|security|changed)/i.test(m.raw));
    expect(notices.length).toBe(2);
  });

  it('steps a login up by SMS: amr pwd sms mfa', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': RISKY, 'x-device-id': device('mia-sms') });
    const r = await c.passwordLogin(email, pw);
    expect(r.body.step, JSON.stringify(r.body)).toBe('choose_method');
    expect(r.body.methods).toEqual(['sms', 'email', 'recovery_code']);
    const code = await c.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'sms' });
    expect(code.body).toMatchObject({ step: 'code', challenge: { channel: 'sms', to: '••••••••0123' } });
    const done = await c.post(`/auth/login/${r.flowId}`, { type: 'code', code: sms.lastCode(PHONE) });
    expect(done.status).toBe(200);
    expect(done.body.session.amr).toEqual(['pwd', 'sms', 'mfa']);
  });

  it('never lets password + email code satisfy a permission that requires mfa', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': RISKY, 'x-device-id': device('mia-email') });
    const r = await c.passwordLogin(email, pw);
    await c.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'email' });
    const done = await c.post(`/auth/login/${r.flowId}`, { type: 'code', code: smtp.lastCode(email) });
    expect(done.body.step).toBe('done');
    expect(done.body.session.amr).toEqual(['pwd']);
    expect(done.body.session.acr).toBe('urn:threshold:acr:aal1');
    expect((await c.post('/auth/authorize', { permission: 'WRITE_BACK_EPIC' })).status).toBe(401);
    // And step-up for that permission does not even offer email.
    const up = await c.post('/auth/stepup', { permission: 'WRITE_BACK_EPIC' });
    expect(up.body.methods).toEqual(['sms', 'recovery_code']);
    // Nor any step-up: an email code would only refresh the clock of an older MFA.
    const plain = await c.post('/auth/stepup', {});
    expect(plain.body.methods).toEqual(['sms', 'recovery_code']);
  });

  it('a code works once, only in its own flow, and resend does not extend the guess budget', async () => {
    const a = new Client(t.url, { 'x-forwarded-for': RISKY, 'x-device-id': device('mia-a') });
    const fa = await a.passwordLogin(email, pw);
    await a.post(`/auth/login/${fa.flowId}`, { type: 'choose', method: 'sms' });
    const codeA = sms.lastCode(PHONE)!;
    const b = new Client(t.url, { 'x-forwarded-for': RISKY, 'x-device-id': device('mia-b') });
    const fb = await b.passwordLogin(email, pw);
    await b.post(`/auth/login/${fb.flowId}`, { type: 'choose', method: 'sms' });
    const codeB = sms.lastCode(PHONE)!;
    // Flow A's code in flow B is just a wrong code there.
    if (codeA !== codeB) expect((await b.post(`/auth/login/${fb.flowId}`, { type: 'code', code: codeA })).body.code).toBe('MFA_CODE_INVALID');
    else await b.post(`/auth/login/${fb.flowId}`, { type: 'code', code: '000000' });
    // One more miss, a resend (a new code), then two misses spend the budget of 4: locked.
    expect((await b.post(`/auth/login/${fb.flowId}`, { type: 'code', code: '999999' })).status).toBe(400);
    const resent = await b.post(`/auth/login/${fb.flowId}`, { type: 'resend' });
    expect(resent.body.step).toBe('code');
    const fresh = sms.lastCode(PHONE)!;
    expect((await b.post(`/auth/login/${fb.flowId}`, { type: 'code', code: '999998' })).status).toBe(400);
    const locked = await b.post(`/auth/login/${fb.flowId}`, { type: 'code', code: '999997' });
    expect(locked.status).toBe(423);
    expect(locked.body.flow.step).toBe('locked');
    // The fresh code is worthless now: the flow takes no more events, and the challenge is spent.
    expect((await b.post(`/auth/login/${fb.flowId}`, { type: 'code', code: fresh })).body.code).toBe('INVALID_EVENT');
    expect(await t.services.codes.verify(fb.flowId, fresh)).toBe('locked');
    // Flow A's code still works, once.
    const ok = await a.post(`/auth/login/${fa.flowId}`, { type: 'code', code: codeA });
    expect(ok.body.step).toBe('done');
    const again = await a.post(`/auth/login/${fa.flowId}`, { type: 'code', code: codeA });
    expect(again.body.code).toBe('INVALID_EVENT');
  });

  it('SMS provider down: a clear error, and the user may pick another factor', async () => {
    await t.services.users.unlock((await t.services.users.byEmail(email))!.id);
    const c = new Client(t.url, { 'x-forwarded-for': RISKY, 'x-device-id': device('mia-down') });
    const r = await c.passwordLogin(email, pw);
    sms.setStatus(500);
    try {
      const failed = await c.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'sms' });
      expect(failed.status).toBe(503);
      expect(failed.body.code).toBe('DELIVERY_FAILED');
      expect(failed.body.flow).toMatchObject({ step: 'choose_method', methods: ['sms', 'email', 'recovery_code'] });
      expect(failed.headers.getSetCookie().some((x) => x.startsWith('threshold_session='))).toBe(false);
    } finally {
      sms.setStatus(201);
    }
    await c.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'email' });
    const done = await c.post(`/auth/login/${r.flowId}`, { type: 'code', code: smtp.lastCode(email) });
    expect(done.body.step).toBe('done');
    expect(done.body.session.amr).toEqual(['pwd']); // the weaker factor is visible, not silently equal
  });
});
