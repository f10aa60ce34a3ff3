import { DOMParser } from '@xmldom/xmldom';
import type { Document, Element, Node } from '@xmldom/xmldom';

/** Namespaces the SP reads. */
export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

export class XmlRefused extends Error {}

/**
 * Parses untrusted XML strictly. Stops entity-expansion and external-entity attacks (no DOCTYPE
 * at all: SAML has no use for one) and parser-differential tricks (a comment or processing
 * instruction inside a message — the NameID comment-injection attack relies on the verifier and
 * the reader seeing different text — is refused rather than interpreted).
 */
export function parseStrictXml(xml: string, opts: { allowComments?: boolean } = {}): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new XmlRefused('DOCTYPE or ENTITY declarations are not allowed');
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, msg) => {
        throw new XmlRefused(`XML ${level}: ${msg}`);
      },
    }).parseFromString(xml, 'text/xml');
  } catch (e) {
    throw e instanceof XmlRefused ? e : new XmlRefused(`not well-formed XML: ${(e as Error).message}`);
  }
  if (!doc.documentElement) throw new XmlRefused('no document element');
  if (!opts.allowComments) assertNoCommentsOrInstructions(doc);
  return doc;
}

const COMMENT_NODE = 8;
const PROCESSING_INSTRUCTION_NODE = 7;
const ELEMENT_NODE = 1;

function assertNoCommentsOrInstructions(doc: Document): void {
  const stack: Node[] = [doc.documentElement!];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.nodeType === COMMENT_NODE) throw new XmlRefused('comments are not allowed in a SAML message');
    if (n.nodeType === PROCESSING_INSTRUCTION_NODE) throw new XmlRefused('processing instructions are not allowed');
    for (let c = n.firstChild; c; c = c.nextSibling) stack.push(c);
  }
}

/** The element children of `el` with this namespace and local name. */
export function children(el: Element, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let c = el.firstChild; c; c = c.nextSibling) {
    if (c.nodeType === ELEMENT_NODE && (c as Element).namespaceURI === ns && (c as Element).localName === localName) out.push(c as Element);
  }
  return out;
}

/** The single child, null when absent; more than one is refused (ambiguity is an attack surface). */
export function onlyChild(el: Element, ns: string, localName: string): Element | null {
  const found = children(el, ns, localName);
  if (found.length > 1) throw new XmlRefused(`more than one ${localName}`);
  return found[0] ?? null;
}

/** Every descendant with this namespace and local name. */
export function descendants(el: Element, ns: string, localName: string): Element[] {
  return Array.from(el.getElementsByTagNameNS(ns, localName));
}

/** The text of an element made only of text (an element child inside is refused). */
export function textOf(el: Element): string {
  let s = '';
  for (let c = el.firstChild; c; c = c.nextSibling) {
    if (c.nodeType === ELEMENT_NODE) throw new XmlRefused(`${el.localName} has element content`);
    if (c.nodeType === 3 || c.nodeType === 4) s += c.nodeValue ?? '';
  }
  return s.trim();
}

/** An attribute, or null when absent (xmldom answers '' for a missing one). */
export const attr = (el: Element, name: string): string | null => (el.hasAttribute(name) ? el.getAttribute(name) : null);

/** Escapes text for an XML attribute or element. */
export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
