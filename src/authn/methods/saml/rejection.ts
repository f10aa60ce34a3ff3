/**
 * Why a SAML response was refused. The client sees one code (SAML_RESPONSE_REFUSED); the reason
 * goes to the audit trail and logs, and tests assert on it. Stable strings: renaming one breaks
 * readers of the audit chain.
 */
export const SAML_REJECTIONS = [
  'RESPONSE_MALFORMED', // not base64, not well-formed, DOCTYPE, comments, wrong root, bad timestamps
  'IDP_STATUS', // the IdP answered with a non-Success status (e.g. the user cancelled)
  'ASSERTION_COUNT', // no assertion, several, or one hidden elsewhere (signature wrapping)
  'ENCRYPTED_UNSUPPORTED', // EncryptedAssertion / EncryptedID: no decryption key is configured
  'ASSERTION_UNSIGNED', // the assertion carries no signature of its own (a signed response is not enough)
  'SIGNATURE_INVALID', // bad digest or signature, an untrusted key, or a reference to another element
  'ISSUER_MISMATCH', // Issuer is not the configured IdP entityID
  'DESTINATION_MISMATCH', // Response Destination is not our ACS URL
  'RECIPIENT_MISMATCH', // bearer SubjectConfirmationData Recipient is not our ACS URL
  'AUDIENCE_MISMATCH', // no AudienceRestriction naming our entityID
  'NOT_YET_VALID', // NotBefore beyond the allowed skew
  'EXPIRED', // NotOnOrAfter / SessionNotOnOrAfter passed beyond the allowed skew
  'NO_BEARER_CONFIRMATION', // no bearer SubjectConfirmation with data
  'UNSOLICITED', // no InResponseTo: IdP-initiated responses are not accepted
  'IN_RESPONSE_TO_MISMATCH', // the Response and the assertion name different requests
  'REQUEST_UNKNOWN', // InResponseTo names no request we sent to this IdP
  'REQUEST_EXPIRED', // the request's lifetime passed
  'REPLAYED', // the request was already answered
  'SUBJECT_INVALID', // no usable NameID, or not in the configured format
  'AUTHN_STATEMENT_MISSING', // no (single) AuthnStatement
] as const;

export type SamlRejectionReason = (typeof SAML_REJECTIONS)[number];

export class SamlRejection extends Error {
  constructor(
    readonly reason: SamlRejectionReason,
    detail: string,
    /** The request the response named, when it could be read (the flow to fail). */
    readonly requestId?: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'SamlRejection';
  }
}
