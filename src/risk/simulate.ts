import type { Queryable } from '../db/db.ts';
import { explain, userMessage, type Explanation } from './explain.ts';
import type { PolicyDocument } from './policy.ts';
import type { RiskScorer } from './scorer.ts';
import { evaluateUnder } from './shadow.ts';
import type { Signals } from './signals.ts';

export interface SimulateInput {
  identifier: string;
  ip: string;
  deviceId?: string | null;
  /** Accepted for signals that use it; today's signals do not. */
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
  signals: Signals;
  country: string | null;
  requirePhishingResistant: boolean;
  explanation: Explanation;
  userMessage: string;
}

/**
 * What a policy would decide for this attempt now, without a login: the scorer only reads
 * login_events, and nothing here writes (no event, no audit, no flow, no job). `policy` null means
 * the active policy; another policy is applied to the same observed signals.
 */
export async function simulate(deps: { db: Queryable; scorer: RiskScorer }, input: SimulateInput, policy: PolicyDocument | null): Promise<Simulation> {
  const { rows } = await deps.db.query<{ id: string }>('SELECT id FROM identities WHERE email = lower($1)', [input.identifier]);
  const identityId = rows[0]?.id ?? null;
  const live = await deps.scorer.score({ identityId, deviceId: input.deviceId ?? null, ip: input.ip, at: input.at });
  const r = policy && policy.version !== live.policyVersion ? evaluateUnder(live.signals, policy) : live;
  return {
    user: identityId ? { id: identityId } : null,
    policyVersion: r.policyVersion,
    decision: r.decision,
    level: r.level,
    score: r.score,
    reasons: r.reasons,
    contributions: r.contributions,
    signals: r.signals,
    country: live.country,
    requirePhishingResistant: r.requirePhishingResistant,
    explanation: explain({ decision: r.decision, score: r.score, reasons: r.reasons, contributions: r.contributions, signals: r.signals, policyVersion: r.policyVersion, country: live.country }),
    userMessage: userMessage(r.reasons),
  };
}
