import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { AppError, isAppError } from '../../src/errors.ts';
import { problem } from '../../src/http/present.ts';
import { samlRoutes, type SamlRouteDeps } from '../../src/authn/methods/saml/routes.ts';
import { samlSettingsSchema } from '../../src/authn/methods/saml/settings.ts';
import { createSamlStore, type SamlStore } from '../../src/authn/methods/saml/store.ts';
import { createSamlStarter } from '../../src/authn/methods/saml/start.ts';
import type { ExternalAssertion } from '../../src/authn/methods/saml/types.ts';
import { createTestDb } from '../helpers/db.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';
import { moveSignatureToEvil, moveSignedIntoExtensions, replaceText, wrapSecondAssertion, wrapSignedInAdvice } from '../helpers/saml-tamper.ts';

/**
 * The SAML HTTP-POST binding routes over their interface to the federation layer: what the ACS
 * accepts and refuses, the one-time handle, and what reaches `resume` (recorded here; the login
 * flow it resumes is covered end to end in the federation tests).
 */
const BASE = 'https://threshold.test';
const clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
const idp = new TestSamlIdp(clock);
const settings = samlSettingsSchema.parse({
  idpEntityId: idp.entityId,
  ssoUrl: 'https://idp.hospital.test/sso',
  idpCertificates: [idp.key.certB64],
  spEntityId: `${BASE}/auth/saml/hospital/metadata`,
  acsUrl: `${BASE}/auth/saml/hospital/acs`,
  attributes: { email: 'mail', groups: 'memberOf' },
});
const provider = { id: '00000000-0000-4000-8000-0000000000aa', slug: 'hospital', enabled: true, settings };
const other = { ...provider, id: '00000000-0000-4000-8000-0000000000bb', slug: 'other' };

let t: Awaited<ReturnType<typeof createTestDb>>;
let store: SamlStore;
let app: Hono;
const resumed: { flowId: string; assertion: ExternalAssertion; deviceId: string | null }[] = [];
const failures: { code: string; what: string; provider: string; flowId?: string }[] = [];

beforeAll(async () => {
  t = await createTestDb();
  store = createSamlStore(t.db, clock);
  const deps: SamlRouteDeps = {
    store,
    clock,
    provider: async (slug) => [provider, other].find((p) => p.slug === slug) ?? null,
    client: (c) => ({ deviceId: c.req.header('x-device-id') ?? null }),
    async fail(o) {
      failures.push({ code: o.code, what: o.what, provider: o.provider, flowId: o.flowId });
      throw new AppError('VALIDATION_FAILED', { detail: `${o.code}:${o.what}` });
    },
    async resume(c, flowId, assertion, client) {
      resumed.push({ flowId, assertion, deviceId: client.deviceId });
      return c.json({ resumed: flowId });
    },
  };
  app = new Hono();
  app.onError((err, c) => problem(c, isAppError(err) ? err : new AppError('INTERNAL', { cause: err }), 'req'));
  app.route('/auth/saml', samlRoutes(deps));
}, 60_000);
afterAll(async () => t?.drop());

async function login(flowId: string, o: Parameters<TestSamlIdp['answer']>[1] = {}) {
  const startFor = createSamlStarter({ store, clock });
  const url = await startFor(provider, { flowId, expiresAt: clock.now() + 600_000 });
  return idp.answer(url, o);
}

const postAcs = (slug: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  app.request(`/auth/saml/${slug}/acs`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });

describe('SAML routes', () => {
  it('serves SP metadata per IdP; an unknown slug is 404', async () => {
    const r = await app.request('/auth/saml/hospital/metadata');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/samlmetadata\+xml/);
    expect(await r.text()).toContain(`Location="${BASE}/auth/saml/hospital/acs"`);
    expect((await app.request('/auth/saml/nobody/metadata')).status).toBe(404);
  });

  it('ACS: a valid response → 303 to the same-site completion with a one-time handle, which resumes the flow once', async () => {
    idp.user = { nameId: 'ann@hospital.org', attributes: { mail: ['ann@hospital.org'], memberOf: ['pathologists'] } };
    const form = await login('flw_routes_1');
    const r = await postAcs('hospital', { SAMLResponse: form.SAMLResponse, RelayState: '' }, { origin: 'https://idp.hospital.test', 'sec-fetch-site': 'cross-site' });
    expect(r.status).toBe(303);
    const location = r.headers.get('location')!;
    expect(location).toMatch(/^\/auth\/saml\/hospital\/complete\?handle=[A-Za-z0-9_-]{43}$/);
    expect(r.headers.get('set-cookie')).toBeNull();

    const done = await app.request(location, { headers: { 'x-device-id': 'dev-1' } });
    expect(done.status).toBe(200);
    expect(resumed.at(-1)).toMatchObject({ flowId: 'flw_routes_1', deviceId: 'dev-1', assertion: { subject: 'ann@hospital.org', groups: ['pathologists'], protocol: 'saml' } });
    // The handle is single-use.
    const again = await app.request(location, { headers: { 'x-device-id': 'dev-1' } });
    expect(again.status).toBe(400);
    expect(failures.at(-1)).toMatchObject({ code: 'IDP_RESPONSE_INVALID', what: 'HANDLE_INVALID' });
  });

  it('ACS: the same response posted twice → the second is refused as REPLAYED', async () => {
    const form = await login('flw_routes_2');
    expect((await postAcs('hospital', { SAMLResponse: form.SAMLResponse })).status).toBe(303);
    expect((await postAcs('hospital', { SAMLResponse: form.SAMLResponse })).status).toBe(400);
    expect(failures.at(-1)).toMatchObject({ code: 'IDP_RESPONSE_INVALID', what: 'REPLAYED', provider: 'hospital', flowId: undefined });
  });

  it('ACS: an IdP error status is IDP_ERROR; a tampered response IDP_RESPONSE_INVALID with the reason', async () => {
    const cancelled = await login('flw_routes_3', { status: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed' });
    expect((await postAcs('hospital', { SAMLResponse: cancelled.SAMLResponse })).status).toBe(400);
    expect(failures.at(-1)).toMatchObject({ code: 'IDP_ERROR', what: 'IDP_STATUS' });
    const unsigned = await login('flw_routes_4', { sign: 'none' });
    expect((await postAcs('hospital', { SAMLResponse: unsigned.SAMLResponse })).status).toBe(400);
    expect(failures.at(-1)).toMatchObject({ code: 'IDP_RESPONSE_INVALID', what: 'ASSERTION_UNSIGNED' });
  });

  it('a handle only completes at the IdP it came from; a response only at its own IdP’s ACS', async () => {
    const form = await login('flw_routes_5');
    // Posted to another IdP's ACS (even one with the same settings): the request was not sent to it.
    expect((await postAcs('other', { SAMLResponse: form.SAMLResponse })).status).toBe(400);
    const ok = await postAcs('hospital', { SAMLResponse: form.SAMLResponse });
    const location = ok.headers.get('location')!;
    const elsewhere = location.replace('/hospital/', '/other/');
    expect((await app.request(elsewhere)).status).toBe(400);
    // Taking it at the wrong IdP does not burn it.
    expect((await app.request(location)).status).toBe(200);
  });

  it('ACS input: form bodies only, no repeated field, bounded', async () => {
    const json = await app.request('/auth/saml/hospital/acs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"SAMLResponse":"x"}' });
    expect(json.status).toBe(415);
    const twice = await app.request('/auth/saml/hospital/acs', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'SAMLResponse=a&SAMLResponse=b',
    });
    expect(((await twice.json()) as { code: string }).code).toBe('VALIDATION_FAILED');
    expect((await postAcs('hospital', {})).status).toBe(400);
    expect((await postAcs('nobody', { SAMLResponse: 'x' })).status).toBe(404);
  });
});

describe('SAML ACS over HTTP refuses the tampered corpus (a problem, no handle, no cookie)', () => {
  // Edits after signing, as an attacker holding one genuine response makes them.
  const edits: [string, (xml: string) => string, Parameters<TestSamlIdp['answer']>[1], string][] = [
    ['XSW: a second, unsigned assertion', (x) => wrapSecondAssertion(x, 'admin@hospital.org'), {}, 'ASSERTION_COUNT'],
    ['XSW: signed assertion moved into Extensions', (x) => moveSignedIntoExtensions(x, 'admin@hospital.org'), {}, 'ASSERTION_COUNT'],
    ['XSW: signed assertion inside an unsigned one’s Advice', (x) => wrapSignedInAdvice(x, 'admin@hospital.org'), {}, 'ASSERTION_COUNT'],
    ['XSW: signature moved onto an unsigned assertion', (x) => moveSignatureToEvil(x, 'admin@hospital.org'), {}, 'SIGNATURE_INVALID'],
    ['comment in NameID', (x) => replaceText(x, 'ann@hospital.org.evil.com<', 'ann@hospital.org<!---->.evil.com<'), { nameId: 'ann@hospital.org.evil.com' }, 'RESPONSE_MALFORMED'],
    ['unsigned assertion', (x) => x, { sign: 'none' }, 'ASSERTION_UNSIGNED'],
    ['signed response, unsigned assertion', (x) => x, { sign: 'response' }, 'ASSERTION_UNSIGNED'],
    ['untrusted key', (x) => x, { untrustedKey: true }, 'SIGNATURE_INVALID'],
    ['altered after signing', (x) => replaceText(x, 'pathologists', 'administrators'), {}, 'SIGNATURE_INVALID'],
    ['wrong audience', (x) => x, { audience: 'https://other-sp.test' }, 'AUDIENCE_MISMATCH'],
    ['wrong recipient', (x) => x, { recipient: 'https://other-sp.test/acs' }, 'RECIPIENT_MISMATCH'],
    ['wrong destination', (x) => x, { destination: 'https://other-sp.test/acs' }, 'DESTINATION_MISMATCH'],
    ['wrong issuer', (x) => x, { issuer: 'https://idp.evil.test' }, 'ISSUER_MISMATCH'],
    ['expired beyond the skew', (x) => x, { notBeforeOffsetMs: -600_000, notOnOrAfterOffsetMs: -61_000 }, 'EXPIRED'],
    ['not yet valid beyond the skew', (x) => x, { notBeforeOffsetMs: 61_000 }, 'NOT_YET_VALID'],
    ['unsolicited', (x) => x, { inResponseTo: null }, 'UNSOLICITED'],
  ];
  for (const [name, tamper, overrides, what] of edits) {
    it(`${name} → 400, federation failure ${what}`, async () => {
      idp.user = { nameId: 'ann@hospital.org', attributes: { mail: ['ann@hospital.org'], memberOf: ['pathologists'] } };
      const form = await login(`flw_corpus_${what}`, overrides);
      const xml = Buffer.from(form.SAMLResponse, 'base64').toString('utf8');
      const r = await postAcs('hospital', { SAMLResponse: TestSamlIdp.encode(tamper(xml)) }, { origin: 'https://idp.hospital.test', 'sec-fetch-site': 'cross-site' });
      expect(r.status).toBe(400);
      expect(r.headers.get('location')).toBeNull();
      expect(r.headers.get('set-cookie')).toBeNull();
      expect(failures.at(-1)).toMatchObject({ code: 'IDP_RESPONSE_INVALID', what, provider: 'hospital' });
    });
  }
});
