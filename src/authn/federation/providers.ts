import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../../clock.ts';
import type { Db, Queryable } from '../../db/db.ts';
import { isUniqueViolation } from '../../db/db.ts';
import type { Sealer } from '../../crypto/seal.ts';
import { AppError } from '../../errors.ts';
import { parseSettings, protocolOf } from './settings.ts';

export const SLUG = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes');
const domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'a domain name');
const upstreamValue = z.string().min(1).max(200);

/** The fields every provider has, whatever its protocol (settings are checked per type). */
const Common = {
  displayName: z.string().trim().min(1).max(100),
  enabled: z.boolean(),
  jitProvisioning: z.boolean(),
  linkByVerifiedEmail: z.boolean(),
  allowedEmailDomains: z.array(domain).max(100),
  trustUpstreamMfa: z.boolean(),
  mfaAmrValues: z.array(upstreamValue).max(20),
  mfaAcrValues: z.array(upstreamValue).max(20),
  mfaMaxAgeSeconds: z.number().int().min(1).max(86_400),
};

export const CreateProviderSchema = z
  .object({
    slug: SLUG,
    type: z.enum(['oidc', 'saml']),
    displayName: Common.displayName,
    enabled: Common.enabled.default(true),
    jitProvisioning: Common.jitProvisioning.default(false),
    linkByVerifiedEmail: Common.linkByVerifiedEmail.default(false),
    allowedEmailDomains: Common.allowedEmailDomains.default([]),
    trustUpstreamMfa: Common.trustUpstreamMfa.default(false),
    mfaAmrValues: Common.mfaAmrValues.default(['mfa']),
    mfaAcrValues: Common.mfaAcrValues.default([]),
    mfaMaxAgeSeconds: Common.mfaMaxAgeSeconds.default(900),
    settings: z.record(z.string(), z.unknown()),
  })
  .strict();
export type CreateProvider = z.infer<typeof CreateProviderSchema>;

export const UpdateProviderSchema = z
  .object({ ...Object.fromEntries(Object.entries(Common).map(([k, v]) => [k, v.optional()])), settings: z.record(z.string(), z.unknown()).optional() })
  .strict() as z.ZodType<Partial<Omit<CreateProvider, 'slug' | 'type'>>>;

export interface ProviderRow {
  id: string;
  slug: string;
  display_name: string;
  type: 'oidc' | 'saml';
  enabled: boolean;
  settings: Record<string, unknown>;
  jit_provisioning: boolean;
  link_by_verified_email: boolean;
  allowed_email_domains: string[];
  trust_upstream_mfa: boolean;
  mfa_amr_values: string[];
  mfa_acr_values: string[];
  mfa_max_age_seconds: number;
  managed_by: 'api' | 'config';
  created_at: Date;
  updated_at: Date;
}

export interface MappingRow {
  id: string;
  provider_id: string;
  group_name: string;
  role: string;
  active: boolean;
  created_at: Date;
}

export const MappingSchema = z.object({ group: z.string().min(1).max(256), role: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), active: z.boolean().default(true) }).strict();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const COLS = `id, slug, display_name, type, enabled, settings, jit_provisioning, link_by_verified_email, allowed_email_domains,
  trust_upstream_mfa, mfa_amr_values, mfa_acr_values, mfa_max_age_seconds, managed_by, created_at, updated_at`;

/** A provider as the admin API shows it: settings through the protocol's `present` (no secret). */
export function presentProvider(p: ProviderRow) {
  return {
    id: p.id,
    slug: p.slug,
    type: p.type,
    ...rowToInput(p),
    managedBy: p.managed_by,
    settings: protocolOf(p.type).present(p.settings),
    createdAt: p.created_at.toISOString(),
    updatedAt: p.updated_at.toISOString(),
  };
}

export const presentMapping = (m: MappingRow) => ({ id: m.id, group: m.group_name, role: m.role, active: m.active, createdAt: m.created_at.toISOString() });

/** Identity providers, their group → role mappings, and organisations for home-realm discovery. */
export function createProviderStore(deps: { db: Db; clock: Clock; sealer: Sealer; production: boolean; /** After a provider was created, changed or removed (caches forget). */ onChange?: () => void }) {
  const { db, clock, sealer } = deps;
  const now = () => new Date(clock.now());

  const one = async (where: string, arg: string, q: Queryable = db) =>
    (await q.query<ProviderRow>(`SELECT ${COLS} FROM identity_providers WHERE ${where}`, [arg])).rows[0] ?? null;

  async function create(input: CreateProvider, managedBy: 'api' | 'config' = 'api', q: Queryable = db): Promise<ProviderRow> {
    const id = randomUUID();
    const settings = protocolOf(input.type).store(parseSettings(input.type, input.settings), { providerId: id, sealer, previous: null, production: deps.production });
    try {
      const { rows } = await q.query<ProviderRow>(
        `INSERT INTO identity_providers (id, slug, display_name, type, enabled, settings, jit_provisioning, link_by_verified_email,
            allowed_email_domains, trust_upstream_mfa, mfa_amr_values, mfa_acr_values, mfa_max_age_seconds, managed_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING ${COLS}`,
        [id, input.slug, input.displayName, input.type, input.enabled, JSON.stringify(settings), input.jitProvisioning, input.linkByVerifiedEmail,
          input.allowedEmailDomains, input.trustUpstreamMfa, input.mfaAmrValues, input.mfaAcrValues, input.mfaMaxAgeSeconds, managedBy, now()],
      );
      deps.onChange?.();
      return rows[0];
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'An identity provider with this slug exists.' });
      throw e;
    }
  }

  async function update(id: string, patch: Partial<Omit<CreateProvider, 'slug' | 'type'>>, q: Queryable = db): Promise<ProviderRow> {
    const cur = UUID.test(id) ? await one('id = $1', id, q) : null;
    if (!cur) throw new AppError('NOT_FOUND');
    const proto = protocolOf(cur.type);
    // Settings are merged over what the admin can see (the secret stays unless a new one is sent).
    const settings = patch.settings
      ? proto.store(parseSettings(cur.type, { ...withoutFlags(proto.present(cur.settings)), ...patch.settings }), { providerId: id, sealer, previous: cur.settings, production: deps.production })
      : cur.settings;
    const m = { ...rowToInput(cur), ...patch };
    const { rows } = await q.query<ProviderRow>(
      `UPDATE identity_providers SET display_name = $2, enabled = $3, settings = $4::jsonb, jit_provisioning = $5, link_by_verified_email = $6,
              allowed_email_domains = $7, trust_upstream_mfa = $8, mfa_amr_values = $9, mfa_acr_values = $10, mfa_max_age_seconds = $11, updated_at = $12
        WHERE id = $1 RETURNING ${COLS}`,
      [id, m.displayName, m.enabled, JSON.stringify(settings), m.jitProvisioning, m.linkByVerifiedEmail, m.allowedEmailDomains, m.trustUpstreamMfa,
        m.mfaAmrValues, m.mfaAcrValues, m.mfaMaxAgeSeconds, now()],
    );
    deps.onChange?.();
    return rows[0];
  }

  return {
    create,
    update,
    get: (id: string) => (UUID.test(id) ? one('id = $1', id) : Promise.resolve(null)),
    bySlug: (slug: string) => (SLUG.safeParse(slug).success ? one('slug = $1', slug) : Promise.resolve(null)),
    async list(): Promise<ProviderRow[]> {
      return (await db.query<ProviderRow>(`SELECT ${COLS} FROM identity_providers ORDER BY slug`)).rows;
    },
    async enabled(): Promise<ProviderRow[]> {
      return (await db.query<ProviderRow>(`SELECT ${COLS} FROM identity_providers WHERE enabled ORDER BY display_name, slug`)).rows;
    },
    async remove(id: string): Promise<boolean> {
      if (!UUID.test(id)) return false;
      const gone = (await db.query('DELETE FROM identity_providers WHERE id = $1', [id])).rowCount === 1;
      deps.onChange?.();
      return gone;
    },
    /** The provider's client secret in plain text, for the token endpoint only. */
    openSecret(sealed: string, aad: string): string {
      return sealer.open(sealed, aad).toString('utf8');
    },

    mappings: {
      async list(providerId: string): Promise<MappingRow[]> {
        return (await db.query<MappingRow>('SELECT * FROM idp_role_mappings WHERE provider_id = $1 ORDER BY group_name, role', [providerId])).rows;
      },
      async add(providerId: string, m: z.infer<typeof MappingSchema>, q: Queryable = db): Promise<MappingRow> {
        const known = await q.query('SELECT 1 FROM roles WHERE name = $1', [m.role]);
        if (!known.rowCount) throw new AppError('VALIDATION_FAILED', { detail: `role: unknown role ${m.role}` });
        try {
          const { rows } = await q.query<MappingRow>(
            'INSERT INTO idp_role_mappings (id, provider_id, group_name, role, active, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
            [randomUUID(), providerId, m.group, m.role, m.active, now()],
          );
          return rows[0];
        } catch (e) {
          if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'This group is already mapped to this role.' });
          throw e;
        }
      },
      async setActive(providerId: string, id: string, active: boolean): Promise<MappingRow | null> {
        if (!UUID.test(id)) return null;
        const { rows } = await db.query<MappingRow>('UPDATE idp_role_mappings SET active = $3 WHERE id = $1 AND provider_id = $2 RETURNING *', [id, providerId, active]);
        return rows[0] ?? null;
      },
      async remove(providerId: string, id: string): Promise<boolean> {
        if (!UUID.test(id)) return false;
        return (await db.query('DELETE FROM idp_role_mappings WHERE id = $1 AND provider_id = $2', [id, providerId])).rowCount === 1;
      },
    },
  };
}

export type ProviderStore = ReturnType<typeof createProviderStore>;

const rowToInput = (p: ProviderRow) => ({
  displayName: p.display_name,
  enabled: p.enabled,
  jitProvisioning: p.jit_provisioning,
  linkByVerifiedEmail: p.link_by_verified_email,
  allowedEmailDomains: p.allowed_email_domains,
  trustUpstreamMfa: p.trust_upstream_mfa,
  mfaAmrValues: p.mfa_amr_values,
  mfaAcrValues: p.mfa_acr_values,
  mfaMaxAgeSeconds: p.mfa_max_age_seconds,
});

/** The public view minus its read-only flags (`clientSecretSet`…), to merge an update over. */
const withoutFlags = (v: Record<string, unknown>) => Object.fromEntries(Object.entries(v).filter(([k]) => !/Set$/.test(k)));
