import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { browser, finishJson, idpRoundTrip, startFederation, type FederationRig } from '../helpers/federation.ts';
import { signInAtIdp } from '../helpers/oidc-idp.ts';
import { startOidcIdp } from '../helpers/oidc-idp.ts';

/**
 * Issue 10, adversarial: every way an IdP callback can be wrong ends in a clear problem, audited,
 * and never a session — tampered or replayed state, a code from another flow (PKCE), a code from
 * another IdP (RFC 9207 mix-up, two real providers), a stripped or forged `iss`, a nonce that does
 * not match, the IdP refusing (access_denied), the IdP down, an expired flow, another browser.
 */
describe('OIDC callback refusals', () => {
  let f: FederationRig;
  const noSession = (b: ReturnType<typeof browser>) => expect(b.cookie(f.url, 'threshold_session')).toBeUndefined();
  const failures = async () =>
    (await f.t.db.query<{ reason: string; data: { what: string } }>("SELECT reason, data FROM audit_events WHERE type = 'federation.failed' ORDER BY seq")).rows.map(
      (r) => `${r.reason}:${r.data.what}`,
    );
  const sessions = async () => Number((await f.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions')).rows[0].n);

  beforeAll(async () => {
    f = await startFederation({ slugs: ['acme', 'other'] });
    f.accounts.eve = { password: 'eve-at-the-idp', email: 'eve@acme.test', emailVerified: true, groups: [] };
    f.accounts.ann = { password: 'ann-at-the-idp', email: 'ann@acme.test', emailVerified: true, groups: [] };
    await f.addProvider('acme');
    await f.addProvider('other');
  });
  afterAll(async () => f?.close());

  it('refuses a missing, tampered or unknown state', async () => {
    const b = browser('s1');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    const before = await sessions();
    const tampered = new URL(callback);
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')}x`);
    const r1 = await finishJson(b, tampered.href);
    expect(r1.status).toBe(400);
    expect(r1.json.code).toBe('IDP_RESPONSE_INVALID');
    const missing = new URL(callback);
    missing.searchParams.delete('state');
    expect((await finishJson(b, missing.href)).json.code).toBe('IDP_RESPONSE_INVALID');
    noSession(b);
    expect(await sessions()).toBe(before);
    expect(await failures()).toEqual(expect.arrayContaining(['IDP_RESPONSE_INVALID:STATE_UNKNOWN', 'IDP_RESPONSE_INVALID:STATE_MISSING']));
    // The real callback still works: a wrong guess consumed nothing.
    expect((await finishJson(b, callback)).json.step).toBe('done');
  });

  it('accepts a callback once: the replayed one is refused', async () => {
    const b = browser('s2');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    expect((await finishJson(b, callback)).json.step).toBe('done');
    const replay = await finishJson(b, callback);
    expect(replay.status).toBe(400);
    expect(replay.json.code).toBe('IDP_RESPONSE_INVALID');
    expect(await failures()).toContain('IDP_RESPONSE_INVALID:STATE_REPLAYED');
  });

  it('lets exactly one of 50 simultaneous deliveries of one callback sign in', async () => {
    const b = browser('s3');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    const before = await sessions();
    const results = await Promise.all(Array.from({ length: 50 }, () => finishJson(b, callback)));
    expect(results.filter((r) => r.status === 200 && r.json.step === 'done')).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).every((r) => ['IDP_RESPONSE_INVALID', 'FLOW_CONFLICT', 'INVALID_EVENT'].includes(r.json.code))).toBe(true);
    expect(await sessions()).toBe(before + 1);
  });

  it("refuses an attacker's code injected into a victim's flow (PKCE and nonce bind the code to its flow)", async () => {
    const attacker = browser('attacker');
    const stolen = new URL((await idpRoundTrip(attacker, f.url, 'acme', 'eve', 'eve-at-the-idp')).callback);
    const victim = browser('victim');
    const { callback } = await idpRoundTrip(victim, f.url, 'acme', 'ann', 'ann-at-the-idp');
    const injected = new URL(callback);
    injected.searchParams.set('code', stolen.searchParams.get('code')!);
    const r = await finishJson(victim, injected.href);
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('IDP_RESPONSE_INVALID');
    expect(r.json.flow).toMatchObject({ step: 'denied' });
    noSession(victim);
  });

  it('refuses a code from another IdP (mix-up): a forged or stripped iss, or the other IdP\'s callback path', async () => {
    // Flow at acme; the person is also sent through `other`, which answers with its own code and iss.
    const b = browser('mixup');
    const acme = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    const other = new URL((await idpRoundTrip(b, f.url, 'other', 'ann', 'ann-at-the-idp')).callback);
    const acmeState = new URL(acme.callback).searchParams.get('state')!;
    const mixed = new URL(acme.callback);
    mixed.searchParams.set('code', other.searchParams.get('code')!);
    mixed.searchParams.set('iss', other.searchParams.get('iss')!);
    const r1 = await finishJson(b, mixed.href);
    expect(r1.json.code).toBe('IDP_RESPONSE_INVALID');

    const b2 = browser('mixup-2');
    const acme2 = new URL((await idpRoundTrip(b2, f.url, 'acme', 'ann', 'ann-at-the-idp')).callback);
    acme2.searchParams.delete('iss');
    expect((await finishJson(b2, acme2.href)).json.code).toBe('IDP_RESPONSE_INVALID');

    // A state issued for acme presented at other's callback.
    const b3 = browser('mixup-3');
    const acme3 = new URL((await idpRoundTrip(b3, f.url, 'acme', 'ann', 'ann-at-the-idp')).callback);
    const wrongPath = new URL(`${f.url}/auth/idp/other/callback${acme3.search}`);
    expect((await finishJson(b3, wrongPath.href)).json.code).toBe('IDP_RESPONSE_INVALID');
    for (const x of [b, b2, b3]) noSession(x);
    expect(acmeState).not.toBe(other.searchParams.get('state'));
    expect(await failures()).toEqual(expect.arrayContaining(['IDP_RESPONSE_INVALID:PROVIDER_MISMATCH']));
  });

  it('refuses an ID token whose nonce is not the flow\'s', async () => {
    const b = browser('nonce');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    // As if the code had been obtained for another authorization request (another nonce).
    await f.t.db.query('UPDATE idp_login_requests SET nonce = $1 WHERE flow_id = (SELECT id FROM flows ORDER BY created_at DESC LIMIT 1)', [randomUUID()]);
    const r = await finishJson(b, callback);
    expect(r.json.code).toBe('IDP_RESPONSE_INVALID');
    noSession(b);
    expect(await failures()).toContain('IDP_RESPONSE_INVALID:OAUTH_JWT_CLAIM_COMPARISON_FAILED');
  });

  it('answers access_denied at the IdP with IDP_ERROR, audited, the flow denied', async () => {
    const b = browser('cancel');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp', { cancel: true });
    expect(new URL(callback).searchParams.get('error')).toBe('access_denied');
    const r = await finishJson(b, callback);
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ code: 'IDP_ERROR', flow: { step: 'denied' } });
    noSession(b);
    expect(await failures()).toContain('IDP_ERROR:ACCESS_DENIED');
    const denied = await f.t.db.query("SELECT reason FROM audit_events WHERE type = 'login.denied' AND reason = 'IDP_ERROR'");
    expect(denied.rowCount).toBeGreaterThan(0);
  });

  it('answers a callback from another browser as an unknown flow, and leaves the flow to its own browser', async () => {
    const b = browser('mine');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    const thief = browser('thief');
    const r = await finishJson(thief, callback);
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('FLOW_NOT_FOUND');
    noSession(thief);
    expect((await f.t.db.query("SELECT 1 FROM audit_events WHERE type = 'flow.refused' AND reason = 'OTHER_DEVICE'")).rowCount).toBeGreaterThan(0);
    expect((await finishJson(b, callback)).json.step).toBe('done');
  });

  it('answers an expired flow with FLOW_EXPIRED, audited', async () => {
    const b = browser('late');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    f.t.clock.advance((f.t.config.FLOW_TTL_SECONDS + 1) * 1000);
    try {
      const r = await finishJson(b, callback);
      expect(r.status).toBe(410);
      expect(r.json.code).toBe('FLOW_EXPIRED');
      noSession(b);
      expect(await failures()).toContain('FLOW_EXPIRED:FLOW_EXPIRED');
    } finally {
      f.t.clock.advance(-(f.t.config.FLOW_TTL_SECONDS + 1) * 1000);
    }
  });

  it('fails closed with IDP_UNAVAILABLE when the IdP is down: at the token endpoint, and at the start of a never-discovered one', async () => {
    const b = browser('down');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    f.idps.acme.setUp(false);
    try {
      const r = await finishJson(b, callback);
      expect(r.status).toBe(503);
      expect(r.json).toMatchObject({ code: 'IDP_UNAVAILABLE', flow: { step: 'denied' } });
      noSession(b);
    } finally {
      f.idps.acme.setUp(true);
    }
    // A provider whose IdP has never answered: the flow cannot even start.
    const dead = await startOidcIdp({ redirectUris: [`${f.url}/auth/idp/dead/callback`], accounts: {} });
    await f.addProvider('dead', {}, dead);
    dead.setUp(false);
    const start = await b.fetch(`${f.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'idp', provider: 'dead' }) });
    expect(start.status).toBe(503);
    expect(start.json).toMatchObject({ code: 'IDP_UNAVAILABLE', flow: { step: 'denied' } });
    await dead.close();
    expect(await failures()).toEqual(expect.arrayContaining(['IDP_UNAVAILABLE:DISCOVERY_FAILED']));
  });

  it('answers an unknown or disabled provider with IDP_NOT_FOUND before any flow exists', async () => {
    const b = browser('nf');
    const r = await b.fetch(`${f.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'idp', provider: 'nope' }) });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('IDP_NOT_FOUND');
    expect((await b.fetch(`${f.url}/auth/idp/nope/login`)).json.code).toBe('IDP_NOT_FOUND');
  });

  it('never lets a client send the server-only federated event', async () => {
    const b = browser('forge');
    const { flow } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    const forged = await b.fetch(`${f.url}/auth/login/${flow.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'federated', assertion: { providerId: randomUUID(), protocol: 'oidc', issuer: 'x', subject: 'ann', groups: [], upstreamAmr: [] } }),
    });
    expect(forged.status).toBe(400);
    expect(forged.json.code).toBe('VALIDATION_FAILED');
    noSession(b);
  });
});
