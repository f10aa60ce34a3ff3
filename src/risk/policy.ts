import { z } from 'zod';
import type { Queryable } from '../db/db.ts';
import type { Signals } from './signals.ts';

export type SignalName = 'NEW_DEVICE' | 'NEW_COUNTRY' | 'IMPOSSIBLE_TRAVEL' | 'SUSPICIOUS_IP' | 'FAILED_ATTEMPTS';

export const SIGNAL_NAMES: readonly SignalName[] = [
  'NEW_DEVICE',
  'NEW_COUNTRY',
  'IMPOSSIBLE_TRAVEL',
  'SUSPICIOUS_IP',
  'FAILED_ATTEMPTS',
];

const weight = z.int().min(0).max(1_000_000);
const points = z.int().min(0).max(1_000_000_000);

/** A risk policy as security teams write it; strict so a misspelt key is an error, not a no-op. */
export const PolicyDocumentSchema = z
  .strictObject({
    version: z.string().min(1).max(100),
    weights: z.strictObject({
      NEW_DEVICE: weight,
      NEW_COUNTRY: weight,
      IMPOSSIBLE_TRAVEL: weight,
      SUSPICIOUS_IP: weight,
      FAILED_ATTEMPTS: weight,
    }),
    failedAttempts: z.strictObject({
      /** Failures in the window (per account or per IP) that make FAILED_ATTEMPTS fire. */
      threshold: z.int().min(1).max(1_000_000),
    }),
    /** `high` (optional) splits step-up into a medium and a high band. */
    thresholds: z.strictObject({ stepUp: points, high: points.optional(), deny: points }),
    /** From which band a step-up must use a phishing-resistant factor (WebAuthn) when the user has one. */
    phishingResistantAt: z.enum(['medium', 'high']).optional(),
  })
  .refine((p) => p.thresholds.stepUp <= p.thresholds.deny, {
    path: ['thresholds', 'stepUp'],
    message: 'stepUp must not exceed deny',
  })
  .refine((p) => p.thresholds.high === undefined || (p.thresholds.high >= p.thresholds.stepUp && p.thresholds.high <= p.thresholds.deny), {
    path: ['thresholds', 'high'],
    message: 'high must lie between stepUp and deny',
  });

export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;

export const DEFAULT_POLICY: PolicyDocument = Object.freeze({
  version: 'default-2',
  weights: Object.freeze({ NEW_DEVICE: 10, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 50, SUSPICIOUS_IP: 30, FAILED_ATTEMPTS: 15 }),
  failedAttempts: Object.freeze({ threshold: 3 }),
  thresholds: Object.freeze({ stepUp: 25, high: 60, deny: 90 }),
  phishingResistantAt: 'high',
});

/** One decision, with everything needed to explain and replay it. JSON only (no Dates). */
export interface RiskAssessment {
  score: number;
  level: 'low' | 'medium' | 'high';
  decision: 'allow' | 'step_up' | 'deny';
  reasons: SignalName[];
  contributions: Partial<Record<SignalName, number>>;
  policyVersion: string;
  signals: Signals;
  country: string | null;
  lat: number | null;
  lon: number | null;
  /** A step-up in this band must use WebAuthn when the user has it (policy `phishingResistantAt`). */
  requirePhishingResistant: boolean;
}

/**
 * Score a signal snapshot under a policy. Pure and deterministic, so a recorded decision can be
 * replayed (or back-tested under another policy) and come out the same. A fired signal whose
 * weight is 0 adds nothing and is left out of reasons and contributions: they explain the score;
 * the snapshot in `signals` still shows it fired.
 */
export function evaluate(signals: Signals, policy: PolicyDocument): Omit<RiskAssessment, 'country' | 'lat' | 'lon'> {
  const contributions: Partial<Record<SignalName, number>> = {};
  let score = 0;
  for (const name of SIGNAL_NAMES) {
    const w = policy.weights[name];
    if (signals[name] === true && w > 0) {
      contributions[name] = w;
      score += w;
    }
  }
  const reasons = (Object.keys(contributions) as SignalName[]).sort(
    (a, b) => contributions[b]! - contributions[a]! || (a < b ? -1 : a > b ? 1 : 0),
  );
  const { stepUp, deny, high } = policy.thresholds;
  const [decision, level] =
    score >= deny
      ? (['deny', 'high'] as const)
      : score >= stepUp
        ? ([ 'step_up', high !== undefined && score >= high ? 'high' : 'medium'] as const)
        : (['allow', 'low'] as const);
  const band = policy.phishingResistantAt;
  const requirePhishingResistant =
    decision === 'step_up' && band !== undefined && (band === 'medium' || level === 'high');
  return {
    requirePhishingResistant,
    score,
    level,
    decision,
    reasons,
    contributions,
    policyVersion: policy.version,
    signals: { ...signals, details: { ...signals.details } },
  };
}

export class RiskPolicyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RiskPolicyError';
  }
}

/**
 * The active policy, or DEFAULT_POLICY when none is active. A stored document that fails the
 * schema throws instead of falling back: silently scoring under another policy than the one a
 * security team activated would hide a weakened rule set (the caller fails closed).
 */
export async function loadActivePolicy(db: Queryable): Promise<PolicyDocument> {
  const { rows } = await db.query<{ version: string; document: unknown }>(
    'SELECT version, document FROM risk_policies WHERE active ORDER BY created_at DESC, version DESC LIMIT 1',
  );
  const row = rows[0];
  if (!row) return DEFAULT_POLICY;
  const raw = typeof row.document === 'string' ? JSON.parse(row.document) : row.document;
  const parsed = PolicyDocumentSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RiskPolicyError(`active risk policy ${row.version} is invalid: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  // Decisions record policyVersion and replay looks the policy up by it, so they must agree.
  if (parsed.data.version !== row.version) {
    throw new RiskPolicyError(`active risk policy ${row.version} carries document version ${parsed.data.version}`);
  }
  return parsed.data;
}
