import type { Clock } from '../clock.ts';
import type { HistoryFacts, RecordedAttempt, RecordedOutcome, RiskHistory } from './history.ts';
import type { NetworkView, Networks } from './network.ts';
import { evaluate, type PolicyDocument, type RiskAssessment } from './policy.ts';
import { computeSignals, DEFAULT_SIGNAL_CONFIG, historyQuery, type RiskInput, type SignalConfig } from './signals.ts';
import { userAgentFamily } from './user-agent.ts';

/** Deployment settings that are not part of a policy document. */
export interface ScoreSettings {
  maxTravelKmh?: number;
  failureWindowSeconds?: number;
}

/** Signal thresholds: the policy's where it sets them, else the deployment's, else defaults. */
export function signalConfig(policy: PolicyDocument, settings: ScoreSettings = {}): SignalConfig {
  const v = policy.velocity ?? {};
  const d = DEFAULT_SIGNAL_CONFIG;
  return {
    maxTravelKmh: settings.maxTravelKmh ?? d.maxTravelKmh,
    failureWindowSeconds: settings.failureWindowSeconds ?? d.failureWindowSeconds,
    failureThreshold: policy.failedAttempts.threshold,
    velocityWindowSeconds: v.windowSeconds ?? d.velocityWindowSeconds,
    ipAccounts: v.ipAccounts ?? d.ipAccounts,
    subnetAccounts: v.subnetAccounts ?? d.subnetAccounts,
    deviceAccounts: v.deviceAccounts ?? d.deviceAccounts,
    sprayAccounts: v.sprayAccounts ?? d.sprayAccounts,
  };
}

export interface ScoredAttempt {
  assessment: RiskAssessment;
  network: NetworkView;
  facts: HistoryFacts;
}

/**
 * The decision for one attempt from its parts, synchronously (the back-test's fast path when the
 * history answers synchronously, as MemoryRiskHistory does).
 */
export function decide(input: RiskInput, facts: HistoryFacts, network: NetworkView, policy: PolicyDocument, settings?: ScoreSettings): RiskAssessment {
  const cfg = signalConfig(policy, settings);
  const signals = computeSignals(input, facts, network, cfg);
  // Kept with the snapshot so a shadow policy is decided on the very same observations.
  const observed = { at: input.at, network, facts, settings: { maxTravelKmh: cfg.maxTravelKmh, failureWindowSeconds: cfg.failureWindowSeconds } };
  signals.observed = observed;
  let assessed = evaluate(signals, policy);
  if (signals.REMEMBERED_DEVICE === true) {
    // A remembered device lowers a step-up, never a deny: what the attempt scores without it
    // decides whether it is refused. The snapshot still records that it was presented.
    const plain = computeSignals({ ...input, rememberedDevice: false }, facts, network, cfg);
    plain.observed = observed;
    const without = evaluate(plain, policy);
    if (without.decision === 'deny') {
      assessed = { ...without, signals: { ...without.signals, REMEMBERED_DEVICE: true, details: { ...without.signals.details, rememberedOverruled: true } } };
    }
  }
  return {
    ...assessed,
    country: network.geo?.country ?? null,
    lat: network.geo?.lat ?? null,
    lon: network.geo?.lon ?? null,
  };
}

/**
 * Score one attempt: network view → history facts → signals → evaluate. Used by the live scorer
 * (Postgres history) and by back-tests (MemoryRiskHistory), so both decide the same way. `clock`
 * supplies `at` when the input has none (input.at wins: a replay scores at the recorded time).
 */
export async function scoreAttempt(o: {
  input: Omit<RiskInput, 'at'> & { at?: number };
  history: RiskHistory;
  networks: Networks;
  policy: PolicyDocument;
  clock?: Clock;
  settings?: ScoreSettings;
}): Promise<ScoredAttempt> {
  const at = o.input.at ?? o.clock?.now() ?? Date.now();
  const input: RiskInput = { ...o.input, at };
  const network = o.networks.describe(input.ip);
  const cfg = signalConfig(o.policy, o.settings);
  const facts = await o.history.facts(historyQuery(input, network, cfg));
  return { assessment: decide(input, facts, network, o.policy, o.settings), network, facts };
}

/**
 * What a history keeps of a scored (or failed) attempt. `outcome` is what happened in the end:
 * 'succeeded' after an allow or a passed step-up, 'stepped_up' when the second factor was never
 * passed, 'denied', or 'failed' for a wrong password (then `scored` may be omitted).
 */
export function toRecorded(
  input: RiskInput,
  outcome: RecordedOutcome,
  network: NetworkView,
  deviceNew: boolean,
): RecordedAttempt {
  return {
    identityId: input.identityId,
    deviceId: input.deviceId,
    ip: input.ip,
    at: input.at,
    outcome,
    prefix: network.prefix,
    networkKey: network.key,
    asn: network.asn,
    networkType: network.type,
    uaFamily: userAgentFamily(input.userAgent),
    country: network.geo?.country ?? null,
    lat: network.geo?.lat ?? null,
    lon: network.geo?.lon ?? null,
    radiusKm: network.geo?.radiusKm ?? null,
    deviceNew,
  };
}
