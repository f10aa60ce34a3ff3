import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN, Client, device, IP, oathtool, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';
import { startSmtp } from '../helpers/peers.ts';

/**
 * Account recovery (issue 12 item 3) over HTTP on real Postgres, Redis (BullMQ risk and notify
 * workers) and a real SMTP server: the link is read out of the delivered mail.
 */
describe('account recovery', () => {
  let t: TestServer;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;

  beforeAll(async () => {
    smtp = await startSmtp();
    t = await startTestServer({ SMTP_URL: smtp.url, CODE_RESEND_COOLDOWN_SECONDS: '0' });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  /** Mail bodies are quoted-printable: undo soft breaks and `=3D` before reading them. */
  const mailsTo = (to: string) => smtp.messages.filter((m) => m.to.includes(to)).map((m) => m.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '='));
  /** The code of the newest recovery link mailed to `to` (waits for the notify worker to deliver it). */
  const linkCode = async (to: string, after = 0) =>
    vi.waitFor(
      () => {
        const m = mailsTo(to).slice(after).reverse().find((x) => x.includes('/auth/recovery/'));
        const code = m && /\/auth\/recovery\/(flw_[A-Za-z0-9_-]+)#code=([A-Za-z0-9_-]+)/.exec(m);
        if (!code) throw new Error(`no recovery mail to ${to} yet`);
        return { flowId: code[1], code: code[2] };
      },
      { timeout: 20_000, interval: 50 },
    );
  const user = async (name: string, o: { totp?: boolean } = {}) => {
    const email = `${name}@example.test`;
    const password = `${name}-has-a-long-password`;
    const u = await t.services.users.create({ email, password, roles: ['PATHOLOGIST'] });
    // The user proved the address (POST /auth/email/verification); recovery mails only proven addresses.
    await t.db.query('UPDATE identities SET email_verified = true WHERE id = $1', [u.id]);
    let secret = '';
    if (o.totp) {
      const e = await t.services.totp.enrol(u.id, email);
      secret = e.secret;
      await t.services.totp.confirm(u.id, e.id, oathtool(secret, t.clock.now()));
    }
    return { id: u.id, email, password, secret };
  };
  const browser = (name: string, ip = IP.london) => new Client(t.url, { 'x-forwarded-for': ip, 'x-device-id': device(name) });
  const ask = (c: Client, identifier: string) => c.post('/auth/recovery', { identifier });
  const auditCount = async (type: string, subject: string) =>
    (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE type = $1 AND subject = $2', [type, subject])).rows[0].n;

  it('end to end through SMTP: link → new password; every other session and refresh family ends; the user is told', async () => {
    const ann = await user('ann');
    // Each test on an address of its own (private: no location), so one test's logins are no velocity signal for another's.
    const ip = '10.3.0.1';
    const { c: old, body } = await signIn(t.url, ann.email, ann.password, { returnTokens: true, ip });
    const refreshToken = body.tokens.refresh_token as string;

    const asker = browser('ann-asks', ip);
    const r = await ask(asker, ann.email);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ type: 'recovery', step: 'recovery_link' });
    const { flowId, code } = await linkCode(ann.email);
    expect(flowId).toBe(r.body.id);

    // Opened in another browser than the one that asked (the mail app's): that is fine.
    const reader = browser('ann-reads', ip);
    const wrong = await reader.post(`/auth/recovery/${flowId}`, { type: 'link', code: 'A'.repeat(32) });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('RECOVERY_LINK_INVALID');
    const linked = await reader.post(`/auth/recovery/${flowId}`, { type: 'link', code });
    expect(linked.status).toBe(200);
    expect(linked.body.step).toBe('new_password');
    // The flow now belongs to the browser that proved the link.
    expect((await asker.post(`/auth/recovery/${flowId}`, { type: 'password', password: 'stolen-flow-password' })).body.code).toBe('FLOW_NOT_FOUND');

    // The policy of every new password (breach corpus, NIST length): refused, and the step stays.
    for (const weak of ['short', '1qaz2wsx3edc4rfv', 'ann@example.test-and-more']) {
      const r = await reader.post(`/auth/recovery/${flowId}`, { type: 'password', password: weak });
      expect(r.status, weak).toBe(400);
      expect(r.body.code, weak).toBe('PASSWORD_REJECTED');
      expect(r.body.flow.step).toBe('new_password');
    }
    const done = await reader.post(`/auth/recovery/${flowId}`, { type: 'password', password: 'violet harbour lantern' });
    expect(done.status).toBe(200);
    expect(done.body.step).toBe('done');
    expect(done.body).not.toHaveProperty('session');

    expect((await old.get('/auth/check')).body).toEqual({ authenticated: false });
    const refreshed = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: refreshToken }) });
    expect(refreshed.status).toBe(400);
    expect(((await refreshed.json()) as { error: string }).error).toBe('invalid_grant');
    // The link worked once.
    expect((await reader.post(`/auth/recovery/${flowId}`, { type: 'link', code })).body.code).toBe('INVALID_EVENT');

    expect((await browser('ann-old', ip).passwordLogin(ann.email, ann.password)).status).toBe(401);
    expect((await browser('ann-new', ip).passwordLogin(ann.email, 'violet harbour lantern')).body.step).toBe('done');
    await vi.waitFor(() => expect(mailsTo(ann.email).some((m) => m.includes('reset by account recovery'))).toBe(true), { timeout: 20_000, interval: 50 });
    expect(await auditCount('recovery.completed', ann.id)).toBe(1);
    expect(await auditCount('password.changed', ann.id)).toBe(1);
  });

  it('lifts a timed lockout from guesses at the old password, not an administrator\'s lock', async () => {
    const gil = await user('gil');
    const ip = '10.7.0.1';
    await t.db.query("UPDATE identities SET locked_at = now(), locked_until = now() + interval '1 hour', failed_attempts = 10 WHERE id = $1", [gil.id]);
    const c = browser('gil', ip);
    await ask(c, gil.email);
    const { flowId, code } = await linkCode(gil.email);
    expect((await c.get(`/auth/recovery/${flowId}`)).body.step).toBe('recovery_link');
    await c.post(`/auth/recovery/${flowId}`, { type: 'link', code });
    expect((await browser('gil-other', ip).get(`/auth/recovery/${flowId}`)).status).toBe(404);
    expect((await c.post(`/auth/recovery/${flowId}`, { type: 'password', password: 'maple ferry horizon' })).body.step).toBe('done');
    expect((await browser('gil-after', ip).passwordLogin(gil.email, 'maple ferry horizon')).body.step).toBe('done');

    // An administrator's lock (no end) outlives the recovery.
    await t.db.query('UPDATE identities SET locked_at = now(), locked_until = NULL WHERE id = $1', [gil.id]);
    const before = mailsTo(gil.email).length;
    await ask(c, gil.email);
    const again = await linkCode(gil.email, before);
    await c.post(`/auth/recovery/${again.flowId}`, { type: 'link', code: again.code });
    expect((await c.post(`/auth/recovery/${again.flowId}`, { type: 'password', password: 'cobalt river lantern' })).body.step).toBe('done');
    // A locked account answers like a wrong password (no oracle).
    expect((await browser('gil-locked', ip).passwordLogin(gil.email, 'cobalt river lantern')).status).toBe(401);
    expect((await t.db.query<{ locked: boolean }>('SELECT locked_at IS NOT NULL AS locked FROM identities WHERE id = $1', [gil.id])).rows[0].locked).toBe(true);
  });

  it('answers an unknown identifier exactly like a known one, and mails nobody', async () => {
    const bob = await user('bob');
    await t.notifyIdle(); // earlier tests' notices are out
    const before = smtp.messages.length;
    const known = await ask(browser('enum-1'), bob.email);
    const unknown = await ask(browser('enum-2'), 'nobody-here@example.test');
    const shape = (r: typeof known) => ({ status: r.status, body: { ...r.body, id: typeof r.body.id, expiresAt: typeof r.body.expiresAt }, headers: [...r.headers.keys()].filter((k) => !['date', 'x-request-id', 'content-length'].includes(k)).sort() });
    expect(shape(unknown)).toEqual(shape(known));
    await linkCode(bob.email);
    await t.notifyIdle();
    expect(smtp.messages.slice(before).every((m) => m.to.includes(bob.email))).toBe(true);
    // A link for the unknown flow can never be right: same answer as a wrong one.
    const guess = await browser('enum-2').post(`/auth/recovery/${unknown.body.id}`, { type: 'link', code: 'B'.repeat(32) });
    expect(guess.body.code).toBe('RECOVERY_LINK_INVALID');

    // An address nobody proved (an administrator typed it) gets no link either: same answer, no mail.
    const typed = await t.services.users.create({ email: 'typed-by-admin@example.test', password: 'a long typed passphrase', roles: [] });
    const unverified = await ask(browser('enum-3'), typed.email);
    expect(shape(unverified)).toEqual(shape(known));
    await t.notifyIdle();
    expect(mailsTo(typed.email)).toEqual([]);
    const admin = await signInAdmin(t);
    const reset = await admin.post(`/api/users/${typed.id}/reset-password`);
    expect(reset.status).toBe(409);
    expect(reset.body.code).toBe('CONFLICT');
  });

  it('an account with TOTP still proves TOTP (a recovery code counts too); no password before it', async () => {
    const cat = await user('cat', { totp: true });
    const c = browser('cat', '10.4.0.1');
    await ask(c, cat.email);
    const { flowId, code } = await linkCode(cat.email);
    const linked = await c.post(`/auth/recovery/${flowId}`, { type: 'link', code });
    expect(linked.body.step).toBe('totp');
    expect(linked.body.methods).toContain('totp');
    expect(linked.body.methods).not.toContain('email');
    const skip = await c.post(`/auth/recovery/${flowId}`, { type: 'password', password: 'cat-skips-the-factor' });
    expect(skip.status).toBe(409);
    expect(skip.body.code).toBe('INVALID_EVENT');
    const bad = await c.post(`/auth/recovery/${flowId}`, { type: 'totp', code: '000000' });
    expect(bad.body.code).toBe('MFA_CODE_INVALID');
    t.clock.advance(31_000);
    const ok = await c.post(`/auth/recovery/${flowId}`, { type: 'totp', code: oathtool(cat.secret, t.clock.now()) });
    expect(ok.body.step).toBe('new_password');
    expect((await c.post(`/auth/recovery/${flowId}`, { type: 'password', password: 'copper meadow whistle' })).body.step).toBe('done');

    // Again, with a recovery code instead of the authenticator.
    const codes = await t.services.recovery.generate(cat.id);
    const before = mailsTo(cat.email).length;
    await ask(c, cat.email);
    const second = await linkCode(cat.email, before);
    await c.post(`/auth/recovery/${second.flowId}`, { type: 'link', code: second.code });
    expect((await c.post(`/auth/recovery/${second.flowId}`, { type: 'choose', method: 'recovery_code' })).body.step).toBe('recovery_code');
    expect((await c.post(`/auth/recovery/${second.flowId}`, { type: 'recovery_code', code: codes[0] })).body.step).toBe('new_password');
    expect((await c.post(`/auth/recovery/${second.flowId}`, { type: 'password', password: 'amber canyon rooftop' })).body.step).toBe('done');
  });

  it('20 parallel uses of one link change the password exactly once', async () => {
    const dan = await user('dan');
    const ip = '10.5.0.1';
    await ask(browser('dan', ip), dan.email);
    const { flowId, code } = await linkCode(dan.email);
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c = browser(`dan-${i}`, ip);
        const l = await c.post(`/auth/recovery/${flowId}`, { type: 'link', code });
        if (l.status !== 200) return { i, done: false, linkCode: l.body.code };
        const p = await c.post(`/auth/recovery/${flowId}`, { type: 'password', password: `granite orchard ${i}x` });
        return { i, done: p.status === 200 && p.body.step === 'done', linkCode: null };
      }),
    );
    const winners = results.filter((r) => r.done);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.linkCode)) expect(['FLOW_CONFLICT', 'FLOW_NOT_FOUND', 'INVALID_EVENT']).toContain(r.linkCode);
    expect(await auditCount('password.changed', dan.id)).toBe(1);
    expect((await browser('dan-check', ip).passwordLogin(dan.email, `granite orchard ${winners[0].i}x`)).body.step).toBe('done');
  });

  it('a recovery from a hosting network abroad right after a password spray is refused', async () => {
    const eve = await user('eve');
    await signIn(t.url, eve.email, eve.password); // history: London
    // The spray: wrong passwords for several accounts from one Hetzner address, each a new device.
    for (const name of ['spray-1', 'spray-2', 'spray-3', 'spray-4']) {
      const v = await user(name);
      await signIn(t.url, v.email, v.password); // established accounts, as a spray's targets are
      expect((await browser(`sprayer-${name}`, IP.falkenstein).passwordLogin(v.email, 'Winter2026!')).status).toBe(401);
    }
    const attacker = browser('attacker', IP.falkenstein);
    await ask(attacker, eve.email);
    const { flowId, code } = await linkCode(eve.email); // the attacker controls the mailbox
    const r = await attacker.post(`/auth/recovery/${flowId}`, { type: 'link', code });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('RECOVERY_DENIED');
    expect(r.body.flow.risk.reasons).toEqual(expect.arrayContaining(['HOSTING_NETWORK', 'PASSWORD_SPRAY']));
    expect(await auditCount('recovery.denied', eve.id)).toBe(1);
    expect((await browser('eve-home').passwordLogin(eve.email, eve.password)).body.step).toBe('done');
  });

  it('an administrator sends the same link; only an administrator may', async () => {
    const fay = await user('fay');
    const ip = '10.6.0.1';
    const { c: plain } = await signIn(t.url, fay.email, fay.password, { ip });
    expect([401, 403]).toContain((await plain.post(`/api/users/${fay.id}/reset-password`)).status);
    const admin = await signInAdmin(t);
    expect((await admin.post('/api/users/00000000-0000-4000-8000-000000000000/reset-password')).status).toBe(404);
    const before = mailsTo(fay.email).length;
    const r = await admin.post(`/api/users/${fay.id}/reset-password`);
    expect(r.status).toBe(202);
    const { flowId, code } = await linkCode(fay.email, before);
    const c = browser('fay-phone', ip);
    expect((await c.post(`/auth/recovery/${flowId}`, { type: 'link', code })).body.step).toBe('new_password');
    expect((await c.post(`/auth/recovery/${flowId}`, { type: 'password', password: 'silver tundra compass' })).body.step).toBe('done');
    expect((await plain.get('/auth/check')).body).toEqual({ authenticated: false });
    expect(ADMIN.email).not.toBe(fay.email);
  });
});
