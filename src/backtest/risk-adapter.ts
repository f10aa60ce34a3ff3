import type { Geo } from '../risk/geo.ts';
import { MemoryRiskHistory } from '../risk/history.ts';
import type { NetworkView, Networks } from '../risk/network.ts';
import type { PolicyDocument } from '../risk/policy.ts';
import { decide, signalConfig, toRecorded, type ScoreSettings } from '../risk/score.ts';
import { networksFromConfig } from '../risk/scorer.ts';
import { historyQuery, type RiskInput } from '../risk/signals.ts';
import type { ReplayEngine, ReplayEngineFactory } from './engine.ts';
import type { Attempt } from './jsonl.ts';

/** The deployment settings a replay must share with the live scorer to decide as it did. */
export interface ReplayConfig {
  RISK_DENY_CIDRS?: string;
  RISK_MAX_TRAVEL_KMH?: number;
  RISK_FAILURE_WINDOW_SECONDS?: number;
  RISK_TOR_EXITS_FILE?: string;
  RISK_DENY_CIDRS_FILE?: string;
  RISK_ALLOW_CIDRS_FILE?: string;
}

const toInput = (a: Attempt): RiskInput => ({
  identityId: a.user,
  deviceId: a.deviceId,
  ip: a.ip,
  at: a.at,
  userAgent: a.userAgent,
  passwordCorrect: a.passwordCorrect,
});

/**
 * The real risk engine for replay: the same network view, signals and policy evaluation as the
 * live scorer (src/risk/score.ts `decide`), over an in-memory RiskHistory of the replay's own,
 * fed in time order. Nothing touches live tables.
 */
export function engineFactory(networks: Networks, settings: ScoreSettings): ReplayEngineFactory {
  // A replay sees the same addresses again and again (home lines, office NATs): describe each
  // once. Lists do not change within one replay; bounded so a file of random addresses cannot
  // grow it without limit.
  const views = new Map<string, NetworkView>();
  const describe = (ip: string): NetworkView => {
    let v = views.get(ip);
    if (!v) {
      if (views.size >= 500_000) views.clear();
      v = networks.describe(ip);
      views.set(ip, v);
    }
    return v;
  };
  return (policy: PolicyDocument): ReplayEngine => {
    const history = new MemoryRiskHistory();
    const cfg = signalConfig(policy, settings);
    // score() then record() for the same attempt: describe the network and device once.
    let last: { a: Attempt; input: RiskInput; network: NetworkView; deviceNew: boolean } | null = null;
    const prepare = (a: Attempt) => {
      if (last?.a === a) return last;
      const input = toInput(a);
      last = { a, input, network: describe(a.ip), deviceNew: history.isDeviceNew(input.identityId, input.deviceId) };
      return last;
    };
    return {
      score(a) {
        const p = prepare(a);
        const facts = history.facts(historyQuery(p.input, p.network, cfg));
        const r = decide(p.input, facts, p.network, policy, settings);
        return { decision: r.decision, score: r.score, reasons: r.reasons };
      },
      record(a, outcome) {
        const p = prepare(a);
        history.record(toRecorded(p.input, outcome, p.network, p.deviceNew));
        last = null;
      },
    };
  };
}

/** The replay engine the live configuration implies (CLI, jobs and tests share it). */
export function replayFactoryFor(geo: Geo, config: ReplayConfig): ReplayEngineFactory {
  const networks = networksFromConfig(geo, {
    RISK_DENY_CIDRS: config.RISK_DENY_CIDRS ?? '',
    RISK_MAX_TRAVEL_KMH: config.RISK_MAX_TRAVEL_KMH ?? 900,
    RISK_FAILURE_WINDOW_SECONDS: config.RISK_FAILURE_WINDOW_SECONDS ?? 3600,
    RISK_TOR_EXITS_FILE: config.RISK_TOR_EXITS_FILE,
    RISK_DENY_CIDRS_FILE: config.RISK_DENY_CIDRS_FILE,
    RISK_ALLOW_CIDRS_FILE: config.RISK_ALLOW_CIDRS_FILE,
  });
  // Load the ASN table now (about a second), not inside the first replayed attempt's timing.
  networks.describe('192.0.2.1');
  return engineFactory(networks, {
    maxTravelKmh: config.RISK_MAX_TRAVEL_KMH,
    failureWindowSeconds: config.RISK_FAILURE_WINDOW_SECONDS,
  });
}
