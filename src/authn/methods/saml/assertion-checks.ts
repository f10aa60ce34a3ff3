import type { Element } from '@xmldom/xmldom';
import { SamlRejection } from './rejection.ts';
import type { SamlSettings } from './settings.ts';
import { NAMEID_FORMATS } from './settings.ts';
import { NS, attr, children, onlyChild, textOf } from './xml.ts';

/**
 * The checks on the signed assertion (only ever the bytes the signature covered), each small and
 * named for the attack it stops. `now` is the injected clock; `skewMs` the IdP's bounded skew.
 */
export interface CheckContext {
  settings: SamlSettings;
  now: number;
  skewMs: number;
}

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const SAML_DATETIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$/;

/** xs:dateTime in UTC, as SAML requires; anything else is refused rather than guessed. */
export function samlTime(value: string, what: string): number {
  const ms = SAML_DATETIME.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new SamlRejection('RESPONSE_MALFORMED', `${what} is not a UTC xs:dateTime`);
  return ms;
}

/** Stops use outside the validity window: NotBefore / NotOnOrAfter with the bounded skew only. */
export function checkWindow(el: Element, ctx: CheckContext, what: string): void {
  const nb = attr(el, 'NotBefore');
  if (nb !== null && ctx.now + ctx.skewMs < samlTime(nb, `${what} NotBefore`)) {
    throw new SamlRejection('NOT_YET_VALID', `${what} NotBefore ${nb}`);
  }
  const noa = attr(el, 'NotOnOrAfter');
  if (noa !== null && ctx.now - ctx.skewMs >= samlTime(noa, `${what} NotOnOrAfter`)) {
    throw new SamlRejection('EXPIRED', `${what} NotOnOrAfter ${noa}`);
  }
}

/** Stops assertions minted by another IdP (or another tenant's) from being accepted here. */
export function checkIssuer(el: Element, ctx: CheckContext, required: boolean): void {
  const issuer = onlyChild(el, NS.assertion, 'Issuer');
  if (!issuer) {
    if (required) throw new SamlRejection('ISSUER_MISMATCH', `${el.localName} has no Issuer`);
    return;
  }
  if (textOf(issuer) !== ctx.settings.idpEntityId) throw new SamlRejection('ISSUER_MISMATCH', `${el.localName} Issuer is another entity`);
}

/** Stops an assertion issued for another SP (which that SP could replay to us) from being used. */
export function checkConditions(assertion: Element, ctx: CheckContext): void {
  const conditions = onlyChild(assertion, NS.assertion, 'Conditions');
  if (!conditions) throw new SamlRejection('AUDIENCE_MISMATCH', 'no Conditions');
  checkWindow(conditions, ctx, 'Conditions');
  const restrictions = children(conditions, NS.assertion, 'AudienceRestriction');
  if (restrictions.length === 0) throw new SamlRejection('AUDIENCE_MISMATCH', 'no AudienceRestriction');
  // Every restriction must be met (SAML core 2.5.1.4): each must name us.
  for (const r of restrictions) {
    const audiences = children(r, NS.assertion, 'Audience').map(textOf);
    if (!audiences.includes(ctx.settings.spEntityId)) throw new SamlRejection('AUDIENCE_MISMATCH', 'our entityID is not an Audience');
  }
}

/**
 * Stops a bearer assertion captured on its way to another endpoint, or kept beyond its life, from
 * being presented here: a bearer SubjectConfirmationData naming our ACS as Recipient, with a live
 * NotOnOrAfter and an InResponseTo (SAML profiles 4.1.4.2). Returns that InResponseTo.
 */
export function checkBearer(subject: Element, ctx: CheckContext): string {
  const bearers = children(subject, NS.assertion, 'SubjectConfirmation').filter((c) => attr(c, 'Method') === BEARER);
  if (bearers.length === 0) throw new SamlRejection('NO_BEARER_CONFIRMATION', 'no bearer SubjectConfirmation');
  let first: SamlRejection | null = null;
  for (const b of bearers) {
    try {
      const data = onlyChild(b, NS.assertion, 'SubjectConfirmationData');
      if (!data) throw new SamlRejection('NO_BEARER_CONFIRMATION', 'no SubjectConfirmationData');
      if (attr(data, 'Recipient') !== ctx.settings.acsUrl) throw new SamlRejection('RECIPIENT_MISMATCH', 'Recipient is not our ACS');
      if (attr(data, 'NotOnOrAfter') === null) throw new SamlRejection('NO_BEARER_CONFIRMATION', 'bearer data without NotOnOrAfter');
      checkWindow(data, ctx, 'SubjectConfirmationData');
      const inResponseTo = attr(data, 'InResponseTo');
      if (!inResponseTo) throw new SamlRejection('UNSOLICITED', 'no InResponseTo: IdP-initiated login is not accepted');
      return inResponseTo;
    } catch (e) {
      if (!(e instanceof SamlRejection)) throw e;
      first ??= e;
    }
  }
  throw first!;
}

/** Stops an empty, encrypted or wrongly-formatted NameID from naming an account. */
export function readNameId(subject: Element, ctx: CheckContext): { value: string; format: string | null } {
  if (children(subject, NS.assertion, 'EncryptedID').length > 0) throw new SamlRejection('ENCRYPTED_UNSUPPORTED', 'EncryptedID');
  const nameId = onlyChild(subject, NS.assertion, 'NameID');
  if (!nameId) throw new SamlRejection('SUBJECT_INVALID', 'no NameID');
  const value = textOf(nameId);
  if (value.length === 0 || value.length > 1024) throw new SamlRejection('SUBJECT_INVALID', 'empty or oversized NameID');
  const format = attr(nameId, 'Format');
  const wanted = NAMEID_FORMATS[ctx.settings.nameIdFormat];
  if (ctx.settings.nameIdFormat !== 'unspecified' && format !== wanted) throw new SamlRejection('SUBJECT_INVALID', 'NameID in another format');
  return { value, format };
}

/** The single AuthnStatement: when and how the user authenticated at the IdP. */
export function readAuthnStatement(assertion: Element, ctx: CheckContext): { authTime: number; classRef: string | null } {
  const statements = children(assertion, NS.assertion, 'AuthnStatement');
  if (statements.length !== 1) throw new SamlRejection('AUTHN_STATEMENT_MISSING', `${statements.length} AuthnStatements`);
  const st = statements[0];
  const instant = attr(st, 'AuthnInstant');
  if (!instant) throw new SamlRejection('AUTHN_STATEMENT_MISSING', 'no AuthnInstant');
  const authTime = samlTime(instant, 'AuthnInstant');
  if (authTime > ctx.now + ctx.skewMs) throw new SamlRejection('NOT_YET_VALID', 'AuthnInstant in the future');
  const sessionEnd = attr(st, 'SessionNotOnOrAfter');
  if (sessionEnd !== null && ctx.now - ctx.skewMs >= samlTime(sessionEnd, 'SessionNotOnOrAfter')) {
    throw new SamlRejection('EXPIRED', 'SessionNotOnOrAfter passed');
  }
  const context = onlyChild(st, NS.assertion, 'AuthnContext');
  const ref = context ? onlyChild(context, NS.assertion, 'AuthnContextClassRef') : null;
  return { authTime, classRef: ref ? textOf(ref) || null : null };
}

const MAX_VALUES = 256;
const MAX_VALUE_LENGTH = 512;

/** Attribute values by Name (text values only; bounded in number and length). */
export function readAttributes(assertion: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const statement of children(assertion, NS.assertion, 'AttributeStatement')) {
    for (const a of children(statement, NS.assertion, 'Attribute')) {
      const name = attr(a, 'Name');
      if (!name) continue;
      const values = children(a, NS.assertion, 'AttributeValue')
        .map(textOf)
        .filter((v) => v.length > 0 && v.length <= MAX_VALUE_LENGTH);
      out.set(name, [...(out.get(name) ?? []), ...values].slice(0, MAX_VALUES));
    }
  }
  return out;
}
