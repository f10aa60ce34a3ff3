import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, finishJson, idpRoundTrip, startFederation, type FederationRig } from '../helpers/federation.ts';

/**
 * Issue 10: sign-in at a real OpenID Provider (oidc-provider on loopback) end to end over HTTP —
 * start, the IdP's own login and consent pages, callback, session, amr, roles from groups; a group
 * removed at the IdP removes the role at the next login while a manual role stays.
 */
describe('OIDC login end to end', () => {
  let f: FederationRig;
  let providerId = '';

  beforeAll(async () => {
    f = await startFederation();
    f.accounts.ann = { password: 'ann-at-the-idp', email: 'Ann@Acme.test', emailVerified: true, name: 'Ann', groups: ['pathologists', 'staff'] };
    providerId = (await f.addProvider('acme')).id;
    const m = await f.admin.post(`/api/idps/${providerId}/mappings`, { group: 'pathologists', role: 'PATHOLOGIST' });
    expect(m.status).toBe(201);
  });
  afterAll(async () => f?.close());

  it('redirects to the IdP with PKCE S256, state and nonce, and lands signed in with amr fed and mapped roles', async () => {
    const b = browser('ann');
    const { flow, callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    expect(flow).toMatchObject({ type: 'login', step: 'redirect', state: 'awaitingIdp' });
    const auth = new URL(flow.redirect.url);
    expect(auth.origin).toBe(f.idps.acme.issuer);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('state')).toMatch(/^[\w-]{32,}$/);
    expect(auth.searchParams.get('nonce')).toMatch(/^[\w-]{32,}$/);
    expect(auth.searchParams.get('redirect_uri')).toBe(`${f.url}/auth/idp/acme/callback`);
    // RFC 9207: the IdP names itself in the response.
    expect(new URL(callback).searchParams.get('iss')).toBe(f.idps.acme.issuer);

    const landed = await b.fetch(callback);
    expect(landed.status).toBe(303);
    expect(landed.location).toBe(`${f.url}/auth/me`);
    expect(b.cookie(f.url, 'threshold_session')).toBeTruthy();
    const me = await b.fetch(`${f.url}/auth/me`);
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ user: { email: 'ann@acme.test', displayName: 'Ann' }, roles: ['PATHOLOGIST'], session: { amr: ['fed'], acr: 'urn:threshold:acr:aal1' } });

    const { rows } = await f.t.db.query<{ type: string; reason: string }>(
      "SELECT type, reason FROM audit_events WHERE type IN ('user.created', 'federation.linked', 'user.roles_changed', 'login.succeeded') ORDER BY seq",
    );
    expect(rows.filter((r) => r.type !== 'login.succeeded' || r.reason === 'fed')).toEqual(
      expect.arrayContaining([
        { type: 'user.created', reason: 'JIT' },
        { type: 'federation.linked', reason: 'JIT' },
        { type: 'user.roles_changed', reason: 'IDP_MAPPING' },
        { type: 'login.succeeded', reason: 'fed' },
      ]),
    );
    const link = await f.t.db.query('SELECT issuer, subject, auth_protocol, mfa_verified, last_login_at FROM external_identities');
    expect(link.rows).toEqual([expect.objectContaining({ issuer: f.idps.acme.issuer, subject: 'ann', auth_protocol: 'oidc', mfa_verified: false })]);
  });

  it('answers an API client with the flow, session and tokens (JSON)', async () => {
    const b = browser('ann-api');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp', { returnTokens: true });
    const r = await finishJson(b, callback);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ step: 'done', session: { amr: ['fed'] }, tokens: { token_type: 'Bearer' } });
  });

  it('re-evaluates mapped roles at every login: a group gone at the IdP removes its role, a manual role stays', async () => {
    const { rows } = await f.t.db.query<{ id: string }>("SELECT id FROM identities WHERE email = 'ann@acme.test'");
    const annId = rows[0].id;
    await f.t.db.query("INSERT INTO user_roles (identity_id, role) VALUES ($1, 'TECHNICIAN')", [annId]);
    f.accounts.ann.groups = ['staff'];
    const b = browser('ann-2');
    const { callback } = await idpRoundTrip(b, f.url, 'acme', 'ann', 'ann-at-the-idp');
    expect((await b.fetch(callback)).status).toBe(303);
    const me = await b.fetch(`${f.url}/auth/me`);
    expect(me.json.roles).toEqual(['TECHNICIAN']);
    const changed = await f.t.db.query("SELECT subject, data FROM audit_events WHERE type = 'user.roles_changed' ORDER BY seq");
    expect(changed.rows).toEqual([
      { subject: annId, data: { provider: 'acme', granted: ['PATHOLOGIST'], revoked: [], groups: ['pathologists', 'staff'] } },
      { subject: annId, data: { provider: 'acme', granted: [], revoked: ['PATHOLOGIST'], groups: ['staff'] } },
    ]);

    // Back in the group: the role returns at the next login.
    f.accounts.ann.groups = ['pathologists'];
    const b2 = browser('ann-3');
    expect((await b2.fetch((await idpRoundTrip(b2, f.url, 'acme', 'ann', 'ann-at-the-idp')).callback)).status).toBe(303);
    expect((await b2.fetch(`${f.url}/auth/me`)).json.roles).toEqual(['PATHOLOGIST', 'TECHNICIAN']);
  });
});
