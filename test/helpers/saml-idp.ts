import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';
import type { Clock } from '../../src/clock.ts';
import { escapeXml } from '../../src/authn/methods/saml/xml.ts';

/**
 * A SAML 2.0 identity provider for tests, written with xml-crypto: it reads a real HTTP-Redirect
 * AuthnRequest, signs real assertions (RSA-SHA256, exclusive c14n) with a throwaway key made by
 * `openssl` at test time (never committed), and can produce every malformed or hostile variant
 * the SP must refuse (see saml-tamper.ts for edits after signing).
 */
export interface KeyPair {
  keyPem: string;
  certPem: string;
  /** Base64 DER, as in metadata. */
  certB64: string;
}

/** A fresh RSA key and self-signed certificate, made with openssl in a temp dir that is then removed. */
export function makeKeyPair(cn = 'threshold-test-idp'): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'saml-idp-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', `/CN=${cn}`,
    ], { stdio: 'ignore' });
    const keyPem = readFileSync(join(dir, 'key.pem'), 'utf8');
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const certB64 = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
    return { keyPem, certPem, certB64 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ResponseOptions {
  /** The AuthnRequest ID answered; null for an unsolicited response. */
  inResponseTo: string | null;
  /** The Response's own InResponseTo; defaults to inResponseTo. */
  responseInResponseTo?: string | null;
  acsUrl: string;
  /** Defaults to acsUrl. */
  destination?: string | null;
  /** Defaults to acsUrl. */
  recipient?: string;
  audience: string;
  issuer?: string;
  nameId: string;
  nameIdFormat?: string;
  attributes?: Record<string, string[]>;
  authnContextClassRef?: string;
  /** Validity window relative to the clock's now (ms); defaults -0 / +5 min. */
  notBeforeOffsetMs?: number;
  notOnOrAfterOffsetMs?: number;
  sign?: 'assertion' | 'response' | 'both' | 'none';
  /** Sign with a key the SP does not trust. */
  untrustedKey?: boolean;
  status?: string;
  /** Leave out the bearer SubjectConfirmation. */
  noBearer?: boolean;
}

const C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const xmlId = () => `_${randomBytes(16).toString('hex')}`;

function sign(xml: string, key: KeyPair, target: 'assertion' | 'response'): string {
  const base = target === 'assertion' ? "/*[local-name(.)='Response']/*[local-name(.)='Assertion']" : "/*[local-name(.)='Response']";
  const sig = new SignedXml({ privateKey: key.keyPem, publicCert: key.certPem, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: C14N });
  sig.addReference({ xpath: base, transforms: [ENVELOPED, C14N], digestAlgorithm: SHA256 });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${base}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

export class TestSamlIdp {
  readonly key: KeyPair = makeKeyPair();
  readonly untrusted: KeyPair = makeKeyPair('someone-else');
  /** Who the next browser login at /sso signs in as. */
  user: { nameId: string; attributes: Record<string, string[]>; authnContextClassRef?: string } = {
    nameId: 'ann@hospital.org',
    attributes: {},
  };
  private server?: ReturnType<typeof createServer>;
  url = '';

  constructor(readonly clock: Clock, readonly entityId = 'https://idp.hospital.test/saml') {}

  /** The response XML (signed as asked). */
  responseXml(o: ResponseOptions): string {
    const now = this.clock.now();
    const issuer = escapeXml(o.issuer ?? this.entityId);
    const irt = (v: string | null | undefined) => (v ? ` InResponseTo="${escapeXml(v)}"` : '');
    const responseIrt = o.responseInResponseTo === undefined ? o.inResponseTo : o.responseInResponseTo;
    const destination = o.destination === undefined ? o.acsUrl : o.destination;
    const notBefore = iso(now + (o.notBeforeOffsetMs ?? 0));
    const notOnOrAfter = iso(now + (o.notOnOrAfterOffsetMs ?? 5 * 60_000));
    const attrs = Object.entries(o.attributes ?? {})
      .map(([name, values]) => `<saml:Attribute Name="${escapeXml(name)}">${values.map((v) => `<saml:AttributeValue>${escapeXml(v)}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
      .join('');
    const bearer = o.noBearer
      ? ''
      : `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${irt(o.inResponseTo)} NotOnOrAfter="${notOnOrAfter}" Recipient="${escapeXml(o.recipient ?? o.acsUrl)}"/></saml:SubjectConfirmation>`;
    const xml =
      `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${xmlId()}" Version="2.0" IssueInstant="${iso(now)}"${destination ? ` Destination="${escapeXml(destination)}"` : ''}${irt(responseIrt)}>` +
      `<saml:Issuer>${issuer}</saml:Issuer>` +
      `<samlp:Status><samlp:StatusCode Value="${o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
      `<saml:Assertion ID="${xmlId()}" Version="2.0" IssueInstant="${iso(now)}">` +
      `<saml:Issuer>${issuer}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${o.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'}">${escapeXml(o.nameId)}</saml:NameID>${bearer}</saml:Subject>` +
      `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${escapeXml(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${xmlId()}"><saml:AuthnContext><saml:AuthnContextClassRef>${escapeXml(o.authnContextClassRef ?? 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport')}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
      `</saml:Assertion></samlp:Response>`;
    const key = o.untrustedKey ? this.untrusted : this.key;
    const mode = o.sign ?? 'assertion';
    let out = xml;
    if (mode === 'assertion' || mode === 'both') out = sign(out, key, 'assertion');
    if (mode === 'response' || mode === 'both') out = sign(out, key, 'response');
    return out;
  }

  /** The HTTP-POST form field value. */
  static encode(xml: string): string {
    return Buffer.from(xml, 'utf8').toString('base64');
  }

  /** Reads an HTTP-Redirect AuthnRequest URL: its ID, our ACS and entityID, and the RelayState. */
  static readRequest(redirectUrl: string): { id: string; acsUrl: string; issuer: string; relayState: string | null; xml: string } {
    const u = new URL(redirectUrl);
    const xml = inflateRawSync(Buffer.from(u.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
    const pick = (re: RegExp) => re.exec(xml)?.[1] ?? '';
    return {
      id: pick(/\bID="([^"]+)"/),
      acsUrl: pick(/AssertionConsumerServiceURL="([^"]+)"/),
      issuer: pick(/<saml:Issuer[^>]*>([^<]+)</),
      relayState: u.searchParams.get('RelayState'),
      xml,
    };
  }

  /** What the IdP answers the browser after a login: the form it auto-posts to the SP. */
  answer(redirectUrl: string, overrides: Partial<ResponseOptions> = {}): { acsUrl: string; SAMLResponse: string; RelayState: string | null } {
    const req = TestSamlIdp.readRequest(redirectUrl);
    const xml = this.responseXml({
      inResponseTo: req.id,
      acsUrl: req.acsUrl,
      audience: req.issuer,
      nameId: this.user.nameId,
      attributes: this.user.attributes,
      authnContextClassRef: this.user.authnContextClassRef,
      ...overrides,
    });
    return { acsUrl: overrides.acsUrl ?? req.acsUrl, SAMLResponse: TestSamlIdp.encode(xml), RelayState: req.relayState };
  }

  metadataXml(ssoUrl = `${this.url}/sso`): string {
    return (
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(this.entityId)}">` +
      `<!-- a comment, as real metadata often has -->` +
      `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">` +
      `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${this.key.certB64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${this.untrusted.certB64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(ssoUrl)}/post"/>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${escapeXml(ssoUrl)}"/>` +
      `</md:IDPSSODescriptor></md:EntityDescriptor>`
    );
  }

  /**
   * Serves GET /sso (HTTP-Redirect binding: signs the configured user in at once and answers the
   * auto-posting HTML form, as a real IdP does after its login page) and GET /metadata.
   */
  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', this.url);
      if (req.method === 'GET' && u.pathname === '/metadata') {
        res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(this.metadataXml());
        return;
      }
      if (req.method === 'GET' && u.pathname === '/sso' && u.searchParams.has('SAMLRequest')) {
        try {
          const form = this.answer(u.toString());
          const field = (n: string, v: string | null) => (v === null ? '' : `<input type="hidden" name="${n}" value="${escapeXml(v)}"/>`);
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(
            `<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" action="${escapeXml(form.acsUrl)}">` +
              `${field('SAMLResponse', form.SAMLResponse)}${field('RelayState', form.RelayState)}<button>Continue</button></form></body></html>`,
          );
        } catch {
          res.writeHead(400).end('bad AuthnRequest');
        }
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

/** Reads the fields of the IdP's auto-post form (what a browser would submit). */
export function readIdpForm(html: string): { action: string; fields: Record<string, string> } {
  const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const action = unescape(/<form method="post" action="([^"]*)"/.exec(html)?.[1] ?? '');
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) fields[m[1]] = unescape(m[2]);
  return { action, fields };
}
