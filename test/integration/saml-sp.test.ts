import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { parseIdpMetadata } from '../../src/authn/methods/saml/metadata.ts';
import { SamlRejection } from '../../src/authn/methods/saml/rejection.ts';
import type { SamlRejectionReason } from '../../src/authn/methods/saml/rejection.ts';
import { validateSamlResponse } from '../../src/authn/methods/saml/response.ts';
import { samlSettingsSchema } from '../../src/authn/methods/saml/settings.ts';
import type { SamlSettings } from '../../src/authn/methods/saml/settings.ts';
import { buildAuthnRequest, spMetadataXml } from '../../src/authn/methods/saml/sp.ts';
import { createSamlStore } from '../../src/authn/methods/saml/store.ts';
import type { SamlStore } from '../../src/authn/methods/saml/store.ts';
import { createTestDb } from '../helpers/db.ts';
import { TestSamlIdp, makeKeyPair } from '../helpers/saml-idp.ts';
import type { ResponseOptions } from '../helpers/saml-idp.ts';
import { moveSignatureToEvil, moveSignedIntoExtensions, replaceText, wrapSecondAssertion, wrapSignedInAdvice } from '../helpers/saml-tamper.ts';

/** The SAML SP core against a real signing IdP (xml-crypto) and real Postgres. */
const SP = 'https://threshold.test/saml/hospital';
const ACS = 'https://threshold.test/auth/saml/hospital/acs';
const PROVIDER = '00000000-0000-4000-8000-000000000010';
const ATTRS = { email: 'mail', name: 'displayName', groups: 'memberOf' };

let t: Awaited<ReturnType<typeof createTestDb>>;
let db: Db;
let store: SamlStore;
const clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
const idp = new TestSamlIdp(clock);
let settings: SamlSettings;

beforeAll(async () => {
  t = await createTestDb();
  db = t.db;
  store = createSamlStore(db, clock);
  const md = parseIdpMetadata(idp.metadataXml('https://idp.hospital.test/sso'));
  settings = samlSettingsSchema.parse({ ...md, spEntityId: SP, acsUrl: ACS, attributes: ATTRS });
}, 60_000);
afterAll(async () => t?.drop());

let n = 0;
/** A recorded AuthnRequest, as the login start records it. */
async function issue(providerId = PROVIDER, ttlSeconds = 600): Promise<{ id: string; flowId: string }> {
  const { id, url } = await buildAuthnRequest(settings);
  expect(TestSamlIdp.readRequest(url).id).toBe(id);
  const flowId = `flw_test${++n}`;
  await store.recordRequest({ id, providerId, flowId, ttlSeconds });
  return { id, flowId };
}

const good = (id: string | null, o: Partial<ResponseOptions> = {}): string =>
  idp.responseXml({
    inResponseTo: id,
    acsUrl: ACS,
    audience: SP,
    nameId: 'ann@hospital.org',
    attributes: { mail: ['Ann@Hospital.org'], displayName: ['Ann Example'], memberOf: ['pathologists', 'staff', 'staff'] },
    ...o,
  });

const validate = (xml: string, s: SamlSettings = settings) =>
  validateSamlResponse({ store, clock }, { providerId: PROVIDER, settings: s, samlResponse: TestSamlIdp.encode(xml) });

async function refused(xml: string, reason: SamlRejectionReason, s?: SamlSettings): Promise<void> {
  const e = await validate(xml, s).then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, `expected ${reason}`).toBeInstanceOf(SamlRejection);
  expect((e as SamlRejection).reason).toBe(reason);
}

beforeEach(() => clock.set(Date.UTC(2026, 5, 1, 9)));

describe('SAML SP core', () => {
  it('reads IdP metadata: entityID, the HTTP-Redirect SSO URL and only the signing certificates', () => {
    const md = parseIdpMetadata(idp.metadataXml('https://idp.hospital.test/sso'));
    expect(md).toEqual({ idpEntityId: idp.entityId, ssoUrl: 'https://idp.hospital.test/sso', idpCertificates: [idp.key.certB64] });
    expect(() => parseIdpMetadata('<!DOCTYPE x [<!ENTITY a "b">]><x/>')).toThrow(/DOCTYPE/);
    expect(() => parseIdpMetadata('<x xmlns="urn:other"/>')).toThrow(/not SAML 2.0 metadata/);
  });

  it('publishes SP metadata with our entityID, HTTP-POST ACS and WantAssertionsSigned', () => {
    const xml = spMetadataXml(settings);
    expect(xml).toContain(`entityID="${SP}"`);
    expect(xml).toContain(`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${ACS}"`);
    expect(xml).toContain('WantAssertionsSigned="true"');
  });

  it('builds an HTTP-Redirect AuthnRequest to the IdP naming our ACS and entityID', async () => {
    const { id, url } = await buildAuthnRequest(settings, 'rs');
    const req = TestSamlIdp.readRequest(url);
    expect(url.startsWith('https://idp.hospital.test/sso?SAMLRequest=')).toBe(true);
    expect(req).toMatchObject({ id, acsUrl: ACS, issuer: SP, relayState: 'rs' });
    expect(id).toMatch(/^_[0-9a-f]{40}$/);
  });

  it('accepts a signed response to our request and normalises it', async () => {
    const { id, flowId } = await issue();
    const r = await validate(good(id, { authnContextClassRef: 'https://refeds.org/profile/mfa' }));
    expect(r.flowId).toBe(flowId);
    expect(r.requestId).toBe(id);
    expect(r.assertion).toEqual({
      providerId: PROVIDER,
      protocol: 'saml',
      issuer: idp.entityId,
      subject: 'ann@hospital.org',
      email: 'ann@hospital.org',
      emailVerified: false,
      name: 'Ann Example',
      groups: ['pathologists', 'staff'],
      upstreamAmr: ['mfa'],
      upstreamAcr: 'https://refeds.org/profile/mfa',
      authTime: Math.floor(clock.now() / 1000),
    });
  });

  it('accepts a response signed on both levels, and one signed by a second (rotated) certificate', async () => {
    await validate(good((await issue()).id, { sign: 'both' }));
    const next = makeKeyPair('rotated');
    const rotated = samlSettingsSchema.parse({ ...settings, idpCertificates: [idp.key.certB64, next.certB64] });
    const withNewKey = new TestSamlIdp(clock, idp.entityId);
    Object.assign(withNewKey, { key: next });
    const r = await validate(withNewKey.responseXml({ inResponseTo: (await issue()).id, acsUrl: ACS, audience: SP, nameId: 'bob@hospital.org' }), rotated);
    expect(r.assertion.subject).toBe('bob@hospital.org');
  });

  it('does not map AuthnContextClassRef to amr when the IdP is configured not to', async () => {
    const s = samlSettingsSchema.parse({ ...settings, mapAuthnContext: false });
    const r = await validate(good((await issue()).id, { authnContextClassRef: 'https://refeds.org/profile/mfa' }), s);
    expect(r.assertion.upstreamAmr).toEqual([]);
    expect(r.assertion.upstreamAcr).toBe('https://refeds.org/profile/mfa');
  });
});

describe('SAML SP refuses every tampered response', () => {
  const corpus: [string, (id: string) => string, SamlRejectionReason][] = [
    ['XSW: a second, unsigned assertion', (id) => wrapSecondAssertion(good(id), 'admin@hospital.org'), 'ASSERTION_COUNT'],
    ['XSW: signed assertion moved into Extensions', (id) => moveSignedIntoExtensions(good(id), 'admin@hospital.org'), 'ASSERTION_COUNT'],
    ['XSW: signed assertion hidden in the Advice of an unsigned one', (id) => wrapSignedInAdvice(good(id), 'admin@hospital.org'), 'ASSERTION_COUNT'],
    ['XSW: signature moved onto an unsigned assertion', (id) => moveSignatureToEvil(good(id), 'admin@hospital.org'), 'SIGNATURE_INVALID'],
    [
      'comment injected into the NameID',
      (id) => replaceText(good(id, { nameId: 'ann@hospital.org.evil.com' }), 'ann@hospital.org.evil.com<', 'ann@hospital.org<!---->.evil.com<'),
      'RESPONSE_MALFORMED',
    ],
    ['unsigned assertion', (id) => good(id, { sign: 'none' }), 'ASSERTION_UNSIGNED'],
    ['signed response around an unsigned assertion', (id) => good(id, { sign: 'response' }), 'ASSERTION_UNSIGNED'],
    ['signed with a key we do not trust (its certificate in KeyInfo)', (id) => good(id, { untrustedKey: true }), 'SIGNATURE_INVALID'],
    ['altered after signing', (id) => replaceText(good(id), 'pathologists', 'administrators'), 'SIGNATURE_INVALID'],
    ['wrong audience', (id) => good(id, { audience: 'https://other-sp.test' }), 'AUDIENCE_MISMATCH'],
    ['wrong recipient', (id) => good(id, { recipient: 'https://other-sp.test/acs' }), 'RECIPIENT_MISMATCH'],
    ['wrong destination', (id) => good(id, { destination: 'https://other-sp.test/acs' }), 'DESTINATION_MISMATCH'],
    ['no destination', (id) => good(id, { destination: null }), 'DESTINATION_MISMATCH'],
    ['wrong issuer', (id) => good(id, { issuer: 'https://idp.evil.test' }), 'ISSUER_MISMATCH'],
    ['expired beyond the skew', (id) => good(id, { notBeforeOffsetMs: -10 * 60_000, notOnOrAfterOffsetMs: -61_000 }), 'EXPIRED'],
    ['not yet valid beyond the skew', (id) => good(id, { notBeforeOffsetMs: 61_000 }), 'NOT_YET_VALID'],
    ['unsolicited (no InResponseTo)', () => good(null), 'UNSOLICITED'],
    ['Response and assertion answer different requests', (id) => good(id, { responseInResponseTo: '_another' }), 'IN_RESPONSE_TO_MISMATCH'],
    ['InResponseTo we never issued', () => good('_never_issued'), 'REQUEST_UNKNOWN'],
    ['no bearer confirmation', (id) => good(id, { noBearer: true }), 'NO_BEARER_CONFIRMATION'],
    ['IdP error status', (id) => good(id, { status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }), 'IDP_STATUS'],
    ['a DOCTYPE (entity expansion)', (id) => good(id).replace('<samlp:Response', '<!DOCTYPE r [<!ENTITY x "y">]><samlp:Response'), 'RESPONSE_MALFORMED'],
  ];

  for (const [name, make, reason] of corpus) {
    it(`${name} → ${reason}, and the genuine response to the same request still works`, async () => {
      const { id, flowId } = await issue();
      await refused(make(id), reason);
      expect((await validate(good(id))).flowId).toBe(flowId);
    });
  }

  it('not base64 → RESPONSE_MALFORMED', async () => {
    const e = await validateSamlResponse({ store, clock }, { providerId: PROVIDER, settings, samlResponse: '<xml/>' }).catch((x: unknown) => x);
    expect((e as SamlRejection).reason).toBe('RESPONSE_MALFORMED');
  });

  it('accepts drift within the bounded skew on both sides', async () => {
    await validate(good((await issue()).id, { notBeforeOffsetMs: 30_000 }));
    await validate(good((await issue()).id, { notBeforeOffsetMs: -10 * 60_000, notOnOrAfterOffsetMs: -30_000 }));
  });

  it('refuses a replayed response: the request is answered once', async () => {
    const { id } = await issue();
    const xml = good(id);
    await validate(xml);
    await refused(xml, 'REPLAYED');
  });

  it('refuses a response to a request sent to another IdP', async () => {
    const { id } = await issue('00000000-0000-4000-8000-0000000000ff');
    await refused(good(id), 'REQUEST_UNKNOWN');
  });

  it('refuses a response to a request whose lifetime passed', async () => {
    const { id } = await issue(PROVIDER, 600);
    clock.advance(601_000);
    await refused(good(id), 'REQUEST_EXPIRED');
  });

  it('the skew setting is bounded at 180 s', () => {
    expect(samlSettingsSchema.safeParse({ ...settings, maxClockSkewSeconds: 181 }).success).toBe(false);
    expect(samlSettingsSchema.safeParse({ ...settings, ssoUrl: 'http://idp.example.com/sso' }).success).toBe(false);
  });

  it('50 parallel posts of one response: exactly one is accepted', async () => {
    const { id, flowId } = await issue();
    const xml = good(id);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => validate(xml)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    expect((ok[0] as PromiseFulfilledResult<{ flowId: string }>).value.flowId).toBe(flowId);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as SamlRejection).reason).toBe('REPLAYED');
  }, 60_000);
});

describe('SAML settings from an admin', () => {
  it('fills the IdP side from metadata (over older fields: a refresh rotates certificates); production refuses plain http', async () => {
    const { storeSamlSettings, SamlSettingsInputSchema } = await import('../../src/authn/methods/saml/protocol.ts');
    const input = SamlSettingsInputSchema.parse({ metadataXml: idp.metadataXml('http://127.0.0.1:9/sso'), spEntityId: SP, acsUrl: ACS, maxClockSkewSeconds: 30 });
    const s = storeSamlSettings(input, { production: false });
    expect(s).toMatchObject({ idpEntityId: idp.entityId, ssoUrl: 'http://127.0.0.1:9/sso', idpCertificates: [idp.key.certB64], maxClockSkewSeconds: 30, nameIdFormat: 'unspecified' });
    const stale = { ...input, idpEntityId: 'https://old', idpCertificates: [idp.untrusted.certB64] };
    expect(storeSamlSettings(stale, { production: false })).toMatchObject({ idpEntityId: idp.entityId, idpCertificates: [idp.key.certB64] });
    const { metadataXml: _m, ...byHand } = input;
    expect(storeSamlSettings({ ...byHand, idpEntityId: 'https://other', ssoUrl: 'https://idp/sso', idpCertificates: [idp.key.certB64] }, { production: false }).idpEntityId).toBe('https://other');
    const detail = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code?: string }).code}: ${(e as { detail?: string }).detail}`;
      }
      return 'accepted';
    };
    expect(detail(() => storeSamlSettings(input, { production: true }))).toMatch(/^VALIDATION_FAILED: .*https in production/);
    expect(detail(() => storeSamlSettings(SamlSettingsInputSchema.parse({ metadataXml: '<nope/>', spEntityId: SP, acsUrl: ACS }), { production: false }))).toMatch(/^VALIDATION_FAILED: settings.metadataXml/);
    expect(detail(() => storeSamlSettings(SamlSettingsInputSchema.parse({ spEntityId: SP, acsUrl: ACS }), { production: false }))).toMatch(/^VALIDATION_FAILED: settings.idpEntityId/);
  });

  it('fetches metadata only on an explicit call, bounded in size, without following redirects', async () => {
    const { fetchIdpMetadata } = await import('../../src/authn/methods/saml/metadata.ts');
    const url = await idp.listen();
    try {
      const { metadata } = await fetchIdpMetadata(`${url}/metadata`);
      expect(metadata.idpEntityId).toBe(idp.entityId);
      expect(metadata.ssoUrl).toBe(`${url}/sso`);
      await expect(fetchIdpMetadata(`${url}/metadata`, { maxBytes: 100 })).rejects.toThrow(/too large/);
      await expect(fetchIdpMetadata(`${url}/nothing`)).rejects.toThrow(/answered 404/);
    } finally {
      await idp.close();
    }
  });
});

describe('SAML login start', () => {
  it('records the AuthnRequest for the flow with the flow’s remaining lifetime, and purges expired ones', async () => {
    const { createSamlStarter } = await import('../../src/authn/methods/saml/start.ts');
    const start = createSamlStarter({ store, clock, purgeEvery: 1 });
    const url = await start({ id: PROVIDER, slug: 'hospital', settings }, { flowId: 'flw_started', expiresAt: clock.now() + 120_000 });
    const { id } = TestSamlIdp.readRequest(url);
    const { rows } = await db.query<{ flow_id: string; expires_at: Date }>(`SELECT flow_id, expires_at FROM saml_requests WHERE id = $1`, [id]);
    expect(rows[0].flow_id).toBe('flw_started');
    expect(new Date(rows[0].expires_at).getTime()).toBe(clock.now() + 120_000);
    clock.advance(121_000);
    await refused(good(id), 'REQUEST_EXPIRED');
    await start({ id: PROVIDER, slug: 'hospital', settings }, { flowId: 'flw_next', expiresAt: clock.now() + 120_000 });
    expect((await db.query(`SELECT 1 FROM saml_requests WHERE id = $1`, [id])).rowCount).toBe(0);
    await expect(start({ id: PROVIDER, slug: 'hospital', settings }, { flowId: 'flw_late', expiresAt: clock.now() })).rejects.toThrow(/expired/);
  });
});
