import type { Config } from '../config/config.ts';
import type { Queryable } from '../db/db.ts';
import { parseCidrs } from './cidr.ts';
import type { Geo } from './geo.ts';
import { evaluate, loadActivePolicy, type RiskAssessment } from './policy.ts';
import { collectSignals, type RiskInput } from './signals.ts';

export interface RiskScorer {
  /** Assess one login attempt. Reads only; the login flow records the event and decision. */
  score(input: RiskInput): Promise<RiskAssessment>;
}

export function createRiskScorer(deps: {
  db: Queryable;
  geo: Geo;
  config: Pick<Config, 'RISK_DENY_CIDRS' | 'RISK_MAX_TRAVEL_KMH' | 'RISK_FAILURE_WINDOW_SECONDS'>;
}): RiskScorer {
  const { db, geo, config } = deps;
  // Parsed here so a bad deny list fails at boot, not on the first login.
  const denyCidrs = [...new Set(parseCidrs(config.RISK_DENY_CIDRS).map((c) => c.text))];
  return {
    async score(input) {
      // Loaded per call so activating a policy takes effect without a restart.
      const policy = await loadActivePolicy(db);
      const { signals, point } = await collectSignals(
        {
          db,
          geo,
          denyCidrs,
          maxTravelKmh: config.RISK_MAX_TRAVEL_KMH,
          failureWindowSeconds: config.RISK_FAILURE_WINDOW_SECONDS,
          failureThreshold: policy.failedAttempts.threshold,
        },
        input,
      );
      return {
        ...evaluate(signals, policy),
        country: point?.country ?? null,
        lat: point?.lat ?? null,
        lon: point?.lon ?? null,
      };
    },
  };
}
