import type { FlowEffect, RiskOutcome } from '../../machines/types.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { labelStepUp } from './labels.ts';
import type { PolicyStore } from './policy-store.ts';
import { shadowFor } from './shadow.ts';

/** What the login flow asks of the risk side once it has recorded a transition's events. */
export interface RiskRecorder {
  /**
   * Called after a transition's login events are written: records the shadow policy's decision
   * beside the enforced one, and labels a login completed after a step-up. Never throws: both
   * are advisory and must not change or fail the enforced outcome.
   */
  recorded(flowId: string, risk: RiskOutcome | null, effects: readonly FlowEffect[]): Promise<void>;
}

export function createRiskRecorder(deps: { db: Db; clock: Clock; policies: Pick<PolicyStore, 'shadowPolicy'>; onError?: (err: unknown, op: string) => void }): RiskRecorder {
  const { db } = deps;
  return {
    async recorded(flowId, risk, effects) {
      try {
        const shadow = await shadowFor(risk, deps.policies.shadowPolicy);
        if (shadow) {
          // The flow's scored events not yet shadowed: those this transition just wrote.
          await db.query(
            `UPDATE login_events SET shadow_policy_version = $2, shadow_decision = $3, shadow_score = $4, shadow_reasons = $5::jsonb
              WHERE flow_id = $1 AND decision IS NOT NULL AND shadow_policy_version IS NULL`,
            [flowId, shadow.policyVersion, shadow.decision, shadow.score, JSON.stringify(shadow.reasons)],
          );
        }
      } catch (err) {
        deps.onError?.(err, 'shadow');
      }
      const done = effects.find((e) => e.type === 'login.succeeded');
      if (!done || risk?.decision !== 'step_up') return;
      try {
        // A completed step-up with a factor the user owns: weak evidence the owner was there.
        const { rows } = await db.query<{ id: string }>("SELECT id FROM login_events WHERE flow_id = $1 AND outcome = 'succeeded' LIMIT 1", [flowId]);
        if (rows[0]) await labelStepUp(db, rows[0].id, done.factors, new Date(deps.clock.now()));
      } catch (err) {
        deps.onError?.(err, 'step_up_label');
      }
    },
  };
}
