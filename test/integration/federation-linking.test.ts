import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, IP, oathtool, enrolTotp } from '../helpers/server.ts';
import { browser, finishJson, idpRoundTrip, startFederation, type FederationRig } from '../helpers/federation.ts';

/**
 * Issue 10: who an IdP login becomes (existing link, JIT, verified-email link only when allowed,
 * otherwise a refusal that says nothing about accounts), home-realm discovery, upstream MFA
 * (`fed` vs `fed mfa`), and risk after an IdP login (a new country steps up to a local factor).
 */
describe('federated identities, discovery, amr and risk', () => {
  let f: FederationRig;
  let acmeId = '';
  // Dora's home: London, on a network of her own (IP velocity counts accounts per address).
  const DORA_HOME = '92.40.1.1';
  let doraHome: ReturnType<typeof browser>;
  const patch = (body: Record<string, unknown>) => f.admin.req('PATCH', `/api/idps/${acmeId}`, body);
  const start = (b: ReturnType<typeof browser>, body: Record<string, unknown>) =>
    b.fetch(`${f.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    f = await startFederation();
    Object.assign(f.accounts, {
      bob: { password: 'bob-idp', email: 'bob@acme.test', emailVerified: true, groups: [] },
      carol: { password: 'carol-idp', email: 'carol@acme.test', emailVerified: false, groups: [] },
      dave: { password: 'dave-idp', email: 'dave@elsewhere.test', emailVerified: true, groups: [] },
      dora: { password: 'dora-idp', email: 'dora@acme.test', emailVerified: true, groups: ['pathologists'], amr: ['pwd', 'otp', 'mfa'] },
      ghost: { password: 'ghost-idp', email: 'ghost@acme.test', emailVerified: true, groups: [] },
    });
    acmeId = (await f.addProvider('acme', { jitProvisioning: false })).id;
    await f.admin.post(`/api/idps/${acmeId}/mappings`, { group: 'pathologists', role: 'PATHOLOGIST' });
    for (const email of ['bob@acme.test', 'carol@acme.test']) await f.admin.post('/api/users', { email, password: 'a-local-password-1', roles: [] });
  });
  afterAll(async () => f?.close());

  it('refuses an unlinked person the same way whether or not a local account has their email', async () => {
    const codes: unknown[] = [];
    for (const who of ['bob', 'ghost']) {
      const b = browser(`refused-${who}`);
      const r = await finishJson(b, (await idpRoundTrip(b, f.url, 'acme', who, `${who}-idp`)).callback);
      codes.push([r.status, r.json.code, r.json.title, r.json.flow.step]);
      expect(b.cookie(f.url, 'threshold_session')).toBeUndefined();
    }
    expect(codes[0]).toEqual([403, 'FEDERATION_REFUSED', expect.any(String), 'denied']);
    expect(codes[1]).toEqual(codes[0]);
    const refused = await f.t.db.query("SELECT reason FROM audit_events WHERE type = 'federation.refused'");
    expect(refused.rows.map((r) => r.reason)).toEqual(['NO_LINKED_ACCOUNT', 'NO_LINKED_ACCOUNT']);
    expect((await f.t.db.query('SELECT 1 FROM external_identities')).rowCount).toBe(0);
  });

  it('links to the existing account by email only when the IdP says verified and the admin allows it, audited', async () => {
    await patch({ linkByVerifiedEmail: true });
    const unverified = browser('carol');
    const r1 = await finishJson(unverified, (await idpRoundTrip(unverified, f.url, 'acme', 'carol', 'carol-idp')).callback);
    expect(r1.json.code).toBe('FEDERATION_REFUSED');

    const b = browser('bob');
    const r2 = await finishJson(b, (await idpRoundTrip(b, f.url, 'acme', 'bob', 'bob-idp')).callback);
    expect(r2.status).toBe(200);
    expect(r2.json.step).toBe('done');
    const me = await b.fetch(`${f.url}/auth/me`);
    const local = (await f.admin.get('/api/users/' + me.json.user.id)).body;
    expect(local.email).toBe('bob@acme.test');
    const linked = await f.t.db.query("SELECT subject, reason FROM audit_events WHERE type = 'federation.linked'");
    expect(linked.rows).toEqual([{ subject: me.json.user.id, reason: 'VERIFIED_EMAIL' }]);
    await patch({ linkByVerifiedEmail: false });
    // Once linked, the link is used: the setting only governs new links.
    const again = browser('bob-2');
    expect((await finishJson(again, (await idpRoundTrip(again, f.url, 'acme', 'bob', 'bob-idp')).callback)).json.step).toBe('done');
  });

  it("refuses an email domain outside the provider's allowed domains", async () => {
    await patch({ jitProvisioning: true, allowedEmailDomains: ['acme.test'] });
    const b = browser('dave');
    const r = await finishJson(b, (await idpRoundTrip(b, f.url, 'acme', 'dave', 'dave-idp')).callback);
    expect(r.json.code).toBe('FEDERATION_REFUSED');
    const last = await f.t.db.query("SELECT reason, data FROM audit_events WHERE type = 'federation.refused' ORDER BY seq DESC LIMIT 1");
    expect(last.rows[0]).toMatchObject({ reason: 'DOMAIN_NOT_ALLOWED', data: { emailDomain: 'elsewhere.test' } });
  });

  it('counts the IdP\'s MFA only when the provider is trusted for it: amr fed, then fed mfa (upstream values recorded)', async () => {
    await patch({ jitProvisioning: true, allowedEmailDomains: [] });
    const b = (doraHome = browser('dora-1', DORA_HOME));
    const r = await finishJson(b, (await idpRoundTrip(b, f.url, 'acme', 'dora', 'dora-idp')).callback);
    expect(r.json).toMatchObject({ step: 'done', session: { amr: ['fed'], acr: 'urn:threshold:acr:aal1' } });
    const link = await f.t.db.query("SELECT mfa_verified, upstream_amr FROM external_identities WHERE subject = 'dora'");
    expect(link.rows[0]).toEqual({ mfa_verified: true, upstream_amr: ['pwd', 'otp', 'mfa'] });
    expect((await b.fetch(`${f.url}/auth/authorize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ permission: 'WRITE_BACK_EPIC' }) })).json.code).toBe('STEP_UP_REQUIRED');

    await patch({ trustUpstreamMfa: true });
    const b2 = browser('dora-2', DORA_HOME);
    const r2 = await finishJson(b2, (await idpRoundTrip(b2, f.url, 'acme', 'dora', 'dora-idp')).callback);
    expect(r2.json).toMatchObject({ step: 'done', session: { amr: ['fed', 'mfa'], acr: 'urn:threshold:acr:aal2' } });
    const ok = await b2.fetch(`${f.url}/auth/authorize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ permission: 'WRITE_BACK_EPIC' }) });
    expect(ok.json).toEqual({ allow: true });
    const succeeded = await f.t.db.query("SELECT data FROM audit_events WHERE type = 'login.succeeded' ORDER BY seq DESC LIMIT 1");
    expect(succeeded.rows[0].data).toMatchObject({ idp: 'acme', upstreamMfa: true, amr: ['fed', 'mfa'] });

    // An IdP that says nothing about MFA gives nothing, trusted or not.
    f.accounts.dora.amr = ['pwd'];
    const b3 = browser('dora-3', DORA_HOME);
    expect((await finishJson(b3, (await idpRoundTrip(b3, f.url, 'acme', 'dora', 'dora-idp')).callback)).json.session.amr).toEqual(['fed']);
    await patch({ trustUpstreamMfa: false });
  });

  it('steps up to a local factor after an IdP login from a new country, unless the trusted IdP proved MFA', async () => {
    // Dora signed in from London before; she enrols TOTP here.
    const c = new Client(f.url, { 'x-forwarded-for': DORA_HOME, 'x-device-id': doraHome.headers['x-device-id'] });
    c.cookies.set('threshold_session', doraHome.cookie(f.url, 'threshold_session')!);
    const secret = await enrolTotp(c, f.t);

    const abroad = browser('dora-sydney', IP.sydney);
    const r = await finishJson(abroad, (await idpRoundTrip(abroad, f.url, 'acme', 'dora', 'dora-idp')).callback);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ step: 'choose_method', methods: expect.arrayContaining(['totp']) });
    expect(r.json.risk.reasons).toEqual(expect.arrayContaining(['NEW_COUNTRY']));
    expect(abroad.cookie(f.url, 'threshold_session')).toBeUndefined();
    f.t.clock.advance(30_000); // the enrolment used this step's code
    const post = (body: unknown) => abroad.fetch(`${f.url}/auth/login/${r.json.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post({ type: 'choose', method: 'totp' })).json.step).toBe('totp');
    const done = await abroad.fetch(`${f.url}/auth/login/${r.json.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'totp', code: oathtool(secret, f.t.clock.now()) }) });
    expect(done.json).toMatchObject({ step: 'done', session: { amr: ['fed', 'otp', 'mfa'] } });

    // A browser gets sent to the landing page with the flow to continue.
    const abroad2 = browser('dora-germany', IP.falkenstein);
    const landed = await abroad2.fetch((await idpRoundTrip(abroad2, f.url, 'acme', 'dora', 'dora-idp')).callback);
    expect(landed.status).toBe(303);
    expect(landed.location).toMatch(new RegExp(`^${f.url}/auth/me\\?flow=flw_`));

    await patch({ trustUpstreamMfa: true });
    f.accounts.dora.amr = ['pwd', 'mfa'];
    const abroad3 = browser('dora-us', IP.mountainView);
    const r3 = await finishJson(abroad3, (await idpRoundTrip(abroad3, f.url, 'acme', 'dora', 'dora-idp')).callback);
    expect(r3.json).toMatchObject({ step: 'done', session: { amr: ['fed', 'mfa'] } });
    expect(r3.json.risk.reasons).toEqual(expect.arrayContaining(['NEW_COUNTRY']));
  });

  it('sends an identifier of an IdP-backed organisation to its IdP; any other identifier gets the same password step', async () => {
    const o = await f.admin.post('/api/organisations', { slug: 'hospital', name: 'Hospital', provider: 'acme', domains: ['hospital.org'] });
    expect(o.status).toBe(201);
    const b = browser('hrd');
    const r = await start(b, { identifier: 'ann@Hospital.org' });
    expect(r.status).toBe(201);
    expect(r.json.step).toBe('redirect');
    const url = new URL(r.json.redirect.url);
    expect(url.origin).toBe(f.idps.acme.issuer);
    expect(url.searchParams.get('login_hint')).toBe('ann@Hospital.org');

    const shape = (x: { status: number; json: Record<string, unknown> }) => ({ status: x.status, keys: Object.keys(x.json).sort(), step: x.json.step, state: x.json.state, messages: x.json.messages });
    const answers = [];
    for (const identifier of [ADMIN.email, 'nobody@example.test', 'bob@acme.test', 'not-an-email']) answers.push(shape(await start(browser(`hrd-${identifier}`), { identifier })));
    expect(answers[0]).toMatchObject({ status: 201, step: 'password' });
    for (const a of answers) expect(a).toEqual(answers[0]);
  });
});
