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

/** How long a process trusts its list of upstream-password domains (another process's change shows within it). */
export const PASSWORD_DOMAINS_TTL_MS = 10_000;

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

  /**
   * Domain → slug of the (few, legacy) providers that check passwords upstream, read at most once
   * per PASSWORD_DOMAINS_TTL_MS: every password login asks, and most deployments have none, so it
   * costs no statement per login. This process forgets it on any change of a provider or
   * organisation; another process sees a change within the TTL.
   */
  let pwDomains: { at: number; map: Promise<Map<string, string>> } | null = null;
  function passwordDomains(): Promise<Map<string, string>> {
    if (pwDomains && clock.now() - pwDomains.at < PASSWORD_DOMAINS_TTL_MS) return pwDomains.map;
    const entry = {
      at: clock.now(),
      map: db
        .query<{ domain: string; slug: string }>(
          `SELECT od.domain, p.slug FROM organisation_domains od JOIN organisations o ON o.id = od.organisation_id
             JOIN identity_providers p ON p.id = o.provider_id AND p.enabled AND p.type = 'oidc'
            WHERE p.settings->>'upstreamPassword' = 'true'`,
        )
        .then((r) => new Map(r.rows.map((x) => [x.domain, x.slug]))),
    };
    pwDomains = entry;
    // A failed read is not kept: the next login asks again (and this one fails closed).
    entry.map.catch(() => {
      if (pwDomains === entry) pwDomains = null;
    });
    return entry.map;
  }

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
    pwDomains = null;
    return id;
  }

  /** The enabled provider of the organisation owning the identifier's email domain. */
  async function homeProvider(identifier: string) {
    const d = emailDomain(identifier);
    if (!d) return null;
    const { rows } = await db.query<{ slug: string; upstream_password: boolean }>(
      `SELECT p.slug, coalesce(p.settings->>'upstreamPassword', 'false') = 'true' AS upstream_password
         FROM organisation_domains od JOIN organisations o ON o.id = od.organisation_id
         JOIN identity_providers p ON p.id = o.provider_id AND p.enabled WHERE od.domain = $1`,
      [d],
    );
    return rows[0] ?? null;
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
        pwDomains = null; // again after the commit: a read during the transaction saw the old rows
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
      const gone = (await db.query('DELETE FROM organisations WHERE id = $1', [id])).rowCount === 1;
      pwDomains = null;
      return gone;
    },
    /**
     * Home-realm discovery: the enabled provider of the organisation owning the identifier's
     * email domain, or null (then the person signs in locally). Reads nothing about accounts, so
     * the answer cannot tell whether one exists.
     */
    async providerFor(identifier: string): Promise<string | null> {
      const r = await homeProvider(identifier);
      // A provider checking passwords upstream keeps its people on the password step.
      return r && !r.upstream_password ? r.slug : null;
    },
    /**
     * The enabled OIDC provider that checks the passwords of the identifier's organisation at its
     * token endpoint (`upstreamPassword`, legacy), or null: then the password is checked locally.
     */
    async passwordProviderFor(identifier: string): Promise<string | null> {
      const d = emailDomain(identifier);
      return d ? ((await passwordDomains()).get(d) ?? null) : null;
    },
    /** A provider or organisation changed: the next password login reads the domains afresh. */
    forgetPasswordDomains() {
      pwDomains = null;
    },
  };
}

export type OrganisationStore = ReturnType<typeof createOrganisationStore>;
