import type { RiskHistory } from './history.ts';
import { evaluate, type PolicyDocument, type RiskAssessment } from './policy.ts';
import { decide, signalConfig } from './score.ts';
import { historyQuery, type Observed, type Signals } from './signals.ts';

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

/** Who attempted: the identifiers the login event row keeps (the snapshot does not repeat them; its network view has the address). */
export interface ShadowSubject {
  identityId: string | null;
  deviceId: string | null;
}

type Decided = Omit<RiskAssessment, 'country' | 'lat' | 'lon'>;

const isSignals = (v: unknown): v is Signals =>
  typeof v === 'object' && v !== null && typeof (v as { details?: unknown }).details === 'object' && (v as { details?: unknown }).details !== null;

const isObserved = (v: unknown): v is Observed =>
  typeof v === 'object' && v !== null && typeof (v as Observed).at === 'number' &&
  typeof (v as Observed).network === 'object' && (v as Observed).network !== null &&
  typeof (v as Observed).facts === 'object' && (v as Observed).facts !== null;

/**
 * What `policy` decides for a recorded attempt: the engine's own `decide` on the observations the
 * live decision recorded (network view, history facts, deployment settings), so every
 * policy-dependent threshold (failed attempts, velocity and spray counts) is applied as it would
 * have been had that policy been active. The history is read again only when the policy's
 * velocity window differs from the recorded one (the recorded counts answer another question);
 * that read sees rows strictly before the attempt, as the live one did.
 *
 * Snapshots without `observed` (scored by an older build) fall back to re-weighting the recorded
 * signals, with FAILED_ATTEMPTS recomputed from the recorded counts.
 */
export async function decideUnder(signals: Signals, subject: ShadowSubject, policy: PolicyDocument, history?: RiskHistory): Promise<Decided> {
  const o = signals.observed;
  if (!isObserved(o)) return evaluateLegacy(signals, policy);
  const input = { identityId: subject.identityId, deviceId: subject.deviceId, ip: o.network.ip, at: o.at, userAgent: null, rememberedDevice: signals.REMEMBERED_DEVICE === true };
  const cfg = signalConfig(policy, o.settings);
  const recordedWindow = signals.details.velocityWindowSeconds;
  let facts = o.facts;
  if (history && recordedWindow !== undefined && recordedWindow !== cfg.velocityWindowSeconds) {
    // The user-agent family only feeds a fact no signal reads; pass the recorded one anyway.
    facts = await history.facts({ ...historyQuery(input, o.network, cfg), uaFamily: signals.details.uaFamily ?? null });
  }
  const { country: _c, lat: _la, lon: _lo, ...decided } = decide(input, facts, o.network, policy, o.settings);
  // The shadow's snapshot is the same observation; keep the recorded details' uaFamily.
  decided.signals.details.uaFamily = signals.details.uaFamily ?? null;
  return decided;
}

/** For snapshots without `observed`: the recorded signals under another policy's weights. */
function evaluateLegacy(signals: Signals, policy: PolicyDocument): Decided {
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
export async function shadowFor(
  risk: LiveRisk | null,
  subject: ShadowSubject,
  shadowPolicy: () => Promise<PolicyDocument | null>,
  history?: RiskHistory,
): Promise<ShadowDecision | null> {
  if (!risk || !isSignals(risk.signals)) return null;
  const policy = await shadowPolicy();
  if (!policy || policy.version === risk.policyVersion) return null;
  const r = await decideUnder(risk.signals, subject, policy, history);
  return { policyVersion: policy.version, decision: r.decision, score: r.score, reasons: r.reasons };
}
