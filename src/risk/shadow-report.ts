import type { Queryable } from '../db/db.ts';

const DECISIONS = ['allow', 'step_up', 'deny'] as const;
type Decision = (typeof DECISIONS)[number];
type Matrix = Record<Decision, Record<Decision, number>>;

export interface ShadowExample {
  id: string;
  at: string;
  userId: string | null;
  decision: Decision;
  shadowDecision: Decision;
  score: number | null;
  shadowScore: number | null;
  reasons: string[];
  shadowReasons: string[];
  label: 'fraud' | 'legit' | null;
}

export interface ShadowReport {
  from: string;
  to: string;
  /** Versions seen in the window (a policy may have changed inside it). */
  activeVersions: string[];
  shadowVersions: string[];
  /** Logins compared: one per login flow (its events share one decision). */
  total: number;
  agreed: number;
  /** Rows: the enforced decision; columns: the shadow decision. */
  matrix: Matrix;
  /** For labelled logins: how each policy treated known fraud and known legitimate sign-ins. */
  labelled: Record<'fraud' | 'legit', { active: Record<Decision, number>; shadow: Record<Decision, number> }>;
  /** Up to `examplesPerCell` logins for each cell where the two policies disagree, newest first. */
  examples: ShadowExample[];
}

const zeroes = (): Record<Decision, number> => ({ allow: 0, step_up: 0, deny: 0 });
const isDecision = (v: unknown): v is Decision => typeof v === 'string' && (DECISIONS as readonly string[]).includes(v);
const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

/** Compare the enforced and shadow decisions recorded in [from, to); optionally one shadow version. */
export async function shadowReport(db: Queryable, o: { from: Date; to: Date; shadowVersion?: string; examplesPerCell?: number }): Promise<ShadowReport> {
  const params: unknown[] = [o.from, o.to];
  const versionFilter = o.shadowVersion ? `AND shadow_policy_version = $${params.push(o.shadowVersion)}` : '';
  // One row per login flow: its first scored event carries the decision, later ones repeat it.
  // Counting and picking examples happen in the database, so a long window costs no API memory.
  // `label` is the attempt's current label, the same on each of its events. Counting sorts only
  // the narrow columns it needs (a wide sort spills to disk on long windows).
  const perFlow = (cols: string) => `per_flow AS (
    SELECT DISTINCT ON (coalesce(flow_id, id::text)) ${cols}
      FROM login_events
     WHERE created_at >= $1 AND created_at < $2 AND shadow_decision IS NOT NULL AND decision IS NOT NULL ${versionFilter}
     ORDER BY coalesce(flow_id, id::text), created_at, id)`;
  const counts = await db.query<{ decision: string; shadow_decision: string; label: 'fraud' | 'legit' | null; policy_version: string | null; shadow_policy_version: string; n: number }>(
    `WITH ${perFlow('decision, shadow_decision, label, policy_version, shadow_policy_version')}
     SELECT decision, shadow_decision, label, policy_version, shadow_policy_version, count(*)::int AS n
       FROM per_flow GROUP BY decision, shadow_decision, label, policy_version, shadow_policy_version`,
    params,
  );
  const ex = await db.query<{
    id: string; created_at: Date | string; identity_id: string | null; decision: Decision; shadow_decision: Decision;
    score: number | null; shadow_score: number | null; reasons: unknown; shadow_reasons: unknown; label: 'fraud' | 'legit' | null;
  }>(
    `WITH ${perFlow('id, created_at, decision, shadow_decision')}, ranked AS (
       SELECT id, row_number() OVER (PARTITION BY decision, shadow_decision ORDER BY created_at DESC, id DESC) AS rn
         FROM per_flow WHERE decision <> shadow_decision)
     SELECT e.id, e.created_at, e.identity_id, e.decision, e.shadow_decision, e.score, e.shadow_score, e.reasons, e.shadow_reasons, e.label
       FROM ranked r JOIN login_events e ON e.id = r.id
      WHERE r.rn <= $${params.length + 1} ORDER BY e.created_at DESC, e.id DESC`,
    [...params, o.examplesPerCell ?? 5],
  );
  const matrix = { allow: zeroes(), step_up: zeroes(), deny: zeroes() } as Matrix;
  const labelled = { fraud: { active: zeroes(), shadow: zeroes() }, legit: { active: zeroes(), shadow: zeroes() } };
  const active = new Set<string>();
  const shadow = new Set<string>();
  let total = 0;
  let agreed = 0;
  for (const r of counts.rows) {
    if (!isDecision(r.decision) || !isDecision(r.shadow_decision)) continue;
    total += r.n;
    if (r.decision === r.shadow_decision) agreed += r.n;
    if (r.policy_version) active.add(r.policy_version);
    shadow.add(r.shadow_policy_version);
    matrix[r.decision][r.shadow_decision] += r.n;
    if (r.label) {
      labelled[r.label].active[r.decision] += r.n;
      labelled[r.label].shadow[r.shadow_decision] += r.n;
    }
  }
  return {
    from: o.from.toISOString(),
    to: o.to.toISOString(),
    activeVersions: [...active].sort(),
    shadowVersions: [...shadow].sort(),
    total,
    agreed,
    matrix,
    labelled,
    examples: ex.rows
      .filter((r) => isDecision(r.decision) && isDecision(r.shadow_decision))
      .map((r) => ({
        id: r.id,
        at: new Date(r.created_at).toISOString(),
        userId: r.identity_id,
        decision: r.decision,
        shadowDecision: r.shadow_decision,
        score: r.score,
        shadowScore: r.shadow_score,
        reasons: json<string[] | null>(r.reasons) ?? [],
        shadowReasons: json<string[] | null>(r.shadow_reasons) ?? [],
        label: r.label,
      })),
  };
}
