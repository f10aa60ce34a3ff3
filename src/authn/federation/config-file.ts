import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Db } from '../../db/db.ts';
import type { Audit, AuditEvent } from '../../audit/audit.ts';
import { CreateProviderSchema, MappingSchema, type ProviderStore } from './providers.ts';
import { OrganisationSchema, type OrganisationStore } from './organisations.ts';

/**
 * IDP_CONFIG_FILE: identity providers, their group → role mappings and organisations, declared
 * for a deployment and upserted (by slug) at every start. The file is the truth for what it names:
 * a provider's mappings become exactly the file's. A client secret may be given by the name of an
 * environment variable (`settings.clientSecretEnv`) so the file itself holds no secret.
 */
export const IdpConfigFileSchema = z
  .object({
    providers: z.array(CreateProviderSchema.extend({ mappings: z.array(MappingSchema).max(500).default([]) })).max(100).default([]),
    organisations: z.array(OrganisationSchema).max(1000).default([]),
  })
  .strict();

export class IdpConfigError extends Error {}

/** Reads and applies the file in one transaction; an invalid file changes nothing and stops the start. */
export async function applyIdpConfigFile(
  path: string,
  deps: { db: Db; audit: Audit; providers: ProviderStore; organisations: OrganisationStore; env?: Record<string, string | undefined> },
): Promise<{ providers: number; organisations: number }> {
  const env = deps.env ?? process.env;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new IdpConfigError(`IDP_CONFIG_FILE: cannot read ${path} as JSON (${(e as Error).message})`);
  }
  // Secrets by reference: the named variable's value replaces `clientSecretEnv`.
  for (const p of (raw as { providers?: { settings?: Record<string, unknown> }[] })?.providers ?? []) {
    const name = p?.settings?.clientSecretEnv;
    if (typeof name !== 'string') continue;
    const value = env[name];
    if (!value) throw new IdpConfigError(`IDP_CONFIG_FILE: settings.clientSecretEnv names ${name}, which is not set`);
    delete p.settings!.clientSecretEnv;
    p.settings!.clientSecret = value;
  }
  const parsed = IdpConfigFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new IdpConfigError(`IDP_CONFIG_FILE: ${parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const doc = parsed.data;
  const audits: AuditEvent[] = [];
  await deps.db.tx(async (q) => {
    for (const { mappings, ...p } of doc.providers) {
      const existing = await q.query<{ id: string }>('SELECT id FROM identity_providers WHERE slug = $1', [p.slug]);
      let id: string;
      if (existing.rows[0]) {
        id = existing.rows[0].id;
        await deps.providers.update(id, p, q);
        await q.query("UPDATE identity_providers SET managed_by = 'config' WHERE id = $1", [id]);
        audits.push({ type: 'idp.updated', actor: 'config', subject: id, reason: 'CONFIG_FILE', data: { slug: p.slug } });
      } else {
        id = (await deps.providers.create(p, 'config', q)).id;
        audits.push({ type: 'idp.created', actor: 'config', subject: id, reason: 'CONFIG_FILE', data: { slug: p.slug, type: p.type } });
      }
      await q.query('DELETE FROM idp_role_mappings WHERE provider_id = $1', [id]);
      for (const m of mappings) await deps.providers.mappings.add(id, m, q);
    }
    for (const o of doc.organisations) await deps.organisations.upsert(o, q);
  });
  await deps.audit.appendMany(audits);
  return { providers: doc.providers.length, organisations: doc.organisations.length };
}
