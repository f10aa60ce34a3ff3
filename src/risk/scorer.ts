import type { Config } from '../config/config.ts';
import type { Queryable } from '../db/db.ts';
import type { Geo } from './geo.ts';
import { createPgRiskHistory } from './history-pg.ts';
import { createNetworks, type Networks } from './network.ts';
import { loadActivePolicy, type RiskAssessment } from './policy.ts';
import { scoreAttempt } from './score.ts';
import type { RiskInput } from './signals.ts';

export interface RiskScorer {
  /** Assess one login attempt. Reads only; the login flow records the event and decision. */
  score(input: RiskInput): Promise<RiskAssessment>;
}

type ScorerConfig = Pick<Config, 'RISK_DENY_CIDRS' | 'RISK_MAX_TRAVEL_KMH' | 'RISK_FAILURE_WINDOW_SECONDS'> &
  Partial<Pick<Config, 'RISK_TOR_EXITS_FILE' | 'RISK_DENY_CIDRS_FILE' | 'RISK_ALLOW_CIDRS_FILE' | 'RISK_LIST_CHECK_MS'>>;

/** The network view for a deployment: ASN table, GeoIP, inline deny list and reloading list files. */
export function networksFromConfig(geo: Geo, config: ScorerConfig, onListError?: (err: Error) => void): Networks {
  return createNetworks({
    geo,
    denyCidrs: config.RISK_DENY_CIDRS,
    torExitsFile: config.RISK_TOR_EXITS_FILE || undefined,
    denyCidrsFile: config.RISK_DENY_CIDRS_FILE || undefined,
    allowCidrsFile: config.RISK_ALLOW_CIDRS_FILE || undefined,
    checkMs: config.RISK_LIST_CHECK_MS,
    onListError,
  });
}

export function createRiskScorer(deps: {
  db: Queryable;
  geo: Geo;
  config: ScorerConfig;
  /** Overrides the network view built from config (tests, back-tests). */
  networks?: Networks;
  onListError?: (err: Error) => void;
}): RiskScorer {
  const { db, config } = deps;
  // Built here so a bad deny list (inline or file) fails at boot, not on the first login.
  const networks = deps.networks ?? networksFromConfig(deps.geo, config, deps.onListError);
  const history = createPgRiskHistory(db);
  // Load the AS table now (about a second, once per process) rather than inside the first
  // login's risk deadline; only processes that score get here, so the API in queue mode never does.
  networks.describe('192.0.2.1');
  return {
    async score(input) {
      // Loaded per call so activating a policy takes effect without a restart.
      const policy = await loadActivePolicy(db);
      const { assessment } = await scoreAttempt({
        input,
        history,
        networks,
        policy,
        settings: { maxTravelKmh: config.RISK_MAX_TRAVEL_KMH, failureWindowSeconds: config.RISK_FAILURE_WINDOW_SECONDS },
      });
      return assessment;
    },
  };
}
