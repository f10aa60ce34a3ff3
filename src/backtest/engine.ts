import type { PolicyDocument } from '../risk/policy.ts';
import type { Attempt } from './jsonl.ts';

export type Decision = 'allow' | 'step_up' | 'deny';
export type ReplayOutcome = 'succeeded' | 'failed' | 'stepped_up' | 'denied';

export interface ReplayDecision {
  decision: Decision;
  score: number;
  reasons: string[];
}

/**
 * What the back-test needs from the risk engine: score an attempt against the history so far,
 * then record how it ended. One engine per policy, each with its own history, so a policy that
 * lets an attacker in also learns the attacker's device, as live would.
 */
export interface ReplayEngine {
  score(a: Attempt): ReplayDecision | Promise<ReplayDecision>;
  record(a: Attempt, outcome: ReplayOutcome): void;
}

export type ReplayEngineFactory = (policy: PolicyDocument) => ReplayEngine | Promise<ReplayEngine>;

/**
 * How an attempt ends, for history: a wrong password fails; allow succeeds; a step-up succeeds
 * when the person passed it (recorded logins say so; a labelled set assumes the owner passes and
 * the attacker does not); deny is denied.
 */
export function outcomeOf(a: Attempt, d: ReplayDecision | null): ReplayOutcome {
  if (!a.passwordCorrect || d === null) return 'failed';
  // An unlabelled line with nothing recorded about it is warm-up history: a login that happened
  // before the window under test. It builds history as it happened, whatever this policy says,
  // or a cold start (a whole office's first logins through one NAT) would deny people forever.
  if (a.label === undefined && a.recordedDecision === undefined && a.stepUpPassed === undefined) return 'succeeded';
  // Same decision as live: history keeps what happened live.
  if (a.recordedOutcome !== undefined && a.recordedDecision === d.decision) return a.recordedOutcome;
  if (d.decision === 'allow') return 'succeeded';
  if (d.decision === 'deny') return 'denied';
  const passed = a.stepUpPassed ?? a.label !== 'attack';
  return passed ? 'succeeded' : 'stepped_up';
}
