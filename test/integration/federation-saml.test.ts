import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, startFederation, type FederationRig } from '../helpers/federation.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';

/**
 * Issue 10: the SAML service provider plugged into federation end to end over HTTP — a SAML IdP
 * configured through /api/idps (its metadata), an `idp` login started by home-realm discovery,
 * the signed response posted to the ACS, the completion GET on the browser that started the flow,
 * session, amr and roles from groups, through the same resumeWithAssertion as OIDC.
 */
describe('SAML login through the federation layer', () => {
  let f: FederationRig;
  let idp: TestSamlIdp;

  beforeAll(async () => {
    f = await startFederation({ slugs: [] });
    idp = new TestSamlIdp(f.t.clock);
    const r = await f.admin.post('/api/idps', {
      slug: 'hospital',
      type: 'saml',
      displayName: 'Hospital SSO',
      jitProvisioning: true,
      settings: {
        metadataXml: idp.metadataXml('https://idp.hospital.test/sso'),
        spEntityId: `${f.url}/auth/saml/hospital/metadata`,
        acsUrl: `${f.url}/auth/saml/hospital/acs`,
        attributes: { email: 'mail', name: 'displayName', groups: 'memberOf' },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.settings).toMatchObject({ idpEntityId: idp.entityId, ssoUrl: 'https://idp.hospital.test/sso' });
    await f.admin.post(`/api/idps/${r.body.id}/mappings`, { group: 'pathology', role: 'PATHOLOGIST' });
    await f.admin.post('/api/organisations', { slug: 'hospital', name: 'Hospital', provider: 'hospital', domains: ['hospital.org'] });
  });
  afterAll(async () => f?.close());

  it('discovers the SAML IdP by domain, accepts its signed response once, and signs the browser in', async () => {
    idp.user = { nameId: 'nina@hospital.org', attributes: { mail: ['nina@hospital.org'], displayName: ['Nina'], memberOf: ['pathology'] } };
    const b = browser('nina');
    const start = await b.fetch(`${f.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identifier: 'nina@hospital.org' }) });
    expect(start.json).toMatchObject({ step: 'redirect', state: 'awaitingIdp' });
    expect(start.json.redirect.url).toMatch(/^https:\/\/idp\.hospital\.test\/sso\?SAMLRequest=/);

    const form = idp.answer(start.json.redirect.url);
    const body = new URLSearchParams({ SAMLResponse: form.SAMLResponse, ...(form.RelayState ? { RelayState: form.RelayState } : {}) });
    const acs = await b.fetch(form.acsUrl, { method: 'POST', body });
    expect(acs.status).toBe(303);
    const done = await b.fetch(new URL(acs.location!, f.url).href, { headers: { accept: 'application/json' } });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ step: 'done', session: { amr: ['fed'] } });
    const me = await b.fetch(`${f.url}/auth/me`);
    expect(me.json).toMatchObject({ user: { email: 'nina@hospital.org', displayName: 'Nina' }, roles: ['PATHOLOGIST'] });
    const link = await f.t.db.query("SELECT issuer, subject, auth_protocol FROM external_identities WHERE subject = 'nina@hospital.org'");
    expect(link.rows).toEqual([{ issuer: idp.entityId, subject: 'nina@hospital.org', auth_protocol: 'saml' }]);

    // The same response again: its request was consumed.
    const replay = await b.fetch(form.acsUrl, { method: 'POST', body });
    expect(replay.status).toBe(400);
    expect(replay.json.code).toBe('IDP_RESPONSE_INVALID');
    const failed = await f.t.db.query("SELECT reason FROM audit_events WHERE type = 'federation.failed'");
    expect(failed.rows).toEqual([{ reason: 'IDP_RESPONSE_INVALID' }]);
  });

  it('lists the SAML IdP among the providers with its sign-in link', async () => {
    const r = await browser('list').fetch(`${f.url}/auth/providers`);
    expect(r.json).toEqual([{ slug: 'hospital', name: 'Hospital SSO', type: 'saml', loginUrl: `${f.url}/auth/idp/hospital/login` }]);
    const go = await browser('go').fetch(`${f.url}/auth/idp/hospital/login`);
    expect(go.status).toBe(302);
    expect(go.location).toMatch(/^https:\/\/idp\.hospital\.test\/sso\?SAMLRequest=/);
  });
});
