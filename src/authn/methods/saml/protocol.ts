import { z } from 'zod';
import { AppError } from '../../../errors.ts';
import { MetadataError, parseIdpMetadata } from './metadata.ts';
import { samlSettingsSchema, type SamlSettings } from './settings.ts';

/**
 * How an admin configures a SAML IdP (the `settings` of an identity provider of type `saml`):
 * the IdP's metadata XML, or its parts by hand, plus
 * our side (entityID, ACS URL), attribute mapping, NameID format, skew and amr mapping.
 * Stored as the fully validated SamlSettings; nothing in it is secret.
 */
const base = samlSettingsSchema.shape;
export const SamlSettingsInputSchema = z
  .object({
    /** IdP metadata (EntityDescriptor), pasted or fetched by the admin's "fetch metadata" action; sets the IdP's entityID, SSO URL and certificates. */
    metadataXml: z.string().min(1).max(512 * 1024).optional(),
    idpEntityId: base.idpEntityId.optional(),
    ssoUrl: base.ssoUrl.optional(),
    idpCertificates: base.idpCertificates.optional(),
    spEntityId: base.spEntityId,
    acsUrl: base.acsUrl,
    nameIdFormat: base.nameIdFormat,
    attributes: base.attributes,
    maxClockSkewSeconds: base.maxClockSkewSeconds,
    mapAuthnContext: base.mapAuthnContext,
    authnContextAmr: base.authnContextAmr,
  })
  .strict();
export type SamlSettingsInput = z.output<typeof SamlSettingsInputSchema>;

/** The stored settings for an admin's input; VALIDATION_FAILED names what is wrong. */
export function storeSamlSettings(input: SamlSettingsInput, ctx: { production: boolean }): SamlSettings {
  const { metadataXml, ...explicit } = input;
  let fromMetadata = {};
  if (metadataXml !== undefined) {
    try {
      fromMetadata = parseIdpMetadata(metadataXml);
    } catch (e) {
      if (e instanceof MetadataError) throw new AppError('VALIDATION_FAILED', { detail: `settings.metadataXml: ${e.message}` });
      throw e;
    }
  }
  const defined = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined));
  // Metadata, when sent, is the IdP's word on its side (entityID, SSO URL, certificates): it wins
  // over the fields, so re-sending fresh metadata over stored settings rotates the certificates.
  const r = samlSettingsSchema.safeParse({ ...defined, ...fromMetadata });
  if (!r.success) {
    throw new AppError('VALIDATION_FAILED', { detail: r.error.issues.slice(0, 5).map((i) => `settings.${i.path.join('.')}: ${i.message}`).join('; ') });
  }
  // Plain http (loopback only, by the schema) is for tests and development, never production.
  if (ctx.production && [r.data.ssoUrl, r.data.acsUrl].some((u) => new URL(u).protocol !== 'https:')) {
    throw new AppError('VALIDATION_FAILED', { detail: 'settings.ssoUrl/acsUrl: must be https in production' });
  }
  return r.data;
}

/** The admin's view: everything (a SAML IdP's settings hold no secret; certificates are public). */
export const presentSamlSettings = (s: SamlSettings): Record<string, unknown> => ({ ...s });
