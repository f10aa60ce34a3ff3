import { AppError } from '../errors.ts';
import type { Queryable } from '../db/db.ts';
import { explain, userMessage, type Explanation } from './explain.ts';
import { labelsOf, type StoredLabel } from './labels.ts';

export interface EventFilters {
  /** Identity id, or an email address. */
  user?: string;
  /** One address, or a subnet in CIDR notation. */
  ip?: string;
  decision?: 'allow' | 'step_up' | 'deny';
  reason?: string;
  policyVersion?: string;
  shadowDecision?: 'allow' | 'step_up' | 'deny';
  outcome?: string;
  label?: 'fraud' | 'legit' | 'none';
  from?: Date;
  to?: Date;
}

export interface RiskEventSummary {
  id: string;
  flowId: string | null;
  at: string;
  userId: string | null;
  ip: string | null;
  deviceId: string | null;
  country: string | null;
  outcome: string;
  decision: string | null;
  score: number | null;
  reasons: string[];
  policyVersion: string | null;
  shadow: { policyVersion: string; decision: string | null; score: number | null; reasons: string[] } | null;
  label: 'fraud' | 'legit' | null;
  explanation: Explanation;
}

export interface RiskEventDetail extends RiskEventSummary {
  factors: string[];
  /** The network the attempt came from (login_events' risk history columns; null on rows from before them). */
  asn: number | null;
  netType: string | null;
  netPrefix: string | null;
  /** Every observed signal, whether it fired and what it added to the score. */
  signals: { name: string; fired: boolean; contribution: number }[];
  details: Record<string, unknown>;
  contributions: Record<string, number>;
  /** What the person did after this decision, from the other events of the same login flow. */
  next: { stepUp: 'not_required' | 'completed' | 'failed' | 'abandoned'; finalOutcome: string; factors: string[] };
  labels: StoredLabel[];
  userMessage: string;
}

interface Row {
  id: string;
  flow_id: string | null;
  identity_id: string | null;
  device_id: string | null;
  ip: string | null;
  country: string | null;
  outcome: string;
  signals: unknown;
  policy_version: string | null;
  contributions: Record<string, number> | null;
  score: number | null;
  decision: string | null;
  reasons: string[] | null;
  factors: string[] | null;
  label: 'fraud' | 'legit' | null;
  shadow_policy_version: string | null;
  shadow_decision: string | null;
  shadow_score: number | null;
  shadow_reasons: string[] | null;
  created_at: Date | string;
  at_key: string;
  asn: number | string | null;
  net_type: string | null;
  net_prefix: string | null;
}

const COLS = `id, flow_id, identity_id, device_id, ip, country, outcome, signals, policy_version, contributions, score, decision,
  reasons, factors, label, shadow_policy_version, shadow_decision, shadow_score, shadow_reasons, created_at, asn, net_type, net_prefix,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at_key`;

const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

function summary(r: Row): RiskEventSummary {
  const reasons = json<string[] | null>(r.reasons) ?? [];
  const contributions = json<Record<string, number> | null>(r.contributions) ?? {};
  const signals = json<unknown>(r.signals);
  return {
    id: r.id,
    flowId: r.flow_id,
    at: new Date(r.created_at).toISOString(),
    userId: r.identity_id,
    ip: r.ip,
    // The device id is the device cookie's value, a bearer secret: analysts see its last six characters, as users do.
    deviceId: r.device_id ? `…${r.device_id.slice(-6)}` : null,
    country: r.country,
    outcome: r.outcome,
    decision: r.decision,
    score: r.score,
    reasons,
    policyVersion: r.policy_version,
    shadow: r.shadow_policy_version
      ? { policyVersion: r.shadow_policy_version, decision: r.shadow_decision, score: r.shadow_score, reasons: json<string[] | null>(r.shadow_reasons) ?? [] }
      : null,
    label: r.label,
    explanation: explain({ decision: r.decision, score: r.score, reasons, contributions, signals, policyVersion: r.policy_version, country: r.country }),
  };
}

/** Opaque page position: base64url of the last row's exact timestamp (microseconds) and id. */
export function encodeCursor(atKey: string, id: string): string {
  return Buffer.from(JSON.stringify([atKey, id])).toString('base64url');
}

const AT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Stops a forged or truncated cursor reaching SQL as anything but a checked timestamp and uuid. */
export function decodeCursor(cursor: string): { at: string; id: string } {
  const bad = () => new AppError('VALIDATION_FAILED', { detail: 'cursor: not a cursor returned by this API', extra: { errors: [{ field: 'cursor', message: 'invalid cursor' }] } });
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw bad();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string' || !AT_RE.test(v[0]) || !UUID_RE.test(v[1]) || Number.isNaN(Date.parse(v[0]))) {
    throw bad();
  }
  return { at: v[0], id: v[1] };
}

export interface RiskEvents {
  /** Newest first, `limit` per page; `nextCursor` is null on the last page. */
  list(f: EventFilters, page: { cursor?: string; limit: number }): Promise<{ items: RiskEventSummary[]; nextCursor: string | null }>;
  get(id: string): Promise<RiskEventDetail | null>;
}

export function createRiskEvents(db: Queryable): RiskEvents {
  return {
    async list(f, page) {
      const where: string[] = [];
      const params: unknown[] = [];
      const p = (v: unknown) => {
        params.push(v);
        return `$${params.length}`;
      };
      if (f.user !== undefined) {
        where.push(UUID_RE.test(f.user) ? `identity_id = ${p(f.user)}::uuid` : `identity_id = (SELECT id FROM identities WHERE email = lower(${p(f.user)}))`);
      }
      if (f.ip !== undefined) where.push(f.ip.includes('/') ? `threshold_try_inet(ip) <<= ${p(f.ip)}::inet` : `threshold_try_inet(ip) = ${p(f.ip)}::inet`);
      if (f.decision) where.push(`decision = ${p(f.decision)}`);
      if (f.shadowDecision) where.push(`shadow_decision = ${p(f.shadowDecision)}`);
      if (f.reason) where.push(`reasons ? ${p(f.reason)}`);
      if (f.policyVersion) where.push(`policy_version = ${p(f.policyVersion)}`);
      if (f.outcome) where.push(`outcome = ${p(f.outcome)}`);
      if (f.label === 'none') where.push('label IS NULL');
      else if (f.label) where.push(`label = ${p(f.label)}`);
      if (f.from) where.push(`created_at >= ${p(f.from)}`);
      if (f.to) where.push(`created_at < ${p(f.to)}`);
      if (page.cursor) {
        const c = decodeCursor(page.cursor);
        // Row comparison on the same key as ORDER BY: no row is skipped or repeated across pages.
        where.push(`(created_at, id) < (${p(c.at)}::timestamptz, ${p(c.id)}::uuid)`);
      }
      const { rows } = await db.query<Row>(
        `SELECT ${COLS} FROM login_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY created_at DESC, id DESC LIMIT ${p(page.limit + 1)}`,
        params,
      );
      const more = rows.length > page.limit;
      const items = rows.slice(0, page.limit);
      const last = items.at(-1);
      return { items: items.map(summary), nextCursor: more && last ? encodeCursor(last.at_key, last.id) : null };
    },

    async get(id) {
      if (!UUID_RE.test(id)) return null;
      const { rows } = await db.query<Row>(`SELECT ${COLS} FROM login_events WHERE id = $1`, [id]);
      const r = rows[0];
      if (!r) return null;
      const base = summary(r);
      const rawSignals = json<Record<string, unknown> | null>(r.signals) ?? {};
      const contributions = json<Record<string, number> | null>(r.contributions) ?? {};
      const signals = Object.entries(rawSignals)
        .filter(([k, v]) => k !== 'details' && typeof v === 'boolean')
        .map(([name, fired]) => ({ name, fired: fired as boolean, contribution: contributions[name] ?? 0 }));
      const details = (rawSignals.details ?? {}) as Record<string, unknown>;
      const flow = r.flow_id
        ? (
            await db.query<{ outcome: string; factors: string[] | null }>(
              'SELECT outcome, factors FROM login_events WHERE flow_id = $1 AND (created_at, id) >= ($2::timestamptz, $3::uuid) ORDER BY created_at, id',
              [r.flow_id, r.at_key, r.id],
            )
          ).rows
        : [{ outcome: r.outcome, factors: r.factors }];
      const final = flow.at(-1) ?? { outcome: r.outcome, factors: r.factors };
      const outcomes = new Set(flow.map((e) => e.outcome));
      const stepUp =
        r.decision !== 'step_up'
          ? 'not_required'
          : outcomes.has('succeeded')
            ? 'completed'
            : outcomes.has('locked') || outcomes.has('denied')
              ? 'failed'
              : 'abandoned';
      return {
        ...base,
        factors: json<string[] | null>(r.factors) ?? [],
        asn: r.asn === null ? null : Number(r.asn),
        netType: r.net_type,
        netPrefix: r.net_prefix,
        signals,
        details,
        contributions,
        next: { stepUp, finalOutcome: final.outcome, factors: json<string[] | null>(final.factors) ?? [] },
        labels: await labelsOf(db, r.id),
        userMessage: userMessage(base.reasons),
      };
    },
  };
}
