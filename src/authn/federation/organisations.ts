import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../../clock.ts';
import type { Db, Queryable } from '../../db/db.ts';
import { isUniqueViolation } from '../../db/db.ts';
import { AppError } from '../../errors.ts';
import { SLUG } from './providers.ts';

export const OrganisationSchema = z
  .object({
    slug: SLUG,
    name: z.string().trim().min(1).max(200),
    /** The slug of the identity provider its people sign in at; null: they use local sign-in. */
    provider: SLUG.nullable().default(null),
    domains: z
      .array(z.string().trim().toLowerCase().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'a domain name'))
      .max(100)
      .default([]),
  })
  .strict();
export type OrganisationInput = z.infer<typeof OrganisationSchema>;

export interface OrganisationView {
  id: string;
  slug: string;
  name: string;
  provider: string | null;
  domains: string[];
  createdAt: string;
}

/** The domain of an email-like identifier, lower-cased; null when it has none. */
export function emailDomain(identifier: string): string | null {
  const at = identifier.lastIndexOf('@');
  if (at < 1 || at === identifier.length - 1) return null;
  return identifier.slice(at + 1).trim().toLowerCase();
}

/** Organisations (tenants) and their email domains: home-realm discovery reads them. */
export function createOrganisationStore(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;

  const SELECT = `SELECT o.id, o.slug, o.name, p.slug AS provider, o.created_at,
      coalesce((SELECT json_agg(domain ORDER BY domain) FROM organisation_domains WHERE organisation_id = o.id), '[]'::json) AS domains
    FROM organisations o LEFT JOIN identity_providers p ON p.id = o.provider_id`;
  const view = (r: { id: string; slug: string; name: string; provider: string | null; domains: string[]; created_at: Date }): OrganisationView => ({
    id: r.id,
    slug: r.slug,
    name: r.name,
    provider: r.provider,
    domains: r.domains,
    createdAt: r.created_at.toISOString(),
  });

  /** Creates or (by slug) replaces an organisation and its domains, in `q` (a transaction). */
  async function upsert(input: OrganisationInput, q: Queryable): Promise<string> {
    let providerId: string | null = null;
    if (input.provider) {
      const p = await q.query<{ id: string }>('SELECT id FROM identity_providers WHERE slug = $1', [input.provider]);
      if (!p.rows[0]) throw new AppError('VALIDATION_FAILED', { detail: `provider: no identity provider ${input.provider}` });
      providerId = p.rows[0].id;
    }
    const { rows } = await q.query<{ id: string }>(
      `INSERT INTO organisations (id, slug, name, provider_id, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, provider_id = EXCLUDED.provider_id RETURNING id`,
      [randomUUID(), input.slug, input.name, providerId, new Date(clock.now())],
    );
    const id = rows[0].id;
    await q.query('DELETE FROM organisation_domains WHERE organisation_id = $1', [id]);
    for (const d of new Set(input.domains)) {
      const r = await q.query('INSERT INTO organisation_domains (domain, organisation_id) VALUES ($1, $2) ON CONFLICT (domain) DO NOTHING', [d, id]);
      if (r.rowCount !== 1) throw new AppError('CONFLICT', { detail: `The domain ${d} belongs to another organisation.` });
    }
    return id;
  }

  return {
    upsert,
    async create(input: OrganisationInput): Promise<OrganisationView> {
      try {
        const id = await db.tx(async (q) => {
          const exists = await q.query('SELECT 1 FROM organisations WHERE slug = $1', [input.slug]);
          if (exists.rowCount) throw new AppError('CONFLICT', { detail: 'An organisation with this slug exists.' });
          return upsert(input, q);
        });
        return (await this.get(id))!;
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('CONFLICT');
        throw e;
      }
    },
    async get(id: string): Promise<OrganisationView | null> {
      if (!/^[0-9a-f-]{36}$/.test(id)) return null;
      const { rows } = await db.query<any>(`${SELECT} WHERE o.id = $1`, [id]);
      return rows[0] ? view(rows[0]) : null;
    },
    async list(): Promise<OrganisationView[]> {
      return (await db.query<any>(`${SELECT} ORDER BY o.slug`)).rows.map(view);
    },
    async remove(id: string): Promise<boolean> {
      if (!/^[0-9a-f-]{36}$/.test(id)) return false;
      return (await db.query('DELETE FROM organisations WHERE id = $1', [id])).rowCount === 1;
    },
    /**
     * Home-realm discovery: the enabled provider of the organisation owning the identifier's
     * email domain, or null (then the person signs in locally). Reads nothing about accounts, so
     * the answer cannot tell whether one exists.
     */
    async providerFor(identifier: string): Promise<string | null> {
      const d = emailDomain(identifier);
      if (!d) return null;
      const { rows } = await db.query<{ slug: string }>(
        `SELECT p.slug FROM organisation_domains od JOIN organisations o ON o.id = od.organisation_id
           JOIN identity_providers p ON p.id = o.provider_id AND p.enabled WHERE od.domain = $1`,
        [d],
      );
      return rows[0]?.slug ?? null;
    },
  };
}

export type OrganisationStore = ReturnType<typeof createOrganisationStore>;
