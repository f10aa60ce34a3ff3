import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createInProcessJobs } from '../../src/jobs/in-process.ts';
import { buildServices } from '../../src/services.ts';
import { bootstrapAdmin } from '../../src/bootstrap.ts';
import { systemClock } from '../../src/clock.ts';
import { createTestDb } from '../helpers/db.ts';
import { Client, device, enrolTotp, IP, oathtool, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

// The password policy on every path that sets a password, breached passwords at sign-in, and the
// k-anonymity range API against a loopback server that implements Have I Been Pwned's.

const BREACHED = '1qaz2wsx3edc4rfv'; // in the shipped corpus (SecLists top 1M), 16 characters
const sha1 = (s: string) => createHash('sha1').update(s, 'utf8').digest('hex').toUpperCase();

/** A loopback Pwned Passwords range API: knows `pwned`, pads every answer, records each prefix asked. */
async function rangeServer(pwned: string[]) {
  const asked: string[] = [];
  const hashes = pwned.map(sha1);
  const server: Server = createServer((req, res) => {
    const m = /^\/range\/([0-9A-F]{5})$/.exec(req.url ?? '');
    if (!m) return res.writeHead(404).end();
    asked.push(m[1]);
    const lines = hashes.filter((h) => h.startsWith(m[1])).map((h) => `${h.slice(5)}:42`);
    // Padding lines (count 0), as the real service adds with Add-Padding: true.
    for (let i = 0; i < 50; i++) lines.push(`${randomBytes(18).toString('hex').slice(0, 35).toUpperCase()}:0`);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A port nothing listens on. */
async function deadUrl() {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function logSink() {
  const lines: { level: number; msg: string }[] = [];
  let raw = '';
  const sink = new Writable({
    write(chunk, _e, cb) {
      raw += chunk.toString();
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger('warn', sink), lines, raw: () => raw };
}

describe('password policy on every path (offline corpus)', () => {
  let t: TestServer;
  let admin: Client;
  beforeAll(async () => {
    t = await startTestServer();
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  it('admin create (POST /api/users) refuses breached, short, identifier and product-name passwords, and says why', async () => {
    const refused = async (email: string, password: string, reasons: string[]) => {
      const r = await admin.post('/api/users', { email, password, roles: [] });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/problem\+json/);
      expect(r.body).toMatchObject({ code: 'PASSWORD_REJECTED', reasons, minLength: 15 });
      expect(await t.services.users.byEmail(email)).toBeNull();
    };
    await refused('breach@example.test', BREACHED, ['BREACHED']);
    await refused('breach@example.test', 'qwerty123456789', ['BREACHED']);
    await refused('short@example.test', 'only 14 chars!', ['TOO_SHORT']);
    await refused('mallory@example.test', 'Mallory-has-a-long-one', ['CONTAINS_IDENTIFIER']);
    await refused('nobody@example.test', 'my threshold passphrase', ['CONTAINS_PRODUCT_NAME']);
    const ok = await admin.post('/api/users', { email: 'fine@example.test', password: 'a sound long passphrase', roles: [] });
    expect(ok.status).toBe(201);
  });

  it('password change refuses a breached password, keeps the old one, and a good change ends the other sessions (audited)', async () => {
    await t.services.users.create({ email: 'quill@example.test', password: 'quill-first-passphrase', roles: [] });
    const a = (await signIn(t.url, 'quill@example.test', 'quill-first-passphrase', { device: device('quill-a'), ip: '81.2.69.151' })).c;
    const b = (await signIn(t.url, 'quill@example.test', 'quill-first-passphrase', { device: device('quill-b'), ip: '81.2.69.151' })).c;
    const bad = await a.post('/auth/password', { currentPassword: 'quill-first-passphrase', newPassword: BREACHED });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'PASSWORD_REJECTED', reasons: ['BREACHED'] });
    expect((await b.get('/auth/check')).body.authenticated).toBe(true);
    const good = await a.post('/auth/password', { currentPassword: 'quill-first-passphrase', newPassword: 'another sound passphrase' });
    expect(good.body).toEqual({ changed: true, endedSessions: 1 });
    expect((await a.get('/auth/check')).body.authenticated).toBe(true);
    expect((await b.get('/auth/check')).body.authenticated).toBe(false);
    const u = (await t.services.users.byEmail('quill@example.test'))!;
    const { rows } = await t.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'password.changed' AND subject = $1", [u.id]);
    expect(rows.map((r) => r.reason)).toEqual(['END_OTHER_SESSIONS']);
  });

  it('a breached password proven at sign-in flags the account: the done answer and /auth/me ask for a change, which clears it', async () => {
    // An account whose password predates the check (set below the policy, as an import would).
    const u = await t.services.users.create({ email: 'lee@example.test', password: BREACHED, roles: [] });
    const { c, body } = await signIn(t.url, 'lee@example.test', BREACHED, { device: device('lee'), ip: '81.2.69.152' });
    expect(body.passwordChangeRequired).toBe(true);
    expect((await c.get('/auth/me')).body.passwordChangeRequired).toBe(true);
    const { rows } = await t.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'password.flagged' AND subject = $1", [u.id]);
    expect(rows.map((r) => r.reason)).toEqual(['BREACHED']);
    // A wrong password is never looked up: the flag cannot be an oracle, and nothing more is audited.
    await new Client(t.url, { 'x-forwarded-for': '81.2.69.152', 'x-device-id': device('lee-x') }).passwordLogin('lee@example.test', 'qwerty123456789');
    expect((await t.db.query("SELECT 1 FROM audit_events WHERE type = 'password.flagged' AND subject = $1", [u.id])).rowCount).toBe(1);
    expect((await c.post('/auth/password', { currentPassword: BREACHED, newPassword: 'a much better secret now' })).status).toBe(200);
    expect((await c.get('/auth/me')).body.passwordChangeRequired).toBe(false);
    const again = await signIn(t.url, 'lee@example.test', 'a much better secret now', { device: device('lee'), ip: '81.2.69.152' });
    expect(again.body.passwordChangeRequired).toBeUndefined();
  });

  it('with a second factor: the change is asked for once the factor is proven, and 8 characters suffice for the new password', async () => {
    await t.services.users.create({ email: 'max@example.test', password: 'max-first-passphrase', roles: [] });
    const first = await signIn(t.url, 'max@example.test', 'max-first-passphrase', { device: device('max'), ip: '81.2.69.153' });
    const secret = await enrolTotp(first.c, t);
    // The password leaks later (here: set below the policy), then a login from a new device abroad.
    const u = (await t.services.users.byEmail('max@example.test'))!;
    await t.services.passwords.setPassword(u.id, 'password1');
    const c = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('max-new') });
    const r = await c.passwordLogin('max@example.test', 'password1');
    expect(r.body.step).toBe('choose_method');
    expect(r.body).not.toHaveProperty('passwordChangeRequired');
    expect((await c.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'totp' })).body.step).toBe('totp');
    t.clock.advance(30_000);
    const done = await c.post(`/auth/login/${r.flowId}`, { type: 'totp', code: oathtool(secret, t.clock.now()) });
    expect(done.body.step).toBe('done');
    expect(done.body.passwordChangeRequired).toBe(true);
    // Fresh MFA from this login: an 8-character password is enough with a second factor.
    const changed = await c.post('/auth/password', { currentPassword: 'password1', newPassword: 'eight ch' });
    expect(changed.status).toBe(200);
    expect((await c.get('/auth/me')).body.passwordChangeRequired).toBe(false);
  });

  it('the first administrator from the configuration: a breached THRESHOLD_ADMIN_PASSWORD stops the start, creating nobody', async () => {
    const tdb = await createTestDb();
    try {
      const config = loadConfig({
        NODE_ENV: 'test',
        DATABASE_URL: tdb.url,
        THRESHOLD_MASTER_KEY: randomBytes(32).toString('base64'),
        THRESHOLD_ADMIN_EMAIL: 'root@example.test',
        THRESHOLD_ADMIN_PASSWORD: 'qwerty123456789',
        DEV_MAILBOX: 'off',
      });
      const s = await buildServices({ config, db: tdb.db, jobs: createInProcessJobs({}), clock: systemClock, logger: createLogger('silent'), masterKey: config.masterKey! });
      try {
        await expect(bootstrapAdmin(config, s.users, s.audit, () => {}, s.passwordPolicy)).rejects.toThrow(/THRESHOLD_ADMIN_PASSWORD: .*BREACHED/);
        expect(await s.users.count()).toBe(0);
      } finally {
        await s.close();
      }
    } finally {
      await tdb.drop();
    }
  });
});

describe('the range API (k-anonymity, Have I Been Pwned compatible)', () => {
  const ONLY_REMOTE = `pwned-remotely-${randomBytes(4).toString('hex')}`; // not in the shipped corpus
  let range: Awaited<ReturnType<typeof rangeServer>>;
  let t: TestServer;
  let admin: Client;
  beforeAll(async () => {
    range = await rangeServer([ONLY_REMOTE]);
    t = await startTestServer({ PWNED_PASSWORDS_URL: range.url, SIGNUP_ENABLED: 'on', DEV_MAILBOX: 'on' });
    admin = await signInAdmin(t);
  });
  afterAll(async () => {
    await t?.close();
    await range?.close();
  });

  it('refuses a password the range API knows, sending only five hex digits of its SHA-1', async () => {
    range.asked.length = 0;
    const r = await admin.post('/api/users', { email: 'ranged@example.test', password: ONLY_REMOTE, roles: [] });
    expect(r.body).toMatchObject({ code: 'PASSWORD_REJECTED', reasons: ['BREACHED'] });
    expect(range.asked).toEqual([sha1(ONLY_REMOTE).slice(0, 5)]);
    expect((await admin.post('/api/users', { email: 'ranged@example.test', password: 'not known anywhere at all', roles: [] })).status).toBe(201);
  });

  it('sign-up and password change refuse it too', async () => {
    const c = new Client(t.url, { 'x-forwarded-for': '81.2.69.160', 'x-device-id': device('ranged-signup') });
    const flow = await c.post('/auth/signup', {});
    const r = await c.post(`/auth/signup/${flow.body.id}`, { type: 'signup', email: 'newcomer@example.test', password: ONLY_REMOTE });
    expect(r.body).toMatchObject({ code: 'PASSWORD_REJECTED', reasons: ['BREACHED'], flow: { step: 'signup' } });
    const { c: u } = await signIn(t.url, 'ranged@example.test', 'not known anywhere at all', { device: device('ranged'), ip: '81.2.69.161' });
    expect((await u.post('/auth/password', { currentPassword: 'not known anywhere at all', newPassword: ONLY_REMOTE })).body.code).toBe('PASSWORD_REJECTED');
  });

  it('flags an account whose proven password the range API knows', async () => {
    await t.services.users.create({ email: 'remote@example.test', password: ONLY_REMOTE, roles: [] });
    const { body } = await signIn(t.url, 'remote@example.test', ONLY_REMOTE, { device: device('remote'), ip: '81.2.69.154' });
    expect(body.passwordChangeRequired).toBe(true);
  });
});

describe('the range API unreachable: fail open, with a log line', () => {
  let t: TestServer;
  const log = logSink();
  beforeAll(async () => {
    t = await startTestServer({ PWNED_PASSWORDS_URL: await deadUrl(), PWNED_PASSWORDS_TIMEOUT_MS: '500', SIGNUP_ENABLED: 'on', DEV_MAILBOX: 'on' }, { logger: log.logger });
  });
  afterAll(async () => t?.close());

  it('sign-in and admin create still work; the offline corpus still refuses; a warning says the API was not asked', async () => {
    const admin = await signInAdmin(t);
    const made = await admin.post('/api/users', { email: 'ola@example.test', password: 'a passphrase for open', roles: [] });
    expect(made.status).toBe(201);
    expect((await signIn(t.url, 'ola@example.test', 'a passphrase for open', { device: device('open'), ip: '81.2.69.150' })).body.step).toBe('done');
    expect((await admin.post('/api/users', { email: 'open2@example.test', password: BREACHED, roles: [] })).body.code).toBe('PASSWORD_REJECTED');
    const c = new Client(t.url, { 'x-forwarded-for': '81.2.69.162', 'x-device-id': device('open-signup') });
    const flow = await c.post('/auth/signup', {});
    expect((await c.post(`/auth/signup/${flow.body.id}`, { type: 'signup', email: 'opener@example.test', password: 'another passphrase here' })).body.step).toBe('code');
    expect((await t.services.users.byEmail('opener@example.test'))?.emailVerified).toBe(false);
    const warnings = log.lines.filter((l) => /range API unreachable/.test(l.msg));
    expect(warnings.length).toBeGreaterThanOrEqual(3);
    expect(log.raw()).not.toContain('a passphrase for open');
    expect(log.raw()).not.toContain(sha1('a passphrase for open').slice(0, 5));
  });
});
