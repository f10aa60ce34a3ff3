import { z } from 'zod';
import type { Audit } from '../audit/audit.ts';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { isUniqueViolation } from '../db/db.ts';
import { AppError } from '../errors.ts';
import { DEFAULT_POLICY, PolicyDocumentSchema, type PolicyDocument } from './policy.ts';

/** One stored version. Documents never change once stored: a new rule set is a new version. */
export interface StoredPolicy {
  version: string;
  document: PolicyDocument;
  active: boolean;
  shadow: boolean;
  createdAt: string;
  createdBy: string | null;
}

export interface PolicyStore {
  list(): Promise<{ active: string; shadow: string | null; policies: StoredPolicy[] }>;
  get(version: string): Promise<StoredPolicy | null>;
  /** Store a new version (validated by the caller's schema); CONFLICT when the version exists. */
  create(doc: PolicyDocument, actor: string): Promise<StoredPolicy>;
  /** Make `version` the enforced policy (it stops being the shadow if it was). Audited. */
  activate(version: string, actor: string): Promise<{ previous: string }>;
  /** Score every live login under `version` too, recorded but never enforced. Audited. */
  setShadow(version: string, actor: string): Promise<{ previous: string | null }>;
  /** Stop shadow scoring. Audited; false when nothing was in shadow. */
  clearShadow(actor: string): Promise<boolean>;
  /** The shadow policy, cached for `cacheMs`; null when none (or its document no longer parses). */
  shadowPolicy(): Promise<PolicyDocument | null>;
}

interface Row {
  version: string;
  document: unknown;
  active: boolean;
  shadow: boolean;
  created_at: Date | string;
  created_by: string | null;
}

const COLS = 'version, document, active, shadow, created_at, created_by';
const parseDoc = (raw: unknown) => PolicyDocumentSchema.safeParse(typeof raw === 'string' ? JSON.parse(raw) : raw);

function toStored(r: Row): StoredPolicy {
  const parsed = parseDoc(r.document);
  return {
    version: r.version,
    // A row written outside this API may not parse; show it as stored rather than hide it.
    document: (parsed.success ? parsed.data : r.document) as PolicyDocument,
    active: r.active,
    shadow: r.shadow,
    createdAt: new Date(r.created_at).toISOString(),
    createdBy: r.created_by,
  };
}

/** Version names appear in URLs and in every recorded decision: keep them plain. */
export const PolicyVersionSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, dot, dash or underscore (1-100), starting with a letter or digit');

/**
 * Policy versions with one active and at most one shadow. Every change happens in a transaction
 * that locks the table (two admins activating at once end with exactly one active) and appends
 * its audit event in the same transaction, so a change without its audit row cannot exist.
 *
 * Propagation: the scorer loads the active policy on every job, so activation takes effect on the
 * next login everywhere. The shadow policy is cached per process for `cacheMs` (default 5 s):
 * this process sees a change at once, other API processes within `cacheMs`.
 */
export function createPolicyStore(deps: { db: Db; clock: Clock; audit: Audit; cacheMs?: number; onInvalidShadow?: (version: string) => void }): PolicyStore {
  const { db, clock, audit } = deps;
  const cacheMs = deps.cacheMs ?? 5_000;
  let cache: { at: number; policy: PolicyDocument | null } | null = null;

  async function lockedGet(q: Queryable, version: string): Promise<Row> {
    await q.query('LOCK TABLE risk_policies IN SHARE ROW EXCLUSIVE MODE');
    const { rows } = await q.query<Row>(`SELECT ${COLS} FROM risk_policies WHERE version = $1`, [version]);
    if (!rows[0]) throw new AppError('NOT_FOUND', { detail: `No risk policy version ${version}.` });
    // Never enforce (or shadow) a stored document that does not pass today's schema.
    const parsed = parseDoc(rows[0].document);
    if (!parsed.success || parsed.data.version !== version) {
      throw new AppError('VALIDATION_FAILED', { detail: `Stored policy ${version} does not pass the policy schema; store a corrected version.` });
    }
    return rows[0];
  }

  return {
    async list() {
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM risk_policies ORDER BY created_at DESC, version DESC`);
      const policies = rows.map(toStored);
      return {
        active: policies.find((p) => p.active)?.version ?? DEFAULT_POLICY.version,
        shadow: policies.find((p) => p.shadow)?.version ?? null,
        policies,
      };
    },

    async get(version) {
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM risk_policies WHERE version = $1`, [version]);
      if (rows[0]) return toStored(rows[0]);
      if (version !== DEFAULT_POLICY.version) return null;
      // The built-in default, when no row stores it: active while no stored version is.
      const active = await db.query('SELECT 1 FROM risk_policies WHERE active');
      return { version, document: DEFAULT_POLICY, active: active.rowCount === 0, shadow: false, createdAt: new Date(0).toISOString(), createdBy: null };
    },

    async create(doc, actor) {
      // The built-in default's version is taken: a stored copy would make recorded decisions ambiguous.
      if (doc.version === DEFAULT_POLICY.version) throw new AppError('CONFLICT', { detail: `Version ${doc.version} is the built-in default.` });
      const now = new Date(clock.now());
      try {
        return await db.tx(async (q) => {
          const { rows } = await q.query<Row>(
            `INSERT INTO risk_policies (version, document, active, shadow, created_at, created_by)
             VALUES ($1, $2::jsonb, false, false, $3, $4) RETURNING ${COLS}`,
            [doc.version, JSON.stringify(doc), now, actor],
          );
          await audit.append({ type: 'risk_policy.created', actor, subject: doc.version, reason: 'ADMIN', data: { document: doc } }, q);
          return toStored(rows[0]);
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: `Version ${doc.version} exists; versions are immutable, store a new one.` });
        throw e;
      }
    },

    async activate(version, actor) {
      const r = await db.tx(async (q) => {
        await q.query('LOCK TABLE risk_policies IN SHARE ROW EXCLUSIVE MODE');
        const stored = await q.query('SELECT 1 FROM risk_policies WHERE version = $1', [version]);
        if (version === DEFAULT_POLICY.version && stored.rowCount === 0) {
          // Back to the built-in default (not stored as a row): no stored version is active.
          const { rows } = await q.query<{ version: string }>('UPDATE risk_policies SET active = false WHERE active RETURNING version');
          const previous = rows[0]?.version ?? DEFAULT_POLICY.version;
          await audit.append({ type: 'risk_policy.activated', actor, subject: version, reason: 'ADMIN', data: { previous, wasShadow: false } }, q);
          return { previous };
        }
        const row = await lockedGet(q, version);
        const { rows: prev } = await q.query<{ version: string }>('SELECT version FROM risk_policies WHERE active');
        const previous = prev[0]?.version ?? DEFAULT_POLICY.version;
        // Two statements: a single UPDATE could briefly hold two active rows and trip the unique index.
        await q.query('UPDATE risk_policies SET active = false WHERE active AND version <> $1', [version]);
        await q.query('UPDATE risk_policies SET active = true, shadow = false WHERE version = $1', [version]);
        await audit.append(
          { type: 'risk_policy.activated', actor, subject: version, reason: 'ADMIN', data: { previous, wasShadow: row.shadow } },
          q,
        );
        return { previous };
      });
      cache = null;
      return r;
    },

    async setShadow(version, actor) {
      const r = await db.tx(async (q) => {
        const row = await lockedGet(q, version);
        if (row.active) throw new AppError('CONFLICT', { detail: `Version ${version} is the active policy; shadow another version.` });
        const { rows: prev } = await q.query<{ version: string }>('SELECT version FROM risk_policies WHERE shadow');
        const previous = prev[0]?.version ?? null;
        await q.query('UPDATE risk_policies SET shadow = false WHERE shadow AND version <> $1', [version]);
        await q.query('UPDATE risk_policies SET shadow = true WHERE version = $1', [version]);
        await audit.append({ type: 'risk_policy.shadowed', actor, subject: version, reason: 'ADMIN', data: { previous } }, q);
        return { previous };
      });
      cache = null;
      return r;
    },

    async clearShadow(actor) {
      const r = await db.tx(async (q) => {
        await q.query('LOCK TABLE risk_policies IN SHARE ROW EXCLUSIVE MODE');
        const { rows } = await q.query<{ version: string }>('UPDATE risk_policies SET shadow = false WHERE shadow RETURNING version');
        if (!rows[0]) return false;
        await audit.append({ type: 'risk_policy.shadow_cleared', actor, subject: rows[0].version, reason: 'ADMIN' }, q);
        return true;
      });
      cache = null;
      return r;
    },

    async shadowPolicy() {
      const now = clock.now();
      if (cache && now - cache.at < cacheMs && now >= cache.at) return cache.policy;
      const { rows } = await db.query<{ version: string; document: unknown }>('SELECT version, document FROM risk_policies WHERE shadow LIMIT 1');
      let policy: PolicyDocument | null = null;
      if (rows[0]) {
        const parsed = parseDoc(rows[0].document);
        // A shadow is never enforced, so a broken one is skipped (and reported), not fatal.
        if (parsed.success && parsed.data.version === rows[0].version) policy = parsed.data;
        else deps.onInvalidShadow?.(rows[0].version);
      }
      cache = { at: now, policy };
      return policy;
    },
  };
}
