import type { Audit } from '../audit/audit.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { Logger } from '../logger.ts';
import { createRiskEvents, type RiskEvents } from './events.ts';
import type { Geo } from './geo.ts';
import { createPolicyStore, type PolicyStore } from './policy-store.ts';
import { createRiskRecorder, type RiskRecorder } from './recorder.ts';
import { createRiskScorer, type RiskScorer } from './scorer.ts';

/** The API process's side of risk: policy versions, the events view, shadow recording, simulation. */
export interface RiskApi {
  policies: PolicyStore;
  events: RiskEvents;
  recorder: RiskRecorder;
  /**
   * An in-process scorer for simulation only (live logins go through the risk queue). Built on
   * first use, so an API process that never simulates never loads the scorer's data.
   */
  scorer(): RiskScorer;
}

export function createRiskApi(d: {
  db: Db;
  clock: Clock;
  audit: Audit;
  geo: Geo;
  /** The live scorer's settings, list files included, so a simulation sees the network view a login would. */
  config: Pick<Config, 'RISK_DENY_CIDRS' | 'RISK_MAX_TRAVEL_KMH' | 'RISK_FAILURE_WINDOW_SECONDS'> &
    Partial<Pick<Config, 'RISK_TOR_EXITS_FILE' | 'RISK_DENY_CIDRS_FILE' | 'RISK_ALLOW_CIDRS_FILE' | 'RISK_LIST_CHECK_MS'>>;
  logger: Pick<Logger, 'error' | 'warn'>;
}): RiskApi {
  const policies = createPolicyStore({
    db: d.db,
    clock: d.clock,
    audit: d.audit,
    onInvalidShadow: (version) => d.logger.error({ version }, 'shadow risk policy does not parse; shadow scoring skipped'),
  });
  let scorer: RiskScorer | null = null;
  return {
    policies,
    events: createRiskEvents(d.db),
    recorder: createRiskRecorder({ db: d.db, clock: d.clock, audit: d.audit, policies, onError: (err, op) => d.logger.warn({ err, op }, 'risk recording failed') }),
    scorer: () =>
      (scorer ??= createRiskScorer({
        db: d.db,
        geo: d.geo,
        config: d.config,
        onListError: (err) => d.logger.error({ err }, 'risk reputation list unreadable; keeping the last good one'),
      })),
  };
}
