import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { startFederation, type FederationRig } from '../helpers/federation.ts';
import { Client, IP, device } from '../helpers/server.ts';

/**
 * Issue 10 item 9: the legacy upstream password check. An organisation whose OIDC provider has
 * `upstreamPassword` stays on the password step (no redirect), and the password is checked at the
 * provider's token endpoint (resource-owner password grant, registered in the loopback
 * oidc-provider through its registerGrantType extension point). Lockout, fail-closed and
 * "the password is never kept" are shown against the real provider.
 */
const ANN_PW = 'ann-upstream-Secret-1';
const BOB_PW = 'bob-upstream-Secret-2';
const WRONG = 'not-bobs-password-XYZ';

describe('upstream password check (resource-owner password grant, legacy)', () => {
  let f: FederationRig;
  let raw = '';
  const sink = new Writable({
    write(chunk, _e, cb) {
      raw += chunk.toString();
      cb();
    },
  });
  const client = (name: string, ip: string = IP.london) => new Client(f.url, { 'x-forwarded-for': ip, 'x-device-id': device(name) });
  /** A password login on its own flow and device: the answer of the password step. */
  const login = (name: string, identifier: string, password: string, ip?: string) => client(name, ip).passwordLogin(identifier, password);
  let annDevice: Record<string, string> = {};
  let acmeId = '';
  const grants = () => f.idps.acme.passwordGrants.length;

  beforeAll(async () => {
    f = await startFederation({
      slugs: ['acme', 'beta'],
      passwordGrant: true,
      logger: createLogger('trace', sink),
      env: { LOCKOUT_THRESHOLD: '3', RATE_LIMIT_DELAY_AFTER_FAILURES: '50' },
    });
    f.accounts.ann = { password: ANN_PW, email: 'ann@acme.test', emailVerified: true, name: 'Ann', groups: [] };
    f.accounts.bob = { password: BOB_PW, email: 'bob@acme.test', emailVerified: true, name: 'Bob', groups: [] };
    f.accounts.carol = { password: 'carol-at-beta-1', email: 'carol@beta.test', emailVerified: true, groups: [] };
    acmeId = (await f.addProvider('acme', { settings: { upstreamPassword: true } })).id;
    await f.addProvider('beta');
    for (const [slug, provider, domain] of [['acme-org', 'acme', 'acme.test'], ['beta-org', 'beta', 'beta.test']])
      expect((await f.admin.post('/api/organisations', { slug, name: slug, provider, domains: [domain] })).status).toBe(201);
  });
  afterAll(async () => f?.close());

  it('is off by default: an organisation whose provider lacks it is sent to the IdP, one with it gets the password step', async () => {
    const idps = (await f.admin.get('/api/idps')).body as { items?: { slug: string; settings: Record<string, unknown> }[] } | { slug: string; settings: Record<string, unknown> }[];
    const list = Array.isArray(idps) ? idps : (idps.items ?? []);
    expect(Object.fromEntries(list.map((p) => [p.slug, p.settings.upstreamPassword]))).toEqual({ acme: true, beta: false });
    const beta = await client('hrd-beta').post('/auth/login', { identifier: 'carol@beta.test' });
    expect(beta.body).toMatchObject({ step: 'redirect' });
    const acme = await client('hrd-acme').post('/auth/login', { identifier: 'ann@acme.test' });
    expect(acme.status).toBe(201);
    expect(acme.body.step).toBe('password');
    expect(acme.body.redirect ?? null).toBeNull();
  });

  it('a right password at the IdP signs in (JIT, linked by issuer and subject) with amr pwd; no local password is made', async () => {
    const before = grants();
    const c = client('ann');
    annDevice = { ...c.headers };
    const r = await c.passwordLogin('Ann@Acme.test', ANN_PW);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ step: 'done', session: { amr: ['pwd'] } });
    expect(grants()).toBe(before + 1);
    expect(f.idps.acme.passwordGrants.at(-1)).toEqual({ username: 'ann@acme.test' });
    const me = await c.get('/auth/me');
    expect(me.body).toMatchObject({ user: { email: 'ann@acme.test' }, session: { amr: ['pwd'] } });
    const link = await f.t.db.query(
      "SELECT x.issuer, x.subject, x.auth_protocol FROM external_identities x JOIN identities i ON i.id = x.identity_id WHERE i.email = 'ann@acme.test'",
    );
    expect(link.rows).toEqual([{ issuer: f.idps.acme.issuer, subject: 'ann', auth_protocol: 'oidc' }]);
    const pw = await f.t.db.query("SELECT 1 FROM password_credentials p JOIN identities i ON i.id = p.identity_id WHERE i.email = 'ann@acme.test'");
    expect(pw.rowCount).toBe(0);
  });

  it('a wrong password and a person unknown to the IdP answer exactly like a local wrong password', async () => {
    const shape = (b: Record<string, unknown>) => ({ code: b.code, status: b.status, step: (b.flow as { step?: string } | undefined)?.step });
    const wrong = await login('w1', 'ann@acme.test', 'definitely-wrong-1');
    const unknown = await login('w2', 'nobody@acme.test', 'definitely-wrong-2');
    const local = await login('w3', 'nobody-local@example.org', 'definitely-wrong-3');
    expect(wrong.body.code).toBe('INVALID_CREDENTIALS');
    expect([wrong.status, shape(wrong.body)]).toEqual([local.status, shape(local.body)]);
    expect([unknown.status, shape(unknown.body)]).toEqual([local.status, shape(local.body)]);
  });

  it('wrong passwords count toward the local lockout; once locked, even the right one is refused and the IdP is not asked', async () => {
    // Bob's first sign-in makes his local account (JIT); the counter lives there.
    const first = await login('bob-0', 'bob@acme.test', BOB_PW, IP.mountainView);
    expect(first.body, JSON.stringify(first.body)).toMatchObject({ step: 'done' });
    for (let i = 1; i <= 3; i++) {
      const r = await login(`bob-${i}`, 'bob@acme.test', WRONG, IP.mountainView);
      expect(r.body.code).toBe('INVALID_CREDENTIALS');
    }
    const row = await f.t.db.query<{ failed_attempts: number; locked: boolean }>("SELECT failed_attempts, locked_at IS NOT NULL AS locked FROM identities WHERE email = 'bob@acme.test'");
    expect(row.rows[0]).toEqual({ failed_attempts: 3, locked: true });
    const before = grants();
    const right = await login('bob-4', 'bob@acme.test', BOB_PW, IP.mountainView);
    expect(right.body.code).toBe('INVALID_CREDENTIALS');
    expect(right.body.session).toBeUndefined();
    expect(grants()).toBe(before);
  });

  it('a burst of wrong guesses reaches the IdP no more often than the threshold allows', async () => {
    f.accounts.dan = { password: 'dan-upstream-Secret-3', email: 'dan@acme.test', emailVerified: true, groups: [] };
    expect((await login('dan-0', 'dan@acme.test', 'dan-upstream-Secret-3', IP.sydney)).body.step).toBe('done');
    const before = grants();
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => login(`dan-b${i}`, 'dan@acme.test', `${WRONG}-${i}`, IP.sydney)));
    expect(answers.map((a) => a.body.code), JSON.stringify(answers.map((a) => a.body))).toEqual(answers.map(() => 'INVALID_CREDENTIALS'));
    expect(grants() - before).toBeLessThanOrEqual(3);
    const row = await f.t.db.query<{ locked: boolean }>("SELECT locked_at IS NOT NULL AS locked FROM identities WHERE email = 'dan@acme.test'");
    expect(row.rows[0].locked).toBe(true);
  });

  it('fails closed when the IdP is down: no session, audited, and the attempt does not count toward the lockout', async () => {
    const count = async () => (await f.t.db.query<{ n: number }>("SELECT failed_attempts AS n FROM identities WHERE email = 'ann@acme.test'")).rows[0].n;
    const before = await count();
    f.idps.acme.setUp(false);
    try {
      const r = await login('ann-down', 'ann@acme.test', ANN_PW);
      expect(r.status).toBeGreaterThanOrEqual(500);
      expect(r.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(r.body.session).toBeUndefined();
      expect(r.headers.getSetCookie().some((c) => c.startsWith('threshold_session='))).toBe(false);
    } finally {
      f.idps.acme.setUp(true);
    }
    expect(await count()).toBe(before);
    const audit = await f.t.db.query<{ reason: string; data: { what: string } }>("SELECT reason, data FROM audit_events WHERE type = 'federation.failed' ORDER BY seq DESC LIMIT 1");
    expect(audit.rows[0]).toMatchObject({ reason: 'IDP_UNAVAILABLE', data: { what: expect.stringMatching(/^PASSWORD_GRANT:/) } });
    // Back up: Ann signs in again on her known device.
    const again = await new Client(f.url, annDevice).passwordLogin('ann@acme.test', ANN_PW);
    expect(again.body, JSON.stringify(again.body)).toMatchObject({ step: 'done', session: { amr: ['pwd'] } });
  });

  for (const how of ['foreign-key', 'wrong-aud'] as const)
    it(`refuses an ID token ${how === 'foreign-key' ? 'signed by a key not in the IdP JWKS' : 'for another audience'}: no session, fails closed`, async () => {
      f.idps.acme.tamperPasswordGrant(how);
      try {
        const before = grants();
        const r = await new Client(f.url, annDevice).passwordLogin('ann@acme.test', ANN_PW);
        expect(grants()).toBe(before + 1);
        expect(r.body.code).toBe('SERVICE_UNAVAILABLE');
        expect(r.body.session).toBeUndefined();
      } finally {
        f.idps.acme.tamperPasswordGrant(null);
      }
      const audit = await f.t.db.query<{ reason: string }>("SELECT reason FROM audit_events WHERE type = 'federation.failed' ORDER BY seq DESC LIMIT 1");
      expect(audit.rows[0].reason).toBe('IDP_RESPONSE_INVALID');
    });

  it('risk still applies: a right IdP password from far away on a new device is stepped up (denied here: no local factor)', async () => {
    const before = grants();
    const r = await login('ann-risky', 'ann@acme.test', ANN_PW, IP.falkenstein);
    expect(grants()).toBe(before + 1);
    expect(r.body).toMatchObject({ code: 'LOGIN_DENIED', reason: 'MFA_REQUIRED_NO_FACTOR' });
    expect(r.body.flow.risk.reasons).toEqual(expect.arrayContaining(['IMPOSSIBLE_TRAVEL', 'NEW_DEVICE']));
    expect(r.body.session).toBeUndefined();
  });

  it('turned off by an admin, at once: the organisation is sent to its IdP again and a password is checked locally', async () => {
    const off = await f.admin.req('PATCH', `/api/idps/${acmeId}`, { settings: { upstreamPassword: false } });
    expect(off.status).toBe(200);
    try {
      expect((await client('off-hrd').post('/auth/login', { identifier: 'ann@acme.test' })).body.step).toBe('redirect');
      const before = grants();
      const r = await login('off-pw', 'ann@acme.test', ANN_PW);
      expect(r.body.code).toBe('INVALID_CREDENTIALS'); // Ann has no local password
      expect(grants()).toBe(before);
    } finally {
      expect((await f.admin.req('PATCH', `/api/idps/${acmeId}`, { settings: { upstreamPassword: true } })).status).toBe(200);
    }
    expect((await client('on-hrd').post('/auth/login', { identifier: 'ann@acme.test' })).body.step).toBe('password');
  });

  it('keeps nothing of any password: not in a log line, the audit trail or any table', async () => {
    const secrets = [ANN_PW, BOB_PW, WRONG, 'definitely-wrong-1', 'definitely-wrong-2'];
    expect(raw.length).toBeGreaterThan(0);
    for (const s of secrets) expect(raw).not.toContain(s);
    const { rows: tables } = await f.t.db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    );
    expect(tables.length).toBeGreaterThan(10);
    let dumped = '';
    for (const { table_name } of tables) dumped += (await f.t.db.query<{ t: string }>(`SELECT t::text AS t FROM "${table_name}" t`)).rows.map((r) => r.t).join('\n');
    expect(dumped).toContain('ann@acme.test');
    for (const s of secrets) expect(dumped).not.toContain(s);
  });
});
