import type { Element } from '@xmldom/xmldom';
import { NS, XmlRefused, attr, children, descendants, parseStrictXml, textOf } from './xml.ts';

/**
 * IdP metadata → the IdP part of the settings. The XML comes from an admin (pasted, or fetched by
 * an explicit admin action through fetchIdpMetadata — never at login, so a slow or hijacked
 * metadata host cannot take logins down or swap keys silently). Metadata signatures are not
 * checked: trust comes from the admin who supplies it, over the admin API.
 */
export interface IdpMetadata {
  idpEntityId: string;
  ssoUrl: string;
  /** Base64 DER, signing certificates only (use="signing" or no use). */
  idpCertificates: string[];
}

export class MetadataError extends Error {}

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';

/** Reads one IdP's entity (by entityID when the document lists several). */
export function parseIdpMetadata(xml: string, entityId?: string): IdpMetadata {
  let root: Element;
  try {
    root = parseStrictXml(xml, { allowComments: true }).documentElement!;
  } catch (e) {
    if (e instanceof XmlRefused) throw new MetadataError(`metadata is not acceptable XML: ${e.message}`);
    throw e;
  }
  if (root.namespaceURI !== NS.metadata) throw new MetadataError('not SAML 2.0 metadata');
  const entities = (root.localName === 'EntityDescriptor' ? [root] : descendants(root, NS.metadata, 'EntityDescriptor')).filter(
    (e) => children(e, NS.metadata, 'IDPSSODescriptor').length > 0 && (entityId === undefined || attr(e, 'entityID') === entityId),
  );
  if (entities.length !== 1) throw new MetadataError(`expected one identity provider entity, found ${entities.length}`);
  const entity = entities[0];
  const idpEntityId = attr(entity, 'entityID');
  if (!idpEntityId) throw new MetadataError('EntityDescriptor has no entityID');
  const idp = children(entity, NS.metadata, 'IDPSSODescriptor').find((d) => (attr(d, 'protocolSupportEnumeration') ?? '').split(/\s+/).includes(PROTOCOL));
  if (!idp) throw new MetadataError('no IDPSSODescriptor supports SAML 2.0');
  const sso = children(idp, NS.metadata, 'SingleSignOnService').find((s) => attr(s, 'Binding') === REDIRECT);
  const ssoUrl = sso ? attr(sso, 'Location') : null;
  if (!ssoUrl) throw new MetadataError('no SingleSignOnService for the HTTP-Redirect binding');
  const idpCertificates = children(idp, NS.metadata, 'KeyDescriptor')
    .filter((k) => (attr(k, 'use') ?? 'signing') === 'signing')
    .flatMap((k) => descendants(k, NS.dsig, 'X509Certificate'))
    .map((c) => textOf(c).replace(/\s+/g, ''))
    .filter((c, i, all) => c.length > 0 && all.indexOf(c) === i);
  if (idpCertificates.length === 0) throw new MetadataError('no signing certificate');
  return { idpEntityId, ssoUrl, idpCertificates };
}

export interface FetchMetadataOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
  maxBytes?: number;
}

/**
 * The admin action "fetch this IdP's metadata": bounded in time and size, no redirects to
 * follow silently, and parsed before anything is stored.
 */
export async function fetchIdpMetadata(url: string, o: FetchMetadataOptions = {}): Promise<{ xml: string; metadata: IdpMetadata }> {
  const maxBytes = o.maxBytes ?? 1024 * 1024;
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(url, { redirect: 'error', signal: AbortSignal.timeout(o.timeoutMs ?? 10_000), headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
  } catch (e) {
    throw new MetadataError(`metadata could not be fetched: ${(e as Error).name}`);
  }
  if (!res.ok) throw new MetadataError(`metadata URL answered ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new MetadataError('metadata is too large');
  const xml = await readBounded(res, maxBytes);
  return { xml, metadata: parseIdpMetadata(xml) };
}

/** Reads a body up to maxBytes, cancelling the download beyond it (a chunked body has no length). */
async function readBounded(res: Response, maxBytes: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new MetadataError('metadata is too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
