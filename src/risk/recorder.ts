import type { RiskOutcome } from '../../machines/types.ts';
import type { Audit } from '../audit/audit.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { labelStepUp } from './labels.ts';
import type { PolicyStore } from './policy-store.ts';
import { createPgRiskHistory } from './history-pg.ts';
import { shadowFor, type ShadowSubject } from './shadow.ts';

/** What the login flow asks of the risk side each time it has written a login event. */
export interface RiskRecorder {
  /**
   * After a login event of `flowId` was written: records the shadow policy's decision beside the
   * enforced one, and labels a login that succeeded after a step-up. Never throws: both are
   * advisory and must not change or fail the enforced outcome. No query at all when there is no
   * shadow policy (cached) and the event is not a stepped-up success. `subject`: the identifiers
   * the event row was written with (the attempt the risk outcome scored).
   */
  recorded(flowId: string, outcome: string, risk: RiskOutcome | null, subject: ShadowSubject): Promise<void>;
}

export function createRiskRecorder(deps: { db: Db; clock: Clock; audit?: Audit; policies: Pick<PolicyStore, 'shadowPolicy'>; onError?: (err: unknown, op: string) => void }): RiskRecorder {
  const { db } = deps;
  // Read only when a shadow policy's velocity window differs from the active one's.
  const history = createPgRiskHistory(db);
  return {
    async recorded(flowId, outcome, risk, subject) {
      try {
        const shadow = await shadowFor(risk, subject, deps.policies.shadowPolicy, history);
        if (shadow) {
          // The flow's scored events not yet shadowed: the one just written.
          await db.query(
            `UPDATE login_events SET shadow_policy_version = $2, shadow_decision = $3, shadow_score = $4, shadow_reasons = $5::jsonb
              WHERE flow_id = $1 AND decision IS NOT NULL AND shadow_policy_version IS NULL`,
            [flowId, shadow.policyVersion, shadow.decision, shadow.score, JSON.stringify(shadow.reasons)],
          );
        }
      } catch (err) {
        deps.onError?.(err, 'shadow');
      }
      if (outcome !== 'succeeded' || risk?.decision !== 'step_up') return;
      try {
        // A completed step-up with a factor the user owns: weak evidence the owner was there.
        const { rows } = await db.query<{ id: string; factors: unknown }>(
          "SELECT id, factors FROM login_events WHERE flow_id = $1 AND outcome = 'succeeded' ORDER BY created_at DESC LIMIT 1",
          [flowId],
        );
        const r = rows[0];
        if (!r) return;
        const factors = typeof r.factors === 'string' ? (JSON.parse(r.factors) as unknown) : r.factors;
        if (Array.isArray(factors)) await labelStepUp(db, r.id, factors.filter((f): f is string => typeof f === 'string'), new Date(deps.clock.now()), deps.audit);
      } catch (err) {
        deps.onError?.(err, 'step_up_label');
      }
    },
  };
}
