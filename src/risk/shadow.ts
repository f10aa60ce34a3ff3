import { evaluate, type PolicyDocument, type RiskAssessment } from './policy.ts';
import type { Signals } from './signals.ts';

/** What the shadow policy would have decided; recorded on the login event, never enforced. */
export interface ShadowDecision {
  policyVersion: string;
  decision: RiskAssessment['decision'];
  score: number;
  reasons: string[];
}

/** The recorded parts of a live assessment a shadow evaluation needs. */
export interface LiveRisk {
  policyVersion: string;
  signals: unknown;
}

const isSignals = (v: unknown): v is Signals =>
  typeof v === 'object' && v !== null && typeof (v as { details?: unknown }).details === 'object' && (v as { details?: unknown }).details !== null;

/**
 * Score a recorded signal snapshot under another policy. Pure. The only policy-dependent signal
 * today is FAILED_ATTEMPTS (the policy sets its threshold): it is recomputed from the recorded
 * counts, so a shadow with another threshold is judged on what it would really have seen.
 */
export function evaluateUnder(signals: Signals, policy: PolicyDocument): Omit<RiskAssessment, 'country' | 'lat' | 'lon'> {
  const d = signals.details as Partial<Signals['details']>;
  const adjusted =
    typeof d.accountFailures === 'number' && typeof d.ipFailures === 'number'
      ? { ...signals, FAILED_ATTEMPTS: Math.max(d.accountFailures, d.ipFailures) >= policy.failedAttempts.threshold }
      : signals;
  return evaluate(adjusted, policy);
}

/**
 * The shadow decision for one live assessment, or null when there is nothing to compare: no
 * shadow policy, or no signals (the scorer did not answer and the login failed closed).
 */
export async function shadowFor(risk: LiveRisk | null, shadowPolicy: () => Promise<PolicyDocument | null>): Promise<ShadowDecision | null> {
  if (!risk || !isSignals(risk.signals)) return null;
  const policy = await shadowPolicy();
  if (!policy || policy.version === risk.policyVersion) return null;
  const r = evaluateUnder(risk.signals, policy);
  return { policyVersion: policy.version, decision: r.decision, score: r.score, reasons: r.reasons };
}
