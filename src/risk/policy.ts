import { z } from 'zod';
import type { Queryable } from '../db/db.ts';
import type { Signals } from './signals.ts';

/** Signals that push towards a step-up. The first five exist since default-1. */
export const RISK_SIGNAL_NAMES = [
  'NEW_DEVICE',
  'NEW_COUNTRY',
  'IMPOSSIBLE_TRAVEL',
  'SUSPICIOUS_IP',
  'FAILED_ATTEMPTS',
  'NEW_NETWORK',
  'NEW_DEVICE_NEW_NETWORK',
  'HOSTING_NETWORK',
  'ANONYMIZING_NETWORK',
  'TOR_EXIT',
  'PASSWORD_SPRAY',
  'IP_VELOCITY',
  'SUBNET_VELOCITY',
  'DEVICE_VELOCITY',
] as const;

/** Signals that say why an attempt looks like the account's owner; weight 0 or negative. */
export const TRUST_SIGNAL_NAMES = ['KNOWN_DEVICE', 'KNOWN_NETWORK', 'ALLOWED_NETWORK', 'REMEMBERED_DEVICE'] as const;

/**
 * What REMEMBERED_DEVICE weighs under a policy that does not set it (every policy written before
 * the signal existed, default-3 included): a device the user proved with a second factor and
 * chose to remember takes a medium-band step-up (25-59) back under the step-up threshold, and
 * lowers a high band to medium. It can never turn a deny into anything else (`decide`,
 * src/risk/score.ts). A policy sets its own weight (0 turns the effect off). No recorded
 * decision carries the signal, so replays of stored decisions are unchanged by this default.
 */
export const REMEMBERED_DEVICE_DEFAULT_WEIGHT = -35;

export type RiskSignalName = (typeof RISK_SIGNAL_NAMES)[number];
export type TrustSignalName = (typeof TRUST_SIGNAL_NAMES)[number];
export type SignalName = RiskSignalName | TrustSignalName;

export const SIGNAL_NAMES: readonly SignalName[] = [...RISK_SIGNAL_NAMES, ...TRUST_SIGNAL_NAMES];

/** Reason given when nothing else explains a decision, so every decision carries one. */
export const NO_SIGNAL = 'NO_SIGNAL';

const weight = z.int().min(0).max(1_000_000);
const trustWeight = z.int().min(-1_000_000).max(0);
const points = z.int().min(0).max(1_000_000_000);
const count = z.int().min(1).max(1_000_000);

/** A risk policy as security teams write it; strict so a misspelt key is an error, not a no-op. */
export const PolicyDocumentSchema = z
  .strictObject({
    version: z.string().min(1).max(100),
    // The first five are required (every version since default-1 has them); newer signals are
    // optional so older documents stay loadable, and a missing weight is 0.
    weights: z.strictObject({
      NEW_DEVICE: weight,
      NEW_COUNTRY: weight,
      IMPOSSIBLE_TRAVEL: weight,
      SUSPICIOUS_IP: weight,
      FAILED_ATTEMPTS: weight,
      NEW_NETWORK: weight.optional(),
      NEW_DEVICE_NEW_NETWORK: weight.optional(),
      HOSTING_NETWORK: weight.optional(),
      ANONYMIZING_NETWORK: weight.optional(),
      TOR_EXIT: weight.optional(),
      PASSWORD_SPRAY: weight.optional(),
      IP_VELOCITY: weight.optional(),
      SUBNET_VELOCITY: weight.optional(),
      DEVICE_VELOCITY: weight.optional(),
      KNOWN_DEVICE: trustWeight.optional(),
      KNOWN_NETWORK: trustWeight.optional(),
      ALLOWED_NETWORK: trustWeight.optional(),
      REMEMBERED_DEVICE: trustWeight.optional(),
    }),
    failedAttempts: z.strictObject({
      /** Failures in the window (per account or per IP) that make FAILED_ATTEMPTS fire. */
      threshold: z.int().min(1).max(1_000_000),
    }),
    /** When the cross-account signals fire (counts of OTHER accounts tried with a device new to them). */
    velocity: z
      .strictObject({
        windowSeconds: z.int().min(60).max(30 * 86400).optional(),
        ipAccounts: count.optional(),
        subnetAccounts: count.optional(),
        deviceAccounts: count.optional(),
        sprayAccounts: count.optional(),
      })
      .optional(),
    /** `high` (optional) splits step-up into a medium and a high band. */
    thresholds: z.strictObject({ stepUp: points, high: points.optional(), deny: points }),
    /** From which band a step-up must use a phishing-resistant factor (WebAuthn) when the user has one. */
    phishingResistantAt: z.enum(['medium', 'high']).optional(),
    /**
     * For how many days a device may be remembered after a step-up in each band (capped by
     * REMEMBER_DEVICE_DAYS; 0 = never remember after a step-up in that band). Unset: the config's.
     */
    rememberDeviceDays: z.strictObject({ medium: z.int().min(0).max(400).optional(), high: z.int().min(0).max(400).optional() }).optional(),
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

/** The previous default, kept so its recorded decisions can be replayed and compared. */
export const DEFAULT_POLICY_2: PolicyDocument = Object.freeze({
  version: 'default-2',
  weights: Object.freeze({ NEW_DEVICE: 10, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 50, SUSPICIOUS_IP: 30, FAILED_ATTEMPTS: 15 }),
  failedAttempts: Object.freeze({ threshold: 3 }),
  thresholds: Object.freeze({ stepUp: 25, high: 60, deny: 90 }),
  phishingResistantAt: 'high',
});

/**
 * default-3 (issue 8). A new device alone (10) or a new network alone (10) stays below step-up
 * (25): people buy laptops and travel with them. A new device on a network the account never
 * used is how a stolen password is used, so the combination adds 20 (total 40). Hosting, VPN and
 * cross-account patterns step up on their own; Tor, deny lists and impossible travel reach the
 * high band (phishing-resistant factor); deny needs several independent signals. Trust signals
 * weigh 0: they explain an allow, they do not buy off a risk signal.
 */
export const DEFAULT_POLICY: PolicyDocument = Object.freeze({
  version: 'default-3',
  weights: Object.freeze({
    NEW_DEVICE: 10,
    NEW_COUNTRY: 10,
    IMPOSSIBLE_TRAVEL: 60,
    SUSPICIOUS_IP: 60,
    FAILED_ATTEMPTS: 15,
    NEW_NETWORK: 5,
    NEW_DEVICE_NEW_NETWORK: 20,
    HOSTING_NETWORK: 10,
    ANONYMIZING_NETWORK: 10,
    TOR_EXIT: 60,
    PASSWORD_SPRAY: 30,
    IP_VELOCITY: 30,
    SUBNET_VELOCITY: 20,
    DEVICE_VELOCITY: 30,
    KNOWN_DEVICE: 0,
    KNOWN_NETWORK: 0,
    ALLOWED_NETWORK: 0,
  }),
  failedAttempts: Object.freeze({ threshold: 3 }),
  velocity: Object.freeze({ windowSeconds: 86400, ipAccounts: 2, subnetAccounts: 4, deviceAccounts: 1, sprayAccounts: 3 }),
  thresholds: Object.freeze({ stepUp: 25, high: 60, deny: 120 }),
  phishingResistantAt: 'high',
});

/** One decision, with everything needed to explain and replay it. JSON only (no Dates). */
export interface RiskAssessment {
  score: number;
  level: 'low' | 'medium' | 'high';
  decision: 'allow' | 'step_up' | 'deny';
  /** Risk reasons by contribution, then trust reasons that fired; never empty (NO_SIGNAL). */
  reasons: (SignalName | typeof NO_SIGNAL)[];
  contributions: Partial<Record<SignalName, number>>;
  policyVersion: string;
  signals: Signals;
  country: string | null;
  lat: number | null;
  lon: number | null;
  /** A step-up in this band must use WebAuthn when the user has it (policy `phishingResistantAt`). */
  requirePhishingResistant: boolean;
  /** The policy's cap on remembering a device after this step-up (`rememberDeviceDays`); absent when it sets none. */
  rememberDays?: number;
}

/**
 * Score a signal snapshot under a policy. Pure and deterministic, so a recorded decision can be
 * replayed (or back-tested under another policy) and come out the same. A fired risk signal whose
 * weight is 0 adds nothing and is left out of reasons and contributions (the snapshot in
 * `signals` still shows it fired). Fired trust signals are always listed after the risk reasons
 * — they explain an allow — and NO_SIGNAL stands in when nothing fired, so no decision is
 * unexplained. Snapshots from older builds lack the newer signals: those read as not fired.
 */
export function evaluate(signals: Signals, policy: PolicyDocument): Omit<RiskAssessment, 'country' | 'lat' | 'lon'> {
  const contributions: Partial<Record<SignalName, number>> = {};
  const fired = signals as unknown as Partial<Record<SignalName, unknown>>;
  const weights = policy.weights as Partial<Record<SignalName, number>>;
  let score = 0;
  for (const name of SIGNAL_NAMES) {
    const w = weights[name] ?? (name === 'REMEMBERED_DEVICE' ? REMEMBERED_DEVICE_DEFAULT_WEIGHT : 0);
    if (fired[name] === true && w !== 0) {
      contributions[name] = w;
      score += w;
    }
  }
  score = Math.max(0, score);
  const risk = (Object.keys(contributions) as SignalName[])
    .filter((n) => contributions[n]! > 0)
    .sort((a, b) => contributions[b]! - contributions[a]! || (a < b ? -1 : a > b ? 1 : 0));
  const trust = TRUST_SIGNAL_NAMES.filter((n) => fired[n] === true);
  const reasons: (SignalName | typeof NO_SIGNAL)[] = [...risk, ...trust];
  if (reasons.length === 0) reasons.push(NO_SIGNAL);
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
  const rememberDays = decision === 'step_up' ? policy.rememberDeviceDays?.[level] : undefined;
  return {
    ...(rememberDays !== undefined ? { rememberDays } : {}),
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
/** The last active policy parsed, per database, by version: versions are immutable (src/risk/policy-store.ts). */
const parsedActive = new WeakMap<Queryable, PolicyDocument>();

/**
 * The active policy, read on every call so an activation takes effect at the next login. The
 * document is sent and validated only when the active version changed: scoring a login costs one
 * small query, not a document transfer and a schema parse.
 */
export async function loadActivePolicy(db: Queryable): Promise<PolicyDocument> {
  const held = parsedActive.get(db);
  const { rows } = await db.query<{ version: string; document: unknown }>(
    `SELECT version, CASE WHEN version = $1 THEN NULL ELSE document END AS document
       FROM risk_policies WHERE active ORDER BY created_at DESC, version DESC LIMIT 1`,
    [held?.version ?? null],
  );
  const row = rows[0];
  if (!row) return DEFAULT_POLICY;
  if (held && row.version === held.version) return held;
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
  parsedActive.set(db, parsed.data);
  return parsed.data;
}
