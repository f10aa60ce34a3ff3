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
  const per = o.examplesPerCell ?? 5;
  const params: unknown[] = [o.from, o.to];
  const versionFilter = o.shadowVersion ? `AND shadow_policy_version = $${params.push(o.shadowVersion)}` : '';
  // One row per flow: the first event carries the decision; later ones repeat it.
  const { rows } = await db.query<{
    id: string; created_at: Date | string; identity_id: string | null; decision: string; shadow_decision: string;
    score: number | null; shadow_score: number | null; reasons: unknown; shadow_reasons: unknown;
    policy_version: string | null; shadow_policy_version: string; label: 'fraud' | 'legit' | null;
  }>(
    `SELECT * FROM (
       SELECT DISTINCT ON (coalesce(e.flow_id, e.id::text)) e.id, e.created_at, e.identity_id, e.decision, e.shadow_decision,
              e.score, e.shadow_score, e.reasons, e.shadow_reasons, e.policy_version, e.shadow_policy_version,
              e.label -- the attempt's current label, the same on each of its events
         FROM login_events e
        WHERE e.created_at >= $1 AND e.created_at < $2 AND e.shadow_decision IS NOT NULL AND e.decision IS NOT NULL ${versionFilter}
        ORDER BY coalesce(e.flow_id, e.id::text), e.created_at, e.id
     ) x ORDER BY created_at DESC, id DESC`,
    params,
  );
  const matrix = { allow: zeroes(), step_up: zeroes(), deny: zeroes() } as Matrix;
  const labelled = { fraud: { active: zeroes(), shadow: zeroes() }, legit: { active: zeroes(), shadow: zeroes() } };
  const cellCount = new Map<string, number>();
  const examples: ShadowExample[] = [];
  const active = new Set<string>();
  const shadow = new Set<string>();
  let total = 0;
  let agreed = 0;
  for (const r of rows) {
    if (!isDecision(r.decision) || !isDecision(r.shadow_decision)) continue;
    total++;
    if (r.policy_version) active.add(r.policy_version);
    shadow.add(r.shadow_policy_version);
    matrix[r.decision][r.shadow_decision]++;
    if (r.label) {
      labelled[r.label].active[r.decision]++;
      labelled[r.label].shadow[r.shadow_decision]++;
    }
    if (r.decision === r.shadow_decision) {
      agreed++;
      continue;
    }
    const cell = `${r.decision}>${r.shadow_decision}`;
    const n = cellCount.get(cell) ?? 0;
    if (n >= per) continue;
    cellCount.set(cell, n + 1);
    examples.push({
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
    });
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
    examples,
  };
}
