import type { Queryable } from '../db/db.ts';

/**
 * Reading the audit chain for the admin API: filters, newest-first pages keyed on `seq` (the
 * chain order, so rows appended while paging never shift a page), and ascending batches for the
 * JSONL export. Reads only; the chain check is `Audit.verify()` (src/audit/audit.ts).
 */
export interface AuditFilter {
  actor?: string;
  subject?: string;
  /** An exact type (`login.failed`) or every type of a noun (`login.*`). */
  type?: string;
  outcome?: 'success' | 'failure';
  from?: string; // ISO 8601, inclusive
  to?: string; // ISO 8601, exclusive
}

export interface AuditRow {
  seq: number;
  id: string;
  at: string;
  type: string;
  actor: string | null;
  subject: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  outcome: 'success' | 'failure';
  prevHash: string;
  hash: string;
}

/**
 * Which events are failures: something refused, failed or detected as an attack (`login.failed`,
 * `authorization.denied`, `refresh.reuse_detected`, a flow's lock). Everything else, an
 * administrator's lock included, is a success. By name, so new `*.failed`/`*.denied`/`*.refused`
 * types are classified without a list to keep in step.
 */
export const FAILURE_TYPE_SQL = `(type ~ '[.](\\w+_)?(failed|denied|refused|reuse_detected|clone_suspected|reported_fraudulent)$' OR type IN ('login.locked', 'mfa.locked'))`;

interface Raw {
  seq: string | number; id: string; at: Date; type: string; actor: string | null; subject: string | null; reason: string | null;
  data: Record<string, unknown> | string; prev_hash: string; hash: string; failure: boolean;
}

const present = (r: Raw): AuditRow => ({
  seq: Number(r.seq),
  id: r.id,
  at: r.at.toISOString(),
  type: r.type,
  actor: r.actor,
  subject: r.subject,
  reason: r.reason,
  data: typeof r.data === 'string' ? (JSON.parse(r.data) as Record<string, unknown>) : r.data,
  outcome: r.failure ? 'failure' : 'success',
  prevHash: r.prev_hash,
  hash: r.hash,
});

function where(f: AuditFilter, params: unknown[]): string[] {
  const p = (v: unknown) => `$${params.push(v)}`;
  const w: string[] = [];
  if (f.actor !== undefined) w.push(`actor = ${p(f.actor)}`);
  if (f.subject !== undefined) w.push(`subject = ${p(f.subject)}`);
  if (f.type?.endsWith('.*')) w.push(`type LIKE ${p(`${f.type.slice(0, -2)}.%`)}`);
  else if (f.type !== undefined) w.push(`type = ${p(f.type)}`);
  if (f.outcome === 'failure') w.push(FAILURE_TYPE_SQL);
  if (f.outcome === 'success') w.push(`NOT ${FAILURE_TYPE_SQL}`);
  if (f.from !== undefined) w.push(`at >= ${p(f.from)}::timestamptz`);
  if (f.to !== undefined) w.push(`at < ${p(f.to)}::timestamptz`);
  return w;
}

const SELECT = `SELECT seq, id, at, type, actor, subject, reason, data, prev_hash, hash, ${FAILURE_TYPE_SQL} AS failure FROM audit_events`;

/** Newest first; `before` is the `seq` the previous page ended at. */
export async function listAudit(db: Queryable, f: AuditFilter, page: { before?: number; limit: number }): Promise<{ items: AuditRow[]; last: number | null; more: boolean }> {
  const params: unknown[] = [];
  const w = where(f, params);
  if (page.before !== undefined) w.push(`seq < $${params.push(page.before)}`);
  const { rows } = await db.query<Raw>(`${SELECT} ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.push(page.limit + 1)}`, params);
  const items = rows.slice(0, page.limit).map(present);
  return { items, last: items.at(-1)?.seq ?? null, more: rows.length > page.limit };
}

/** Oldest first (the chain's order), in batches: memory stays flat however many rows are exported. */
export async function* exportAudit(db: Queryable, f: AuditFilter, o: { after?: number; max: number; batch?: number }): AsyncGenerator<AuditRow> {
  let after = o.after ?? 0;
  let left = o.max;
  const batch = o.batch ?? 500;
  while (left > 0) {
    const params: unknown[] = [];
    const w = [...where(f, params), `seq > $${params.push(after)}`];
    const n = Math.min(batch, left);
    const { rows } = await db.query<Raw>(`${SELECT} WHERE ${w.join(' AND ')} ORDER BY seq LIMIT $${params.push(n)}`, params);
    for (const r of rows) yield present(r);
    if (rows.length < n) return;
    after = Number(rows[rows.length - 1].seq);
    left -= rows.length;
  }
}
