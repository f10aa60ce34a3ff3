import type { Document, Element } from '@xmldom/xmldom';
import type { Clock } from '../../../clock.ts';
import {
  checkBearer, checkConditions, checkIssuer, readAttributes, readAuthnStatement, readNameId,
} from './assertion-checks.ts';
import type { CheckContext } from './assertion-checks.ts';
import { SamlRejection } from './rejection.ts';
import type { SamlSettings } from './settings.ts';
import { samlClient } from './sp.ts';
import type { SamlStore } from './store.ts';
import type { AcceptedResponse, ExternalAssertion } from './types.ts';
import { NS, XmlRefused, attr, children, descendants, onlyChild, parseStrictXml } from './xml.ts';

/**
 * The HTTP-POST ACS pipeline: a SAMLResponse becomes a normalised assertion only if every check
 * passes, in this order —
 *   1. decode and parse strictly (no DOCTYPE, no comments: comment-injection into NameID);
 *   2. the envelope: a SAML 2.0 Response, Success status, our ACS as Destination, right Issuer;
 *   3. exactly one Assertion in the whole document, unencrypted, carrying its own signature
 *      (wrapping attacks hide a second one; a signed Response alone is not enough);
 *   4. the signature, by node-saml over a trusted certificate; from here on only the signed
 *      bytes are read;
 *   5. the assertion: Issuer, Conditions (window, audience), bearer confirmation (Recipient,
 *      NotOnOrAfter, InResponseTo), NameID, AuthnStatement;
 *   6. InResponseTo names a request we sent to this IdP, consumed atomically (replay).
 */
export interface ValidateInput {
  providerId: string;
  settings: SamlSettings;
  /** The SAMLResponse form field, base64. */
  samlResponse: string;
}

export interface SamlResponseDeps {
  store: SamlStore;
  clock: Clock;
}

/** Bigger than any real response with a few hundred groups; smaller than the body limit. */
export const MAX_SAML_RESPONSE_BASE64 = 256 * 1024;
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

export async function validateSamlResponse(deps: SamlResponseDeps, input: ValidateInput): Promise<AcceptedResponse> {
  const { settings } = input;
  const ctx: CheckContext = { settings, now: deps.clock.now(), skewMs: settings.maxClockSkewSeconds * 1000 };

  const xml = decode(input.samlResponse);
  const raw = parse(xml);
  const response = checkEnvelope(raw, ctx);
  checkOneSignedAssertion(raw, response);
  const assertion = await verifiedAssertion(settings, input.samlResponse);

  checkIssuer(assertion, ctx, true);
  checkConditions(assertion, ctx);
  const subject = onlyChild(assertion, NS.assertion, 'Subject');
  if (!subject) throw new SamlRejection('SUBJECT_INVALID', 'no Subject');
  const requestId = checkBearer(subject, ctx);
  const responseInResponseTo = attr(response, 'InResponseTo');
  if (responseInResponseTo !== null && responseInResponseTo !== requestId) {
    throw new SamlRejection('IN_RESPONSE_TO_MISMATCH', 'Response and SubjectConfirmationData name different requests', requestId);
  }
  const nameId = readNameId(subject, ctx);
  const authn = readAuthnStatement(assertion, ctx);
  const attributes = readAttributes(assertion);

  // Last, so a response failing any check above leaves its request answerable by the real one.
  const consumed = await deps.store.consumeRequest(requestId, input.providerId);
  if (!consumed.ok) {
    const reason = consumed.why === 'REPLAYED' ? 'REPLAYED' : consumed.why === 'EXPIRED' ? 'REQUEST_EXPIRED' : 'REQUEST_UNKNOWN';
    throw new SamlRejection(reason, `InResponseTo: ${consumed.why.toLowerCase()}`, requestId);
  }
  return { assertion: normalise(input.providerId, settings, nameId, authn, attributes), flowId: consumed.flowId, requestId };
}

function decode(samlResponse: string): string {
  const b64 = samlResponse.replace(/\s+/g, '');
  if (b64.length === 0 || b64.length > MAX_SAML_RESPONSE_BASE64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new SamlRejection('RESPONSE_MALFORMED', 'SAMLResponse is not base64 of a bounded size');
  }
  return Buffer.from(b64, 'base64').toString('utf8');
}

function parse(xml: string, what = 'SAMLResponse'): Document {
  try {
    return parseStrictXml(xml);
  } catch (e) {
    if (e instanceof XmlRefused) throw new SamlRejection('RESPONSE_MALFORMED', `${what}: ${e.message}`);
    throw e;
  }
}

/** Stops responses meant for another endpoint and non-success answers dressed as logins. */
function checkEnvelope(doc: Document, ctx: CheckContext): Element {
  const response = doc.documentElement!;
  if (response.namespaceURI !== NS.protocol || response.localName !== 'Response' || attr(response, 'Version') !== '2.0') {
    throw new SamlRejection('RESPONSE_MALFORMED', 'not a SAML 2.0 Response');
  }
  const status = onlyChild(response, NS.protocol, 'Status');
  const code = status ? onlyChild(status, NS.protocol, 'StatusCode') : null;
  if (!code || attr(code, 'Value') !== SUCCESS) throw new SamlRejection('IDP_STATUS', `status ${code ? attr(code, 'Value') : 'missing'}`);
  // Destination is required: the response is sent through the browser (profiles 4.1.4.5 for signed ones; we require it always).
  if (attr(response, 'Destination') !== ctx.settings.acsUrl) throw new SamlRejection('DESTINATION_MISMATCH', 'Destination is not our ACS');
  checkIssuer(response, ctx, false);
  return response;
}

/**
 * Stops XML signature wrapping: exactly one Assertion in the whole document (not only among the
 * Response's children — a signed one tucked into Extensions or an Object is also refused), a
 * direct child of the Response, with a signature of its own.
 */
function checkOneSignedAssertion(doc: Document, response: Element): void {
  const root = doc.documentElement!;
  if (descendants(root, NS.assertion, 'EncryptedAssertion').length > 0) throw new SamlRejection('ENCRYPTED_UNSUPPORTED', 'EncryptedAssertion');
  const all = descendants(root, NS.assertion, 'Assertion');
  const direct = children(response, NS.assertion, 'Assertion');
  if (all.length !== 1 || direct.length !== 1) throw new SamlRejection('ASSERTION_COUNT', `${all.length} assertions, ${direct.length} direct`);
  if (children(direct[0], NS.dsig, 'Signature').length === 0) throw new SamlRejection('ASSERTION_UNSIGNED', 'the assertion is not signed');
}

/** Stops forged and altered assertions: node-saml verifies and hands back only the signed bytes. */
async function verifiedAssertion(settings: SamlSettings, samlResponse: string): Promise<Element> {
  let signed: string | undefined;
  try {
    const { profile } = await samlClient(settings).validatePostResponseAsync({ SAMLResponse: samlResponse });
    signed = profile?.getAssertionXml?.();
  } catch (e) {
    throw new SamlRejection('SIGNATURE_INVALID', `node-saml: ${(e as Error).message}`);
  }
  if (!signed) throw new SamlRejection('SIGNATURE_INVALID', 'no signed assertion');
  const assertion = parse(signed, 'signed assertion').documentElement!;
  if (assertion.namespaceURI !== NS.assertion || assertion.localName !== 'Assertion' || attr(assertion, 'Version') !== '2.0') {
    throw new SamlRejection('SIGNATURE_INVALID', 'the signed element is not a SAML 2.0 Assertion');
  }
  return assertion;
}

function normalise(
  providerId: string,
  s: SamlSettings,
  nameId: { value: string; format: string | null },
  authn: { authTime: number; classRef: string | null },
  attributes: Map<string, string[]>,
): ExternalAssertion {
  const first = (name: string | undefined) => (name ? (attributes.get(name)?.[0] ?? null) : null);
  const emailFormat = nameId.format === 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
  const email = first(s.attributes.email) ?? (emailFormat ? nameId.value : null);
  const upstreamAmr = s.mapAuthnContext && authn.classRef ? [...(s.authnContextAmr[authn.classRef] ?? [])] : [];
  return {
    providerId,
    protocol: 'saml',
    issuer: s.idpEntityId,
    subject: nameId.value,
    email: email ? email.toLowerCase() : null,
    emailVerified: false,
    name: first(s.attributes.name),
    groups: s.attributes.groups ? [...new Set(attributes.get(s.attributes.groups) ?? [])] : [],
    upstreamAmr,
    upstreamAcr: authn.classRef,
    authTime: Math.floor(authn.authTime / 1000),
  };
}
