import type { Queryable } from '../db/db.ts';
import type { Attempt } from './jsonl.ts';
import { userAgentFromFamily } from './ua-family.ts';

/** The attempt's current label (src/risk/labels.ts: fraud | legit) as a replay label. */
const replayLabel = (v: string | null): 'benign' | 'attack' | undefined => (v === 'fraud' ? 'attack' : v === 'legit' ? 'benign' : undefined);

interface Row {
  id: string;
  flow_id: string | null;
  identity_id: string | null;
  device_id: string | null;
  ip: string | null;
  outcome: string;
  decision: string | null;
  label: string | null;
  ua_family?: string | null;
  created_at: Date | string;
  passed: boolean | null;
}

/**
 * Stored login events over [from, to) as replayable attempts, in time order, read page by page
 * (keyset on created_at, id) so a long range never sits in memory. Read-only.
 *
 * A flow leaves several rows; one attempt is: a `failed` row (wrong password), or the row that
 * carries the risk decision (`succeeded` without an earlier step-up, `stepped_up`, `denied`).
 * The `succeeded` row a passed step-up leaves later is not a new attempt: it marks the
 * stepped-up one as passed. A `locked` row is a failure unless it ends a step-up.
 */
export async function* readLoginEvents(db: Queryable, range: { from: number; to: number }, pageSize = 5000): AsyncGenerator<Attempt> {
  let after: { at: Date | string; id: string } | null = null;
  let line = 0;
  for (;;) {
    const params: unknown[] = [new Date(range.from), new Date(range.to), pageSize];
    let cursor = '';
    if (after) {
      params.push(after.at, after.id);
      cursor = 'AND (e.created_at, e.id) > ($4, $5)';
    }
    const { rows } = await db.query<Row>(
      `SELECT e.id, e.flow_id, e.identity_id, e.device_id, e.ip, e.outcome, e.decision, e.label, e.created_at,
              e.ua_family,
              CASE WHEN e.outcome = 'stepped_up' THEN EXISTS (
                SELECT 1 FROM login_events s WHERE s.flow_id = e.flow_id AND s.outcome = 'succeeded' AND s.created_at >= e.created_at)
              WHEN e.outcome IN ('succeeded', 'locked') THEN EXISTS (
                SELECT 1 FROM login_events s WHERE s.flow_id = e.flow_id AND s.outcome = 'stepped_up' AND s.created_at <= e.created_at)
              ELSE NULL END AS passed
         FROM login_events e
        WHERE e.created_at >= $1 AND e.created_at < $2 ${cursor}
        ORDER BY e.created_at, e.id
        LIMIT $3`,
      params,
    );
    for (const r of rows) {
      line++;
      // The ending row of a step-up (its success, or an MFA lock) belongs to the stepped-up attempt.
      if ((r.outcome === 'succeeded' || r.outcome === 'locked') && r.passed) continue;
      if (!r.ip) continue;
      const at = r.created_at instanceof Date ? r.created_at.getTime() : Date.parse(r.created_at);
      const correct = r.outcome === 'succeeded' || r.outcome === 'stepped_up' || r.outcome === 'denied';
      const a: Attempt = {
        line,
        at,
        user: r.identity_id ?? `unknown:${r.flow_id ?? r.id}`,
        ip: r.ip,
        deviceId: r.device_id,
        // Only the family is stored (no fingerprint): a stand-in string of that family replays the same.
        userAgent: userAgentFromFamily(r.ua_family ?? null),
        passwordCorrect: correct,
      };
      const label = replayLabel(r.label);
      if (label) a.label = label;
      // A step-up the person never completed (no factor to use, MFA locked, gave up) ended the attempt.
      if (r.outcome === 'stepped_up') a.stepUpPassed = r.passed === true;
      else if (r.decision === 'step_up') a.stepUpPassed = r.outcome === 'succeeded';
      if (correct) a.recordedOutcome = r.outcome === 'stepped_up' && r.passed ? 'succeeded' : (r.outcome as 'succeeded' | 'stepped_up' | 'denied');
      if (r.decision === 'allow' || r.decision === 'step_up' || r.decision === 'deny') a.recordedDecision = r.decision;
      yield a;
    }
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1];
    after = { at: last.created_at, id: last.id };
  }
}
