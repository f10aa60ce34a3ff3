import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import type { Element } from '@xmldom/xmldom';

/**
 * Edits of a signed SAML response, as an attacker holding one genuine response would make them.
 * Each returns the XML to post; the SP must refuse every one.
 */
const P = 'urn:oasis:names:tc:SAML:2.0:protocol';
const A = 'urn:oasis:names:tc:SAML:2.0:assertion';
const DS = 'http://www.w3.org/2000/09/xmldsig#';

function load(xml: string) {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const response = doc.documentElement!;
  const signed = Array.from(response.getElementsByTagNameNS(A, 'Assertion'))[0];
  return { doc, response, signed };
}

/** A copy of the signed assertion without its signature, naming another subject. */
function evilTwin(signed: Element, nameId: string, keepId: boolean): Element {
  const evil = signed.cloneNode(true) as Element;
  for (const s of Array.from(evil.getElementsByTagNameNS(DS, 'Signature'))) s.parentNode!.removeChild(s);
  if (!keepId) evil.setAttribute('ID', `_evil${Date.now()}`);
  const n = evil.getElementsByTagNameNS(A, 'NameID')[0];
  while (n.firstChild) n.removeChild(n.firstChild);
  n.appendChild(evil.ownerDocument!.createTextNode(nameId));
  return evil;
}

const out = (doc: { documentElement: unknown } & object) => new XMLSerializer().serializeToString(doc as never);

/** XSW: an unsigned assertion for the attacker's choice of subject placed before the signed one. */
export function wrapSecondAssertion(xml: string, nameId: string): string {
  const { doc, response, signed } = load(xml);
  response.insertBefore(evilTwin(signed, nameId, false), signed);
  return out(doc);
}

/** XSW: the signed assertion moved into the Response's Extensions, an unsigned one (same ID) in its place. */
export function moveSignedIntoExtensions(xml: string, nameId: string): string {
  const { doc, response, signed } = load(xml);
  const evil = evilTwin(signed, nameId, true);
  response.replaceChild(evil, signed);
  const ext = doc.createElementNS(P, 'samlp:Extensions');
  ext.appendChild(signed);
  const status = response.getElementsByTagNameNS(P, 'Status')[0];
  response.insertBefore(ext, status);
  return out(doc);
}

/** XSW: an unsigned assertion that carries the genuine signed one inside its Advice. */
export function wrapSignedInAdvice(xml: string, nameId: string): string {
  const { doc, response, signed } = load(xml);
  const evil = evilTwin(signed, nameId, false);
  response.replaceChild(evil, signed);
  const conditions = evil.getElementsByTagNameNS(A, 'Conditions')[0];
  const advice = doc.createElementNS(A, 'saml:Advice');
  advice.appendChild(signed);
  evil.insertBefore(advice, conditions.nextSibling);
  return out(doc);
}

/** XSW: the signature moved onto an unsigned evil assertion (its Reference still names the original). */
export function moveSignatureToEvil(xml: string, nameId: string): string {
  const { doc, response, signed } = load(xml);
  const evil = evilTwin(signed, nameId, false);
  const sig = signed.getElementsByTagNameNS(DS, 'Signature')[0];
  signed.removeChild(sig);
  evil.insertBefore(sig, evil.getElementsByTagNameNS(A, 'Subject')[0]);
  response.replaceChild(evil, signed);
  return out(doc);
}

/** A text edit after signing (the digest must no longer match). */
export function replaceText(xml: string, from: string, to: string): string {
  if (!xml.includes(from)) throw new Error(`tamper: ${from} not in the response`);
  return xml.replace(from, to);
}
