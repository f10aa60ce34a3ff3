import { randomBytes } from 'node:crypto';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import type { CacheProvider } from '@node-saml/node-saml';
import { NAMEID_FORMATS, certificateToPem } from './settings.ts';
import type { SamlSettings } from './settings.ts';

/**
 * node-saml, configured the one way Threshold uses it. It does what is hard to get right —
 * XML-DSig verification that returns only the bytes the signature covers (so later reads cannot
 * be steered to unsigned content), one-signature/one-reference/parent-reference rules — and we
 * do the rest ourselves (see response.ts) because node-saml reads the wall clock, keeps request
 * ids in a non-atomic cache, and does not check Recipient or Destination.
 */

/** node-saml must never keep request ids (we do, atomically, in Postgres): any use is a bug. */
const noCache: CacheProvider = {
  saveAsync: () => Promise.reject(new Error('node-saml request cache must not be used')),
  getAsync: () => Promise.reject(new Error('node-saml request cache must not be used')),
  removeAsync: () => Promise.reject(new Error('node-saml request cache must not be used')),
};

/** An AuthnRequest ID: an xs:ID (starts with a letter or _), 160 random bits. */
export const newRequestId = (): string => `_${randomBytes(20).toString('hex')}`;

export function samlClient(s: SamlSettings, requestId: () => string = newRequestId): SAML {
  return new SAML({
    issuer: s.spEntityId,
    callbackUrl: s.acsUrl,
    entryPoint: s.ssoUrl,
    idpCert: s.idpCertificates.map(certificateToPem),
    identifierFormat: NAMEID_FORMATS[s.nameIdFormat],
    // The assertion must carry its own valid signature; a signed response around it is
    // neither required nor sufficient (the assertion is what we read).
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    // Ours, with the injected clock and bounded skew (response.ts); -1 turns node-saml's off.
    acceptedClockSkewMs: -1,
    audience: false,
    validateInResponseTo: ValidateInResponseTo.never,
    cacheProvider: noCache,
    disableRequestedAuthnContext: true,
    generateUniqueId: requestId,
    signatureAlgorithm: 'sha256',
  });
}

/**
 * The HTTP-Redirect binding URL of a new AuthnRequest to the IdP, with its ID (to be recorded
 * before the browser is sent there).
 */
export async function buildAuthnRequest(s: SamlSettings, relayState?: string): Promise<{ id: string; url: string }> {
  const id = newRequestId();
  const url = await samlClient(s, () => id).getAuthorizeUrlAsync(relayState ?? '', undefined, {});
  return { id, url };
}

/** Our SP metadata for this IdP: entityID, the HTTP-POST ACS, NameID format, WantAssertionsSigned. */
export function spMetadataXml(s: SamlSettings): string {
  return samlClient(s).generateServiceProviderMetadata(null, null);
}
