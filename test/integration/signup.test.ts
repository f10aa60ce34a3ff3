import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, device, signIn, startTestServer, type TestServer } from '../helpers/server.ts';

// Self-service sign-up and email verification end to end: the real server, the real risk and
// notify workers on Redis, PostgreSQL, and mail delivered to a real SMTP server on loopback.

interface Mail {
  to: string[];
  raw: string;
}

async function smtpServer() {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    logger: false,
    // A mailbox that does not exist: the server refuses it (a permanent failure).
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('bounce')) return cb(Object.assign(new Error('no such mailbox'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        cb();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const subjectOf = (m: Mail) => /^subject:\s*(.+)$/im.exec(m.raw)?.[1]?.trim() ?? '';
const codeIn = (m: Mail) => /confirmation code is (\d{6})/.exec(m.raw)?.[1] ?? null;
const mailsTo = (mails: Mail[], to: string) => mails.filter((m) => m.to.includes(to));

let n = 0;
/** A browser of its own (device and address) for each sign-up: risk history and limits stay apart. */
const browser = (t: TestServer) => new Client(t.url, { 'x-forwarded-for': `81.2.69.${100 + (n++ % 100)}`, 'x-device-id': device(`signup-${n}`) });

async function startSignup(c: Client, event: Record<string, unknown>) {
  const start = await c.post('/auth/signup', {});
  expect(start.status).toBe(201);
  expect(start.body).toMatchObject({ type: 'signup', step: 'signup' });
  const t0 = performance.now();
  const r = await c.post(`/auth/signup/${start.body.id}`, { type: 'signup', ...event });
  return { ...r, flowId: start.body.id as string, ms: performance.now() - t0 };
}

describe('sign-up is off by default', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t?.close());

  it('answers 404 SIGNUP_DISABLED on every sign-up route, creating nothing', async () => {
    const c = browser(t);
    for (const [method, path] of [['POST', '/auth/signup'], ['GET', '/auth/signup/flw_aaaaaaaaaaaaaaaaaaaa'], ['POST', '/auth/signup/flw_aaaaaaaaaaaaaaaaaaaa']] as const) {
      const r = await c.req(method, path, method === 'POST' ? { type: 'signup', email: 'x@example.test', password: 'a long enough passphrase' } : undefined);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('SIGNUP_DISABLED');
    }
    expect((await t.db.query('SELECT 1 FROM flows WHERE type = $1', ['signup'])).rowCount).toBe(0);
  });
});

describe('sign-up and email verification (SIGNUP_ENABLED=on, mail through SMTP)', () => {
  let smtp: Awaited<ReturnType<typeof smtpServer>>;
  let t: TestServer;
  beforeAll(async () => {
    smtp = await smtpServer();
    t = await startTestServer({ SIGNUP_ENABLED: 'on', SMTP_URL: smtp.url, DEV_MAILBOX: 'off', RATE_LIMIT_SIGNUPS_PER_HOUR: '1000' });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  it('creates an unverified identity, mails a code, and the code verifies the address (in /auth/me and the access token)', async () => {
    const c = browser(t);
    const email = 'new.person@example.test';
    const r = await startSignup(c, { email, password: 'a long enough passphrase', displayName: 'New Person' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'signup', step: 'code', challenge: { channel: 'email', to: 'n••••••@example.test' } });
    const user = (await t.services.users.byEmail(email))!;
    expect(user).toMatchObject({ displayName: 'New Person', roles: [], emailVerified: false });
    const mail = mailsTo(smtp.mails, email);
    expect(mail.map(subjectOf)).toEqual(['Confirm your email address for Threshold']);
    const code = codeIn(mail[0])!;
    expect(code).toMatch(/^\d{6}$/);
    // Unverified, the account can sign in; the session and tokens say the address is not proven.
    const before = await signIn(t.url, email, 'a long enough passphrase', { returnTokens: true, device: device('np') });
    expect((await before.c.get('/auth/me')).body.user.emailVerified).toBe(false);
    expect(decodeJwt(before.token).email_verified).toBe(false);

    const wrong = await c.post(`/auth/signup/${r.flowId}`, { type: 'code', code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({ code: 'MFA_CODE_INVALID', flow: { step: 'code' } });
    const ok = await c.post(`/auth/signup/${r.flowId}`, { type: 'code', code });
    expect(ok.status).toBe(200);
    expect(ok.body.step).toBe('done');
    expect((await t.services.users.byEmail(email))!.emailVerified).toBe(true);
    const after = await signIn(t.url, email, 'a long enough passphrase', { returnTokens: true, device: device('np') });
    expect((await after.c.get('/auth/me')).body.user.emailVerified).toBe(true);
    expect(decodeJwt(after.token).email_verified).toBe(true);
    // Single use: the code does not work twice.
    expect((await c.post(`/auth/signup/${r.flowId}`, { type: 'code', code })).body.code).toBe('INVALID_EVENT');
    const { rows } = await t.db.query<{ type: string; reason: string }>("SELECT type, reason FROM audit_events WHERE subject = $1 AND type IN ('user.created', 'email.verified') ORDER BY seq", [user.id]);
    expect(rows).toEqual([{ type: 'user.created', reason: 'SIGNUP' }, { type: 'email.verified', reason: 'SIGNUP' }]);
  });

  it('an address that already has an account: the same answer (status, shape, time), a notice to the owner, no new account, no code that works', async () => {
    await t.services.users.create({ email: 'owner@example.test', password: 'the owner passphrase', roles: [] });
    const taken: Awaited<ReturnType<typeof startSignup>>[] = [];
    const fresh: Awaited<ReturnType<typeof startSignup>>[] = [];
    for (let i = 0; i < 3; i++) {
      taken.push(await startSignup(browser(t), { email: 'owner@example.test', password: 'an attacker passphrase' }));
      fresh.push(await startSignup(browser(t), { email: `free${i}@example.test`, password: 'an attacker passphrase' }));
    }
    const shape = (b: Record<string, unknown>) => ({ ...b, id: 'x', expiresAt: 'x', challenge: { ...(b.challenge as object), to: String((b.challenge as { to: string }).to).replace(/^[^•]+•+/, '') } });
    for (let i = 0; i < 3; i++) {
      expect(taken[i].status).toBe(fresh[i].status);
      expect(shape(taken[i].body)).toEqual(shape(fresh[i].body));
    }
    // The same timing class: both hash the password, write, and wait for one delivered mail.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
    const [a, b] = [median(taken.map((x) => x.ms)), median(fresh.map((x) => x.ms))];
    expect(Math.max(a, b) / Math.min(a, b)).toBeLessThan(3);

    const owner = (await t.services.users.byEmail('owner@example.test'))!;
    expect(mailsTo(smtp.mails, 'owner@example.test').map(subjectOf)).toEqual(Array(3).fill('Someone tried to sign up with your email address'));
    expect(mailsTo(smtp.mails, 'owner@example.test').some((m) => codeIn(m))).toBe(false);
    expect((await t.db.query('SELECT 1 FROM identities WHERE email = $1', ['owner@example.test'])).rowCount).toBe(1);
    // No code verifies the decoy, and the owner's password is untouched.
    const c = browser(t);
    const r = await startSignup(c, { email: 'owner@example.test', password: 'an attacker passphrase' });
    for (let i = 0; i < 4; i++) expect((await c.post(`/auth/signup/${r.flowId}`, { type: 'code', code: String(i).padStart(6, '0') })).body.code).toBe('MFA_CODE_INVALID');
    expect((await c.post(`/auth/signup/${r.flowId}`, { type: 'code', code: '999999' })).body.code).toBe('MFA_CODE_LOCKED');
    expect(owner.emailVerified).toBe(false);
    expect((await signIn(t.url, 'owner@example.test', 'the owner passphrase', { device: device('owner') })).body.step).toBe('done');
    const { rows } = await t.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'signup.requested' AND subject = $1", [owner.id]);
    expect(rows.length).toBe(4);
    expect(rows[0].reason).toBe('EXISTING_ACCOUNT');
  });

  it('refuses a breached password, a disposable domain and a bad address, creating nothing; the flow stays at its step', async () => {
    const c = browser(t);
    const start = await c.post('/auth/signup', {});
    const submit = (email: string, password: string) => c.post(`/auth/signup/${start.body.id}`, { type: 'signup', email, password });
    const breached = await submit('victim2@example.test', '1qaz2wsx3edc4rfv');
    expect(breached.status).toBe(400);
    expect(breached.body).toMatchObject({ code: 'PASSWORD_REJECTED', reasons: ['BREACHED'], flow: { step: 'signup' } });
    const mine = await submit('jo.bloggs@example.test', 'jo.bloggs has a passphrase');
    expect(mine.body).toMatchObject({ code: 'PASSWORD_REJECTED', reasons: ['CONTAINS_IDENTIFIER'] });
    expect((await submit('someone@mailinator.com', 'a long enough passphrase')).body).toMatchObject({ code: 'EMAIL_DISPOSABLE', flow: { step: 'signup' } });
    expect((await submit('someone@inbox.mailinator.com', 'a long enough passphrase')).body.code).toBe('EMAIL_DISPOSABLE');
    expect((await submit('not-an-address', 'a long enough passphrase')).body.code).toBe('VALIDATION_FAILED');
    for (const e of ['victim2@example.test', 'jo.bloggs@example.test', 'someone@mailinator.com', 'someone@inbox.mailinator.com'])
      expect(await t.services.users.byEmail(e)).toBeNull();
    // The same flow then accepts a good form.
    expect((await submit('victim2@example.test', 'a long enough passphrase')).body.step).toBe('code');
  });

  it('50 parallel uses of one verification code: exactly one verifies', async () => {
    const c = browser(t);
    const r = await startSignup(c, { email: 'racer@example.test', password: 'a long enough passphrase' });
    const code = codeIn(mailsTo(smtp.mails, 'racer@example.test')[0])!;
    const answers = await Promise.all(Array.from({ length: 50 }, () => c.post(`/auth/signup/${r.flowId}`, { type: 'code', code })));
    const won = answers.filter((a) => a.status === 200);
    expect(won.length).toBe(1);
    expect(won[0].body.step).toBe('done');
    for (const a of answers.filter((x) => x.status !== 200)) expect(['FLOW_CONFLICT', 'INVALID_EVENT']).toContain(a.body.code);
    const u = (await t.services.users.byEmail('racer@example.test'))!;
    expect(u.emailVerified).toBe(true);
    expect((await t.db.query("SELECT 1 FROM audit_events WHERE type = 'email.verified' AND subject = $1", [u.id])).rowCount).toBe(1);
  });

  it('the flow is bound to the browser that started it, and a resend is held to the cooldown', async () => {
    const c = browser(t);
    const r = await startSignup(c, { email: 'bound@example.test', password: 'a long enough passphrase' });
    const other = browser(t);
    expect((await other.post(`/auth/signup/${r.flowId}`, { type: 'code', code: '123456' })).body.code).toBe('FLOW_NOT_FOUND');
    const resend = await c.post(`/auth/signup/${r.flowId}`, { type: 'resend' });
    expect(resend.status).toBe(429);
    expect(resend.body.code).toBe('CODE_RESEND_TOO_SOON');
    expect(Number(resend.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('a signed-in account proves its address: a code bound to the session, 50 parallel uses → one success', async () => {
    await t.services.users.create({ email: 'ivy@example.test', password: 'made by an administrator', roles: [] });
    const a = await signIn(t.url, 'ivy@example.test', 'made by an administrator', { device: device('ivy-a'), ip: '81.2.69.90', returnTokens: true });
    const b = await signIn(t.url, 'ivy@example.test', 'made by an administrator', { device: device('ivy-b'), ip: '81.2.69.90' });
    expect((await a.c.get('/auth/me')).body.user.emailVerified).toBe(false);
    const sent = await a.c.post('/auth/email/verification');
    expect(sent.body).toMatchObject({ emailVerified: false, to: 'i••@example.test' });
    expect((await a.c.post('/auth/email/verification')).body.code).toBe('CODE_RESEND_TOO_SOON');
    const code = codeIn(mailsTo(smtp.mails, 'ivy@example.test').at(-1)!)!;
    // Bound to the session that asked: the same code from another session of the same user fails.
    expect((await b.c.post('/auth/email/verification/confirm', { code })).body.code).toBe('MFA_CODE_INVALID');
    const answers = await Promise.all(Array.from({ length: 50 }, () => a.c.post('/auth/email/verification/confirm', { code })));
    expect(answers.filter((x) => x.status === 200).length).toBe(1);
    for (const x of answers.filter((y) => y.status !== 200)) expect(x.body.code).toBe('MFA_CODE_INVALID');
    expect((await a.c.get('/auth/me')).body.user.emailVerified).toBe(true);
    expect((await a.c.post('/auth/email/verification')).body).toEqual({ emailVerified: true });
    const u = (await t.services.users.byEmail('ivy@example.test'))!;
    const { rows } = await t.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'email.verified' AND subject = $1", [u.id]);
    expect(rows).toEqual([{ reason: 'SESSION' }]);
  });

  it('a refused delivery does not fail the sign-up (new or taken address alike); the flow offers a resend', async () => {
    await t.services.users.create({ email: 'bounce.owner@example.test', password: 'the owner passphrase', roles: [] });
    const fresh = await startSignup(browser(t), { email: 'bounce.new@example.test', password: 'a long enough passphrase' });
    const taken = await startSignup(browser(t), { email: 'bounce.owner@example.test', password: 'a long enough passphrase' });
    for (const r of [fresh, taken]) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ step: 'code', messages: [] });
    }
    expect(await t.services.users.byEmail('bounce.new@example.test')).toMatchObject({ emailVerified: false });
  });

  it('the bootstrap admin signing up again is told nothing new (the same answer as a free address)', async () => {
    const r = await startSignup(browser(t), { email: ADMIN.email, password: 'an unrelated passphrase' });
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('code');
  });
});

describe('sign-up open to listed domains only', () => {
  let t: TestServer;
  let smtp: Awaited<ReturnType<typeof smtpServer>>;
  beforeAll(async () => {
    smtp = await smtpServer();
    const tor = join(mkdtempSync(join(tmpdir(), 'signup-')), 'tor-exits.txt');
    writeFileSync(tor, '198.51.100.7\n');
    t = await startTestServer({
      SIGNUP_ENABLED: 'on',
      SIGNUP_ALLOWED_DOMAINS: 'example.test, .corp.test',
      SMTP_URL: smtp.url,
      DEV_MAILBOX: 'off',
      RATE_LIMIT_SIGNUPS_PER_HOUR: '5',
      // An address on the deny list and a Tor exit: the default policy denies.
      RISK_DENY_CIDRS: '198.51.100.0/24',
      RISK_TOR_EXITS_FILE: tor,
    });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  it('SIGNUP_ALLOWED_DOMAINS: a listed domain or a subdomain of a dotted entry; any other is refused', async () => {
    expect((await startSignup(browser(t), { email: 'a@example.test', password: 'a long enough passphrase' })).body.step).toBe('code');
    expect((await startSignup(browser(t), { email: 'b@eu.corp.test', password: 'a long enough passphrase' })).body.step).toBe('code');
    const other = await startSignup(browser(t), { email: 'c@elsewhere.test', password: 'a long enough passphrase' });
    expect(other.status).toBe(400);
    expect(other.body.code).toBe('EMAIL_DOMAIN_NOT_ALLOWED');
    expect((await startSignup(browser(t), { email: 'd@sub.example.test', password: 'a long enough passphrase' })).body.code).toBe('EMAIL_DOMAIN_NOT_ALLOWED');
  });

  it('scored like a login: a sign-up from a denied network is refused (SIGNUP_DENIED), creating nothing, audited', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': '198.51.100.7', 'x-device-id': device('tor') });
    const r = await startSignup(c, { email: 'from.tor@example.test', password: 'a long enough passphrase' });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'SIGNUP_DENIED', flow: { step: 'denied', risk: { level: 'high' } } });
    expect(r.body.flow.risk.reasons).toEqual(expect.arrayContaining(['TOR_EXIT', 'SUSPICIOUS_IP']));
    expect(await t.services.users.byEmail('from.tor@example.test')).toBeNull();
    expect(mailsTo(smtp.mails, 'from.tor@example.test')).toEqual([]);
    expect((await t.db.query("SELECT 1 FROM audit_events WHERE type = 'signup.denied'")).rowCount).toBe(1);
  });

  it('RATE_LIMIT_SIGNUPS_PER_HOUR: flow starts per client IP', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': '81.2.69.250', 'x-device-id': device('many') });
    for (let i = 0; i < 5; i++) expect((await c.post('/auth/signup', {})).status).toBe(201);
    const sixth = await c.post('/auth/signup', {});
    expect(sixth.status).toBe(429);
    expect(sixth.body.code).toBe('RATE_LIMITED');
    expect((await new Client(t.url, { 'x-forwarded-for': '81.2.69.251', 'x-device-id': device('other') }).post('/auth/signup', {})).status).toBe(201);
  });
});
