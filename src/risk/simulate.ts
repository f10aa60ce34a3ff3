import type { Queryable } from '../db/db.ts';
import { explain, userMessage, type Explanation } from './explain.ts';
import type { PolicyDocument } from './policy.ts';
import type { RiskScorer } from './scorer.ts';
import type { Signals } from './signals.ts';

export interface SimulateInput {
  identifier: string;
  ip: string;
  deviceId?: string | null;
  /** Its family feeds the snapshot (details.uaFamily) as on a live login. */
  userAgent?: string;
  at: number;
}

export interface Simulation {
  user: { id: string } | null;
  policyVersion: string;
  decision: string;
  level: string;
  score: number;
  reasons: string[];
  contributions: Record<string, number>;
  signals: Omit<Signals, 'observed'>;
  country: string | null;
  requirePhishingResistant: boolean;
  explanation: Explanation;
  userMessage: string;
}

/**
 * What a policy would decide for this attempt now, without a login: the live engine (Postgres
 * history, the deployment's network view) run under `policy`, or the active policy when null.
 * The scorer only reads login_events, and nothing here writes (no event, no audit, no flow, no job).
 */
export async function simulate(deps: { db: Queryable; scorer: RiskScorer }, input: SimulateInput, policy: PolicyDocument | null): Promise<Simulation> {
  const { rows } = await deps.db.query<{ id: string }>('SELECT id FROM identities WHERE email = lower($1)', [input.identifier]);
  const identityId = rows[0]?.id ?? null;
  const r = await deps.scorer.score(
    { identityId, deviceId: input.deviceId ?? null, ip: input.ip, at: input.at, userAgent: input.userAgent ?? null },
    policy ?? undefined,
  );
  // The engine's raw observations (history facts, other logins' locations) are not the analyst's answer.
  const { observed: _observed, ...signals } = r.signals;
  return {
    user: identityId ? { id: identityId } : null,
    policyVersion: r.policyVersion,
    decision: r.decision,
    level: r.level,
    score: r.score,
    reasons: r.reasons,
    contributions: r.contributions,
    signals,
    country: r.country,
    requirePhishingResistant: r.requirePhishingResistant,
    explanation: explain({ decision: r.decision, score: r.score, reasons: r.reasons, contributions: r.contributions, signals, policyVersion: r.policyVersion, country: r.country }),
    userMessage: userMessage(r.reasons),
  };
}
