import { z } from 'zod';
import type { Sealer } from '../../crypto/seal.ts';
import { AppError } from '../../errors.ts';

/**
 * Protocol-specific settings of an identity provider, one entry per `type`: how the admin's
 * input is checked, how it is stored (secrets sealed) and what of it may be shown back. A protocol
 * adds itself with `registerProtocol` (SAML: src/authn/methods/saml/); an IdP of a type with no
 * entry cannot be created.
 */
export interface ProtocolSettings<In = unknown, Stored extends Record<string, unknown> = Record<string, unknown>> {
  /** The admin's input (create: whole; update: merged over the stored public view first). */
  input: z.ZodType<In>;
  /** What is stored in `settings` (secrets sealed with aad bound to the provider id). */
  store(input: In, ctx: { providerId: string; sealer: Sealer; previous: Stored | null; production: boolean }): Stored;
  /** What the admin API answers: never a secret, only whether one is set. */
  present(stored: Stored): Record<string, unknown>;
}

const registry = new Map<string, ProtocolSettings<any, any>>();

export function registerProtocol<In, Stored extends Record<string, unknown>>(type: string, p: ProtocolSettings<In, Stored>) {
  registry.set(type, p);
}

export function protocolOf(type: string): ProtocolSettings<unknown, Record<string, unknown>> {
  const p = registry.get(type);
  if (!p) throw new AppError('VALIDATION_FAILED', { detail: `type: identity providers of type ${type} are not supported by this build` });
  return p;
}

/** Parses settings against the type's schema; the errors name the fields. */
export function parseSettings(type: string, raw: unknown): unknown {
  const r = protocolOf(type).input.safeParse(raw);
  if (!r.success)
    throw new AppError('VALIDATION_FAILED', { detail: r.error.issues.slice(0, 5).map((i) => `settings.${i.path.join('.')}: ${i.message}`).join('; ') });
  return r.data;
}

// ── OIDC ────────────────────────────────────────────────────────────────────────────────────

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * An http issuer is only ever a test or development IdP on this machine: production refuses it,
 * and elsewhere only loopback may be plain http (the tokens and the client secret travel on it).
 */
export function issuerAllowed(issuer: string, production: boolean): boolean {
  const u = new URL(issuer);
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && !production && LOOPBACK_HOSTS.has(u.hostname);
}

const claimName = z.string().min(1).max(100);
const scope = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/, 'a scope token');

export const OidcClaimsSchema = z
  .object({
    subject: claimName.default('sub'),
    email: claimName.default('email'),
    emailVerified: claimName.default('email_verified'),
    name: claimName.default('name'),
    groups: claimName.default('groups'),
  })
  .strict();

export const OidcSettingsSchema = z
  .object({
    issuer: z.string().url().max(500).refine((v) => /^https?:\/\//.test(v), 'an http(s) URL'),
    clientId: z.string().min(1).max(255),
    /** Plain text on input only; stored sealed, never answered. */
    clientSecret: z.string().min(1).max(1024).optional(),
    tokenAuthMethod: z.enum(['client_secret_basic', 'client_secret_post', 'none']).default('client_secret_basic'),
    scopes: z.array(scope).min(1).max(20).default(['openid', 'email', 'profile']).refine((s) => s.includes('openid'), 'must include openid'),
    claims: OidcClaimsSchema.default(OidcClaimsSchema.parse({})),
    /** Read the userinfo endpoint too (claims there win over the ID token's, `sub` must match). */
    useUserinfo: z.boolean().default(false),
    /**
     * Legacy (OAuth 2.1 removes the grant): the people of an organisation signing in at this
     * provider type their password here, and the password step checks it at the provider's token
     * endpoint (resource-owner password grant) instead of redirecting. Off unless set.
     */
    upstreamPassword: z.boolean().default(false),
  })
  .strict();
export type OidcSettingsInput = z.infer<typeof OidcSettingsSchema>;

export interface OidcSettings extends Record<string, unknown> {
  issuer: string;
  clientId: string;
  clientSecretSealed: string | null;
  tokenAuthMethod: 'client_secret_basic' | 'client_secret_post' | 'none';
  scopes: string[];
  claims: z.infer<typeof OidcClaimsSchema>;
  useUserinfo: boolean;
  /** Absent in rows stored before the setting existed: off. */
  upstreamPassword?: boolean;
}

/** The sealed client secret's aad: a ciphertext copied to another provider does not open. */
export const clientSecretAad = (providerId: string) => `idp:${providerId}:client_secret`;

registerProtocol<OidcSettingsInput, OidcSettings>('oidc', {
  input: OidcSettingsSchema,
  store(input, { providerId, sealer, previous, production }) {
    if (!issuerAllowed(input.issuer, production))
      throw new AppError('VALIDATION_FAILED', { detail: 'settings.issuer: must be https (plain http only for a loopback issuer outside production)' });
    // An update that does not send the secret keeps the one stored (the admin never sees it).
    const sealed = input.clientSecret !== undefined ? sealer.seal(input.clientSecret, clientSecretAad(providerId)) : (previous?.clientSecretSealed ?? null);
    if (input.tokenAuthMethod !== 'none' && !sealed) throw new AppError('VALIDATION_FAILED', { detail: 'settings.clientSecret: required for this token auth method' });
    const { clientSecret: _plain, ...rest } = input;
    return { ...rest, clientSecretSealed: input.tokenAuthMethod === 'none' ? null : sealed };
  },
  present(s) {
    const { clientSecretSealed, ...rest } = s;
    return { ...rest, clientSecretSet: clientSecretSealed !== null };
  },
});
