import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';

/**
 * Trusted token issuers: who may sign the JWTs Threshold accepts from outside (RFC 8693 subject
 * tokens, `Authorization: okta <jwt>`, Kubernetes service-account tokens). Rows live in
 * `trusted_issuers` (migration 0120); TRUSTED_ISSUERS_FILE (a JSON array of the same shape as the
 * admin API body) is applied at start and wins for the issuers it names (`source = 'file'`).
 */

/** Asymmetric JWS algorithms only: `none` and HS* (a shared secret "verified" with a public key) never. */
export const ALLOWED_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
const LABEL = /^[A-Za-z0-9_.:-]{1,128}$/;
/** A Kubernetes-style subject, optionally ending in `*` (e.g. `system:serviceaccount:payments:*`). */
const SUBJECT_PATTERN = /^[A-Za-z0-9_.:@/-]{1,253}\*?$/;
const httpUrl = z
  .string()
  .max(2048)
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const SubjectMappingSchema = z
  .object({
    subject: z.string().regex(SUBJECT_PATTERN, 'a subject, optionally ending in *'),
    roles: z.array(z.string().regex(LABEL)).max(50).default([]),
    /** Where the roles apply; omitted = the service account's own namespace only. */
    namespaces: z.array(z.string().regex(LABEL)).max(100).optional(),
  })
  .strict();

export const IssuerInputSchema = z
  .object({
    issuer: z.string().min(1).max(512).regex(/^[\x21-\x7e]+$/, 'visible ASCII'),
    discoveryUrl: httpUrl.optional(),
    jwksUri: httpUrl.optional(),
    audiences: z.array(z.string().min(1).max(512)).min(1).max(20),
    purposes: z.enum(['token_exchange', 'workload', 'both']),
    algorithms: z.array(z.enum(ALLOWED_ALGS)).min(1).max(ALLOWED_ALGS.length).default(['RS256', 'ES256', 'EdDSA']),
    maxTokenAgeSeconds: z.number().int().positive().max(7 * 86400).optional(),
    linkByEmail: z.boolean().default(false),
    trustMfa: z.boolean().default(false),
    subjectMappings: z.array(SubjectMappingSchema).max(200).default([]),
    tokenReviewUrl: httpUrl.optional(),
    enabled: z.boolean().default(true),
  })
  .strict()
  .refine((v) => v.discoveryUrl !== undefined || v.jwksUri !== undefined, { message: 'discoveryUrl or jwksUri is required', path: ['jwksUri'] });
export type IssuerInput = z.infer<typeof IssuerInputSchema>;

export interface TrustedIssuer extends IssuerInput {
  id: string;
  source: 'api' | 'file';
  createdAt: string;
  updatedAt: string;
}

export type Purpose = 'token_exchange' | 'workload';

interface Row {
  id: string;
  issuer: string;
  discovery_url: string | null;
  jwks_uri: string | null;
  audiences: string[];
  purposes: IssuerInput['purposes'];
  algorithms: IssuerInput['algorithms'];
  max_token_age_s: number | null;
  link_by_email: boolean;
  trust_mfa: boolean;
  subject_mappings: IssuerInput['subjectMappings'];
  token_review_url: string | null;
  enabled: boolean;
  source: 'api' | 'file';
  created_at: Date;
  updated_at: Date;
}

const toIssuer = (r: Row): TrustedIssuer => ({
  id: r.id,
  issuer: r.issuer,
  ...(r.discovery_url ? { discoveryUrl: r.discovery_url } : {}),
  ...(r.jwks_uri ? { jwksUri: r.jwks_uri } : {}),
  audiences: r.audiences,
  purposes: r.purposes,
  algorithms: r.algorithms,
  ...(r.max_token_age_s ? { maxTokenAgeSeconds: r.max_token_age_s } : {}),
  linkByEmail: r.link_by_email,
  trustMfa: r.trust_mfa,
  subjectMappings: r.subject_mappings,
  ...(r.token_review_url ? { tokenReviewUrl: r.token_review_url } : {}),
  enabled: r.enabled,
  source: r.source,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export const servesPurpose = (i: IssuerInput, p: Purpose) => i.enabled && (i.purposes === 'both' || i.purposes === p);

export interface IssuerRegistry {
  /** The enabled issuer with this exact `iss` (from memory, reloaded every `reloadMs`). */
  byIssuer(iss: string): Promise<TrustedIssuer | null>;
  list(): Promise<TrustedIssuer[]>;
  get(id: string): Promise<TrustedIssuer | null>;
  /** Insert or replace by `issuer`; a file-managed row is only replaced by the file. */
  upsert(input: IssuerInput, source: 'api' | 'file'): Promise<{ issuer: TrustedIssuer; created: boolean } | 'file_managed'>;
  remove(id: string): Promise<TrustedIssuer | 'file_managed' | null>;
  /** Apply TRUSTED_ISSUERS_FILE: its issuers become file-managed rows; file rows it no longer names go. */
  loadFile(path: string): Promise<number>;
  /** Drop the in-memory copy (after a change in this process). */
  invalidate(): void;
}

const COLS = 'id, issuer, discovery_url, jwks_uri, audiences, purposes, algorithms, max_token_age_s, link_by_email, trust_mfa, subject_mappings, token_review_url, enabled, source, created_at, updated_at';

export function createIssuerRegistry(deps: { db: Db; clock: Clock; reloadMs?: number }): IssuerRegistry {
  const { db, clock } = deps;
  const reloadMs = deps.reloadMs ?? 5000;
  let cache: { at: number; byIss: Map<string, TrustedIssuer> } | null = null;
  let loading: Promise<Map<string, TrustedIssuer>> | null = null;

  async function all(): Promise<TrustedIssuer[]> {
    const { rows } = await db.query<Row>(`SELECT ${COLS} FROM trusted_issuers ORDER BY issuer`);
    return rows.map(toIssuer);
  }

  /** One reload at a time; a change in another process is seen within `reloadMs`. */
  async function snapshot(): Promise<Map<string, TrustedIssuer>> {
    if (cache && clock.now() - cache.at < reloadMs) return cache.byIss;
    loading ??= all()
      .then((list) => {
        const byIss = new Map(list.filter((i) => i.enabled).map((i) => [i.issuer, i]));
        cache = { at: clock.now(), byIss };
        return byIss;
      })
      .finally(() => {
        loading = null;
      });
    return loading;
  }

  async function upsert(input: IssuerInput, source: 'api' | 'file') {
    const now = new Date(clock.now());
    const v = IssuerInputSchema.parse(input);
    const { rows } = await db.query<Row & { inserted: boolean }>(
      `INSERT INTO trusted_issuers (id, issuer, discovery_url, jwks_uri, audiences, purposes, algorithms, max_token_age_s,
                                    link_by_email, trust_mfa, subject_mappings, token_review_url, enabled, source, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9, $10, $11::jsonb, $12, $13, $14, $15, $15)
       ON CONFLICT (issuer) DO UPDATE SET discovery_url = EXCLUDED.discovery_url, jwks_uri = EXCLUDED.jwks_uri,
         audiences = EXCLUDED.audiences, purposes = EXCLUDED.purposes, algorithms = EXCLUDED.algorithms,
         max_token_age_s = EXCLUDED.max_token_age_s, link_by_email = EXCLUDED.link_by_email, trust_mfa = EXCLUDED.trust_mfa,
         subject_mappings = EXCLUDED.subject_mappings, token_review_url = EXCLUDED.token_review_url, enabled = EXCLUDED.enabled,
         source = EXCLUDED.source, updated_at = EXCLUDED.updated_at
       WHERE trusted_issuers.source = 'api' OR EXCLUDED.source = 'file'
       RETURNING ${COLS}, (xmax = 0) AS inserted`,
      [
        randomUUID(), v.issuer, v.discoveryUrl ?? null, v.jwksUri ?? null, JSON.stringify(v.audiences), v.purposes,
        JSON.stringify(v.algorithms), v.maxTokenAgeSeconds ?? null, v.linkByEmail, v.trustMfa, JSON.stringify(v.subjectMappings),
        v.tokenReviewUrl ?? null, v.enabled, source, now,
      ],
    );
    cache = null;
    if (!rows[0]) return 'file_managed' as const;
    return { issuer: toIssuer(rows[0]), created: rows[0].inserted };
  }

  return {
    async byIssuer(iss) {
      return (await snapshot()).get(iss) ?? null;
    },
    list: all,
    async get(id) {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM trusted_issuers WHERE id = $1`, [id]);
      return rows[0] ? toIssuer(rows[0]) : null;
    },
    upsert,
    async remove(id) {
      const found = await this.get(id);
      if (!found) return null;
      if (found.source === 'file') return 'file_managed';
      await db.query("DELETE FROM trusted_issuers WHERE id = $1 AND source = 'api'", [id]);
      cache = null;
      return found;
    },
    async loadFile(path) {
      const parsed = z.array(IssuerInputSchema).max(500).safeParse(JSON.parse(await readFile(path, 'utf8')));
      if (!parsed.success) throw new Error(`TRUSTED_ISSUERS_FILE ${path}: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      for (const i of parsed.data) await upsert(i, 'file');
      await db.query("DELETE FROM trusted_issuers WHERE source = 'file' AND NOT (issuer = ANY($1::text[]))", [parsed.data.map((i) => i.issuer)]);
      cache = null;
      return parsed.data.length;
    },
    invalidate() {
      cache = null;
    },
  };
}
