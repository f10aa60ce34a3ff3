import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUserCli } from '../../scripts/user.ts';
import { createTestDb } from '../helpers/db.ts';
import { spawnTs } from '../helpers/processes.ts';
import { Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

/** The script as an operator runs it, with standard input. */
const runScript = (args: string[], env: Record<string, string>, stdin = '') => spawnTs({ file: 'scripts/user.ts', args }, { env, stdin }).exited;

describe('npm run user:create / user:unlock against PostgreSQL', () => {
  let t: TestServer;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await startTestServer({ LOCKOUT_THRESHOLD: '3', LOCKOUT_SECONDS: '3600' });
    env = { DATABASE_URL: t.dbUrl, LOG_LEVEL: 'silent' };
  });
  afterAll(async () => t?.close());

  const audited = async (subject: string) =>
    (await t.db.query<{ type: string; actor: string; reason: string }>("SELECT type, actor, reason FROM audit_events WHERE subject = $1 AND type LIKE 'user.%' ORDER BY seq", [subject])).rows;

  it('creates an administrator with a generated password, printed once, who can sign in', async () => {
    const lines: string[] = [];
    expect(await runUserCli(['create', '--email', 'Ops@Example.test', '--roles', 'ADMIN'], { env, out: (s) => lines.push(s) })).toBe(0);
    expect(lines[0]).toMatch(/^created ops@example\.test \([0-9a-f-]{36}\) with roles ADMIN$/);
    const password = /^password \(shown once\): (\S{20,})$/.exec(lines[1] ?? '')?.[1];
    expect(password).toBeDefined();

    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('ops') });
    expect((await c.passwordLogin('ops@example.test', password!)).body.step).toBe('done');
    expect((await c.post('/auth/authorize', { permission: 'MANAGE_USERS' })).status).toBe(200);
    const u = await t.services.users.byEmail('ops@example.test');
    expect(await audited(u!.id)).toEqual([{ type: 'user.created', actor: expect.stringMatching(/^cli:/), reason: 'CLI' }]);
  });

  it('reads a typed password from standard input and never prints it', async () => {
    const typed = 'a secret passphrase 7f3c'; // not containing the address's local part (the password policy)
    const r = await runScript(['create', '--email', 'typed@example.test', '--roles', 'PATHOLOGIST', '--password-stdin'], env, `${typed}\n`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^created typed@example\.test/);
    expect(r.out + r.err).not.toContain(typed);
    expect(r.out).not.toMatch(/password/);
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('typed') });
    expect((await c.passwordLogin('typed@example.test', typed)).body.step).toBe('done');
  }, 30_000);

  it('refuses bad input with exit 1 and a reason: duplicate email, unknown role, short or breached password, no email, a password argument', async () => {
    const lines: string[] = [];
    const run = (args: string[], pw?: string) => runUserCli(args, { env, out: (s) => lines.push(s), readPassword: async () => pw ?? '' });
    expect(await run(['create', '--email', 'ops@example.test', '--roles', 'ADMIN'])).toBe(1);
    expect(lines.pop()).toMatch(/^refused: CONFLICT/);
    expect(await run(['create', '--email', 'x@example.test', '--roles', 'SUPERUSER'])).toBe(1);
    expect(lines.pop()).toMatch(/^refused: VALIDATION_FAILED: Unknown roles: SUPERUSER/);
    expect(await run(['create', '--email', 'y@example.test', '--password-stdin'], 'short')).toBe(1);
    expect(lines.pop()).toMatch(/^refused: PASSWORD_REJECTED/);
    // A typed password meets the password policy: one from the breach corpus is refused.
    expect(await run(['create', '--email', 'y@example.test', '--password-stdin'], '1qaz2wsx3edc4rfv')).toBe(1);
    expect(lines.pop()).toMatch(/^refused: PASSWORD_REJECTED: .*data breaches/);
    expect(await run(['create', '--roles', 'ADMIN'])).toBe(1);
    expect(lines.pop()).toMatch(/--email is required/);
    expect(await run(['create', '--email', 'z@example.test', 'hunter22hunter22'])).toBe(1);
    expect(lines.pop()).toMatch(/unexpected argument/);
    expect(await t.services.users.byEmail('x@example.test')).toBeNull();
    expect(await t.services.users.byEmail('y@example.test')).toBeNull();
  });

  it('unlocks an administrator locked out by wrong passwords, at once and audited', async () => {
    const lines: string[] = [];
    await runUserCli(['create', '--email', 'locked@example.test', '--roles', 'ADMIN'], { env, out: (s) => lines.push(s) });
    const password = /password \(shown once\): (\S+)/.exec(lines.join('\n'))![1];
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('locked') });
    for (let i = 0; i < 3; i++) expect((await c.passwordLogin('locked@example.test', 'a wrong password')).status).toBe(401);
    expect((await c.passwordLogin('locked@example.test', password)).status).not.toBe(200);
    const u = (await t.services.users.byEmail('locked@example.test'))!;
    expect(u.locked).toBe(true);

    const r = await runScript(['unlock', '--email', 'locked@example.test'], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^unlocked locked@example\.test \([0-9a-f-]{36}\); it was locked until \d{4}-/);
    // In at once: the lock is lifted and the failures forgiven (else FAILED_ATTEMPTS would demand
    // a second factor this fresh administrator does not have, for the rest of the window).
    const after = await c.passwordLogin('locked@example.test', password);
    expect(after.body).toMatchObject({ step: 'done' });
    expect(after.body.risk.reasons).not.toContain('FAILED_ATTEMPTS');
    expect((await audited(u.id)).map((e) => [e.type, e.reason])).toEqual([
      ['user.created', 'CLI'],
      ['user.unlocked', 'CLI'],
    ]);

    expect(await runUserCli(['unlock', '--email', 'nobody@example.test'], { env, out: (s) => lines.push(s) })).toBe(1);
    expect(lines.pop()).toBe('no user with email nobody@example.test');
  }, 30_000);
});

describe('a production start with no administrator', () => {
  /** `npm start` as the production recipe has it: DATABASE_URL, a master key, no admin variables, no SMTP. */
  function startProd(dbUrl: string, key: string) {
    const p = spawnTs({ file: 'src/main.ts' }, { env: { NODE_ENV: 'production', DATABASE_URL: dbUrl, THRESHOLD_MASTER_KEY: key, PORT: '0' } });
    return { ready: p.waitFor(/listening on/).then(() => p.out()), stop: () => p.stop() };
  }

  it('says at start that nobody can sign in and which command fixes it, and that mail goes nowhere; quiet once an admin exists', async () => {
    const tdb = await createTestDb();
    const key = randomBytes(32).toString('base64');
    try {
      const first = startProd(tdb.url, key);
      const out = await first.ready;
      await first.stop();
      expect(out).toContain('No administrator exists');
      expect(out).toContain('npm run user:create -- --email you@example.com --roles ADMIN');
      expect(out).toContain('SMTP_URL is not set');

      expect(await runUserCli(['create', '--email', 'root@example.test', '--roles', 'ADMIN'], { env: { DATABASE_URL: tdb.url }, out: () => {} })).toBe(0);
      const second = startProd(tdb.url, key);
      const again = await second.ready;
      await second.stop();
      expect(again).not.toContain('No administrator exists');
    } finally {
      await tdb.drop();
    }
  }, 60_000);
});
