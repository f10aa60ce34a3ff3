import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';
import { guardSecondFactor } from '../../src/auth/mfa-guard.ts';

/** Regression tests for the findings of the security review of the login path. */
describe('security review regressions', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      LOCKOUT_THRESHOLD: '3',
      LOCKOUT_SECONDS: '600',
      PASSWORD_HASH_CONCURRENCY: '1',
      RATE_LIMIT_IP_ACCOUNT_FAILURES: '3',
      RATE_LIMIT_DELAY_BASE_MS: '0',
      RATE_LIMIT_ACCOUNT_FAILURES: '1000',
      RATE_LIMIT_IP_FAILURES: '1000',
    });
  });
  afterAll(async () => t?.close());

  /** The account's durable counters, read as the barrier of the burst tests. */
  const counters = async (id: string) => {
    const { rows } = await t.db.query<{ failed_attempts: number; mfa_failed_attempts: number; locked_at: Date | null }>(
      'SELECT failed_attempts, mfa_failed_attempts, locked_at FROM identities WHERE id = $1',
      [id],
    );
    const r = rows[0]!;
    return { spent: r.locked_at !== null || r.failed_attempts >= 3, mfa: r.mfa_failed_attempts };
  };

  it('a UTF-8 BOM before the JSON body does not skip the login limiter', async () => {
    await t.services.users.create({ email: 'bom@example.test', password: 'bom-has-a-long-password', roles: [] });
    const dev = device('bom');
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': dev });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const flow = await c.post('/auth/login', {});
      const r = await fetch(`${t.url}/auth/login/${flow.body.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': IP.sydney, 'x-device-id': dev },
        body: '\uFEFF' + JSON.stringify({ type: 'password', identifier: 'bom@example.test', password: `wrong-guess-${i}` }),
      });
      statuses.push(r.status);
    }
    expect(statuses.slice(3)).toEqual([429, 429]); // the per IP+account budget (3) holds
  });

  it('a burst of wrong passwords cannot hide a right one past the lockout', async () => {
    const u = await t.services.users.create({ email: 'burst@example.test', password: 'burst-has-a-long-password', roles: [] });
    // Hashing is queued one at a time: guesses are counted before they are checked.
    const wrong = Array.from({ length: 8 }, (_, i) => t.services.passwords.verifyLogin('burst@example.test', `wrong-${i}-password`));
    // Barrier (no sleep): the burst has spent the budget of 3 — counted, or already locked.
    await vi.waitFor(async () => expect((await counters(u.id)).spent).toBe(true), { timeout: 10_000, interval: 10 });
    const right = await t.services.passwords.verifyLogin('burst@example.test', 'burst-has-a-long-password');
    await Promise.all(wrong);
    expect(right.ok).toBe(false);
    expect(right.accountLocked).toBe(true);
    expect((await t.services.users.get(u.id))?.locked).toBe(true);
  });

  it('a burst of second-factor guesses over many flows cannot pass the account lock', async () => {
    const u = await t.services.users.create({ email: 'mfaburst@example.test', password: 'mfa-has-a-long-password', roles: [] });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Every check waits at the gate, as queued flows would: all guesses are in flight together.
    const guard = guardSecondFactor({ db: t.db, clock: t.clock, threshold: 3, lockoutSeconds: 600 }, async (_id, code) => {
      await gate;
      return code === 'right';
    });
    const wrong = Array.from({ length: 9 }, () => guard(u.id, 'wrong'));
    // Barrier (no sleep): all nine are counted and waiting at the gate before the right code comes.
    await vi.waitFor(async () => expect((await counters(u.id)).mfa).toBe(9), { timeout: 10_000, interval: 10 });
    const guesses = [...wrong, guard(u.id, 'right')];
    release();
    const results = await Promise.all(guesses);
    expect(results.filter(Boolean)).toHaveLength(0); // the right code came 10th: past the budget of 3
    expect((await t.services.users.get(u.id))?.locked).toBe(true);
  });

  it('changing the password counts wrong current passwords toward the lock, and needs fresh MFA beside factors', async () => {
    await t.services.users.unlock((await t.services.users.byEmail('bom@example.test'))!.id);
    const u = await t.services.users.create({ email: 'oracle@example.test', password: 'oracle-long-password', roles: [] });
    // Another network than the BOM test's, whose failures would (rightly) raise this login's risk.
    const c = new Client(t.url, { 'x-forwarded-for': IP.falkenstein, 'x-device-id': device('oracle') });
    expect((await c.passwordLogin('oracle@example.test', 'oracle-long-password')).body.step).toBe('done');
    for (let i = 0; i < 3; i++) expect((await c.post('/auth/password', { currentPassword: `guess-number-${i}`, newPassword: 'attacker-chosen-pass' })).status).toBe(401);
    expect((await c.post('/auth/password', { currentPassword: 'oracle-long-password', newPassword: 'attacker-chosen-pass' })).status).toBe(401);
    expect((await t.services.users.get(u.id))?.locked).toBe(true);
    await t.services.users.unlock(u.id);
    const e = await t.services.totp.enrol(u.id, u.email);
    await t.services.totp.confirm(u.id, e.id, oathtool(e.secret, t.clock.now()));
    const r = await c.post('/auth/password', { currentPassword: 'oracle-long-password', newPassword: 'attacker-chosen-pass' });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('STEP_UP_REQUIRED');
  });

  it('an enrolment started before other factors existed cannot be confirmed later without fresh MFA', async () => {
    const u = await t.services.users.create({ email: 'pending@example.test', password: 'pending-long-password', roles: [] });
    const attacker = new Client(t.url, { 'x-forwarded-for': IP.falkenstein, 'x-device-id': device('pending-attacker') });
    expect((await attacker.passwordLogin('pending@example.test', 'pending-long-password')).body.step).toBe('done');
    const planted = await attacker.post('/auth/mfa/totp');
    expect(planted.status).toBe(201);
    // The owner enrols a factor of their own.
    const own = await t.services.totp.enrol(u.id, u.email);
    await t.services.totp.confirm(u.id, own.id, oathtool(own.secret, t.clock.now()));
    t.clock.advance(30_000);
    const r = await attacker.post(`/auth/mfa/totp/${planted.body.id}/confirm`, { code: oathtool(planted.body.secret, t.clock.now()) });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('STEP_UP_REQUIRED');
    expect((await t.services.factors.list(u.id)).filter((f) => f.type === 'totp')).toHaveLength(1);
  });

  it('admin routes that need stronger authentication answer with the RFC 9470 challenge', async () => {
    await t.db.query(`UPDATE permissions SET requirement = '{"amr":["mfa"],"maxAge":900}' WHERE name = 'MANAGE_USERS'`);
    await t.services.rbac.changed();
    try {
      const admin = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('admin-9470') });
      expect((await admin.passwordLogin('admin@example.test', 'correct horse battery staple')).body.step).toBe('done');
      const r = await admin.post('/api/users', { email: 'x9470@example.test', roles: [] });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication".*acr_values=.*max_age=900/);
    } finally {
      await t.db.query("UPDATE permissions SET requirement = NULL WHERE name = 'MANAGE_USERS'");
      await t.services.rbac.changed();
    }
  });
});
