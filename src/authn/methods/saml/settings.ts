import { z } from 'zod';

/**
 * The settings of one SAML 2.0 identity provider, as stored in the provider's `settings` jsonb
 * (validated by this schema on every write) and as the SP core reads them.
 */

/** The largest clock skew an admin may allow: a few minutes of drift, never a replay window. */
export const SAML_MAX_SKEW_SECONDS = 180;

export const NAMEID_FORMATS = {
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
} as const;
export type NameIdFormat = keyof typeof NAMEID_FORMATS;

/** RFC 8176 values an upstream AuthnContextClassRef may stand for. */
const AMR_VALUES = ['pwd', 'otp', 'sms', 'hwk', 'swk', 'mfa', 'kba', 'pin', 'user', 'face', 'fpt'] as const;
type Amr = (typeof AMR_VALUES)[number];

/**
 * What common class refs prove, in RFC 8176 terms. PasswordProtectedTransport is a password over
 * TLS; the REFEDS MFA profile and Entra ID's `multipleauthn` are MFA. Admins may replace it.
 */
export const DEFAULT_AUTHN_CONTEXT_AMR: Record<string, Amr[]> = {
  'urn:oasis:names:tc:SAML:2.0:ac:classes:Password': ['pwd'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport': ['pwd'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken': ['otp'],
  'https://refeds.org/profile/mfa': ['mfa'],
  'http://schemas.microsoft.com/claims/multipleauthn': ['mfa'],
};

/** An absolute URL; plain http only on a loopback host (test IdPs and local development). */
const webUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .refine((s) => {
    const u = new URL(s);
    return u.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  }, 'must be https (http only on loopback)');

/** Base64 DER of an X.509 certificate (the body of a PEM, or a metadata X509Certificate). */
const certificate = z
  .string()
  .transform((s) => s.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''))
  .pipe(z.string().min(100).max(16384).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be a base64 X.509 certificate'));

const attributeName = z.string().min(1).max(512);

export const samlSettingsSchema = z
  .object({
    /** The IdP's entityID: the only Issuer accepted on responses and assertions. */
    idpEntityId: z.string().min(1).max(1024),
    /** The IdP's SingleSignOnService for the HTTP-Redirect binding. */
    ssoUrl: webUrl,
    /** Certificates whose keys may sign assertions (several while the IdP rotates). */
    idpCertificates: z.array(certificate).min(1).max(5),
    /** Our entityID at this IdP: the Audience every assertion must name. */
    spEntityId: z.string().min(1).max(1024),
    /** Our AssertionConsumerService (HTTP-POST): the Recipient and Destination required. */
    acsUrl: webUrl,
    nameIdFormat: z.enum(Object.keys(NAMEID_FORMATS) as [NameIdFormat, ...NameIdFormat[]]).default('unspecified'),
    /** Attribute Names (as the IdP sends them) holding the email, the display name and the groups. */
    attributes: z
      .object({ email: attributeName.optional(), name: attributeName.optional(), groups: attributeName.optional() })
      .strict()
      .default({}),
    /** Allowed drift between the IdP's clock and ours when checking validity windows. */
    maxClockSkewSeconds: z.number().int().min(0).max(SAML_MAX_SKEW_SECONDS).default(60),
    /** Whether the AuthnContextClassRef is translated to upstream amr values (below). */
    mapAuthnContext: z.boolean().default(true),
    /** AuthnContextClassRef → RFC 8176 amr values; unlisted class refs map to nothing. */
    authnContextAmr: z
      .record(z.string().min(1).max(512), z.array(z.enum(AMR_VALUES)).max(4))
      .refine((r) => Object.keys(r).length <= 32, 'at most 32 class refs')
      .default(() => structuredClone(DEFAULT_AUTHN_CONTEXT_AMR)),
  })
  .strict();

/** Settings as stored and read (defaults filled in). */
export type SamlSettings = z.output<typeof samlSettingsSchema>;
/** Settings as an admin may write them. */
export type SamlSettingsInput = z.input<typeof samlSettingsSchema>;

/** The PEM form node-saml and xml-crypto take. */
export const certificateToPem = (b64: string): string =>
  `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
