import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { labelStepUp } from './labels.ts';
import type { PolicyStore } from './policy-store.ts';
import { shadowFor, type LiveRisk, type ShadowDecision } from './shadow.ts';

/** What the login flow asks of the risk side when it records an event (src/flows/login-effects.ts). */
export interface RiskRecorder {
  /** The shadow policy's decision for this assessment; null when none. Never throws: shadow is advisory. */
  shadow(risk: LiveRisk | null): Promise<ShadowDecision | null>;
  /** The event ended a login that had been stepped up: a weak `legit` label when an owned factor was used. */
  steppedUp(eventId: string, factors: readonly string[]): Promise<void>;
}

export function createRiskRecorder(deps: { db: Db; clock: Clock; policies: Pick<PolicyStore, 'shadowPolicy'>; onError?: (err: unknown, op: string) => void }): RiskRecorder {
  return {
    async shadow(risk) {
      try {
        return await shadowFor(risk, deps.policies.shadowPolicy);
      } catch (err) {
        // A shadow failure must never change or fail the enforced decision.
        deps.onError?.(err, 'shadow');
        return null;
      }
    },
    async steppedUp(eventId, factors) {
      try {
        await labelStepUp(deps.db, eventId, factors, new Date(deps.clock.now()));
      } catch (err) {
        deps.onError?.(err, 'step_up_label');
      }
    },
  };
}
