import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { DEFAULT_POLICY, DEFAULT_POLICY_2, evaluate, PolicyDocumentSchema, SIGNAL_NAMES, type PolicyDocument, type SignalName } from '../../src/risk/policy.ts';
import { REASONS, describeReason } from '../../src/risk/reasons.ts';
import type { Signals } from '../../src/risk/signals.ts';

// A snapshot as default-2 builds stored it: only the first five signals exist.
const sig = (...fired: SignalName[]): Signals => ({
  NEW_DEVICE: fired.includes('NEW_DEVICE'),
  NEW_COUNTRY: fired.includes('NEW_COUNTRY'),
  IMPOSSIBLE_TRAVEL: fired.includes('IMPOSSIBLE_TRAVEL'),
  SUSPICIOUS_IP: fired.includes('SUSPICIOUS_IP'),
  FAILED_ATTEMPTS: fired.includes('FAILED_ATTEMPTS'),
  details: { hasHistory: true, accountFailures: 0, ipFailures: 0, speedKmh: null, deniedCidr: null },
});
// A snapshot with every signal named (current builds).
const full = (...fired: SignalName[]): Signals =>
  ({ ...Object.fromEntries(SIGNAL_NAMES.map((n) => [n, fired.includes(n)])), details: sig().details }) as unknown as Signals;

// Weights chosen so the scores 24, 25, 89 and 90 are reachable.
const edges: PolicyDocument = {
  version: 'edges',
  weights: { NEW_DEVICE: 24, NEW_COUNTRY: 1, IMPOSSIBLE_TRAVEL: 65, SUSPICIOUS_IP: 0, FAILED_ATTEMPTS: 0 },
  failedAttempts: { threshold: 3 },
  thresholds: { stepUp: 25, deny: 90 },
};

describe('evaluate', () => {
  it.each([
    [['NEW_DEVICE'], 24, 'allow', 'low'],
    [['NEW_DEVICE', 'NEW_COUNTRY'], 25, 'step_up', 'medium'],
    [['NEW_DEVICE', 'IMPOSSIBLE_TRAVEL'], 89, 'step_up', 'medium'],
    [['NEW_DEVICE', 'NEW_COUNTRY', 'IMPOSSIBLE_TRAVEL'], 90, 'deny', 'high'],
  ] as const)('%j scores %i → %s', (fired, score, decision, level) => {
    const a = evaluate(sig(...fired), edges);
    expect(a).toMatchObject({ score, decision, level, policyVersion: 'edges' });
  });

  it('scores nothing fired as 0 / allow, explained by NO_SIGNAL (never an empty reason list)', () => {
    expect(evaluate(sig(), DEFAULT_POLICY)).toMatchObject({ score: 0, decision: 'allow', level: 'low', reasons: ['NO_SIGNAL'], contributions: {} });
    expect(evaluate(sig(), DEFAULT_POLICY_2).reasons).toEqual(['NO_SIGNAL']);
  });

  it('lists fired trust signals after the risk reasons, so an allow says why', () => {
    expect(evaluate(full('KNOWN_DEVICE', 'KNOWN_NETWORK'), DEFAULT_POLICY)).toMatchObject({ decision: 'allow', score: 0, reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'], contributions: {} });
    expect(evaluate(full('NEW_NETWORK', 'KNOWN_DEVICE'), DEFAULT_POLICY)).toMatchObject({ decision: 'allow', score: 5, reasons: ['NEW_NETWORK', 'KNOWN_DEVICE'] });
  });

  it('lets a negative trust weight lower the score, never below 0', () => {
    const p: PolicyDocument = { ...DEFAULT_POLICY, version: 'trusting', weights: { ...DEFAULT_POLICY.weights, KNOWN_DEVICE: -15 } };
    expect(evaluate(full('NEW_COUNTRY', 'NEW_NETWORK', 'HOSTING_NETWORK', 'KNOWN_DEVICE'), p)).toMatchObject({ score: 10, decision: 'allow', contributions: { NEW_COUNTRY: 10, NEW_NETWORK: 5, HOSTING_NETWORK: 10, KNOWN_DEVICE: -15 } });
    expect(evaluate(full('KNOWN_DEVICE'), p).score).toBe(0);
    expect(PolicyDocumentSchema.safeParse({ ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, KNOWN_DEVICE: 5 } }).success).toBe(false);
  });

  it('default-3: a new device alone or a new network alone is allowed; both together step up', () => {
    expect(evaluate(full('NEW_DEVICE'), DEFAULT_POLICY).decision).toBe('allow');
    expect(evaluate(full('NEW_NETWORK', 'KNOWN_DEVICE'), DEFAULT_POLICY).decision).toBe('allow');
    expect(evaluate(full('NEW_DEVICE', 'NEW_NETWORK', 'NEW_DEVICE_NEW_NETWORK'), DEFAULT_POLICY)).toMatchObject({ score: 35, decision: 'step_up', level: 'medium' });
    // A known device abroad on a new network is the owner travelling.
    expect(evaluate(full('NEW_COUNTRY', 'NEW_NETWORK', 'KNOWN_DEVICE'), DEFAULT_POLICY).decision).toBe('allow');
    for (const s of ['IP_VELOCITY', 'DEVICE_VELOCITY', 'PASSWORD_SPRAY'] as const) {
      expect(evaluate(full('NEW_DEVICE', s), DEFAULT_POLICY).decision, s).toBe('step_up');
    }
    for (const s of ['HOSTING_NETWORK', 'ANONYMIZING_NETWORK'] as const) {
      // On an account with history: stepped up; a first login from a cloud desktop is not.
      expect(evaluate(full('NEW_DEVICE', 'NEW_NETWORK', 'NEW_DEVICE_NEW_NETWORK', s), DEFAULT_POLICY).decision, s).toBe('step_up');
      expect(evaluate(full('NEW_DEVICE', s), DEFAULT_POLICY).decision, s).toBe('allow');
      expect(evaluate(full('KNOWN_DEVICE', 'NEW_NETWORK', s), DEFAULT_POLICY).decision, s).toBe('allow');
    }
    // Cross-account patterns never deny on their own: a benign colleague passes the step-up.
    expect(evaluate(full('NEW_DEVICE', 'NEW_NETWORK', 'NEW_DEVICE_NEW_NETWORK', 'NEW_COUNTRY', 'IP_VELOCITY', 'SUBNET_VELOCITY'), DEFAULT_POLICY).decision).toBe('step_up');
    expect(evaluate(full('NEW_DEVICE', 'TOR_EXIT'), DEFAULT_POLICY)).toMatchObject({ decision: 'step_up', level: 'high', requirePhishingResistant: true });
  });

  it('applies the default-2 edges (25 step-up, 90 deny) to a stored default-2 snapshot', () => {
    expect(evaluate(sig('NEW_DEVICE'), DEFAULT_POLICY_2).decision).toBe('allow');
    expect(evaluate(sig('NEW_DEVICE', 'FAILED_ATTEMPTS'), DEFAULT_POLICY_2)).toMatchObject({ score: 25, decision: 'step_up' });
    expect(evaluate(sig('NEW_DEVICE', 'SUSPICIOUS_IP', 'IMPOSSIBLE_TRAVEL'), DEFAULT_POLICY_2)).toMatchObject({
      score: 90,
      decision: 'deny',
      policyVersion: 'default-2',
    });
    // ...and a new snapshot under the old policy: the signals it does not weigh add nothing.
    expect(evaluate(full('NEW_DEVICE', 'HOSTING_NETWORK', 'KNOWN_NETWORK'), DEFAULT_POLICY_2)).toMatchObject({ score: 10, reasons: ['NEW_DEVICE', 'KNOWN_NETWORK'] });
  });

  it('orders reasons by contribution, then by name, and records only fired signals', () => {
    const p: PolicyDocument = {
      ...DEFAULT_POLICY,
      weights: { NEW_DEVICE: 10, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 50, SUSPICIOUS_IP: 20, FAILED_ATTEMPTS: 10 },
    };
    const a = evaluate(sig('FAILED_ATTEMPTS', 'SUSPICIOUS_IP', 'NEW_DEVICE', 'NEW_COUNTRY'), p);
    expect(a.reasons).toEqual(['NEW_COUNTRY', 'SUSPICIOUS_IP', 'FAILED_ATTEMPTS', 'NEW_DEVICE']);
    expect(a.contributions).toEqual({ NEW_COUNTRY: 20, SUSPICIOUS_IP: 20, FAILED_ATTEMPTS: 10, NEW_DEVICE: 10 });
    expect(a.score).toBe(60);
  });

  it('leaves a zero-weight signal out of reasons but keeps it in the snapshot', () => {
    const a = evaluate(sig('SUSPICIOUS_IP', 'NEW_DEVICE'), edges);
    expect(a.reasons).toEqual(['NEW_DEVICE']);
    expect(a.contributions).toEqual({ NEW_DEVICE: 24 });
    expect(a.signals.SUSPICIOUS_IP).toBe(true);
  });

  it('is deterministic and JSON-clean (replayable)', () => {
    const s = sig('NEW_COUNTRY', 'NEW_DEVICE');
    const a = evaluate(s, DEFAULT_POLICY);
    expect(evaluate(JSON.parse(JSON.stringify(s)), DEFAULT_POLICY)).toEqual(a);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    expect(a.signals).not.toBe(s);
  });
});

describe('PolicyDocumentSchema', () => {
  it('accepts the default policies; the migration activates exactly DEFAULT_POLICY', () => {
    expect(PolicyDocumentSchema.parse(DEFAULT_POLICY)).toEqual(DEFAULT_POLICY);
    expect(PolicyDocumentSchema.parse(DEFAULT_POLICY_2)).toEqual(DEFAULT_POLICY_2);
    const sql = readFileSync(new URL('../../db/migrations/0021_risk_policy_default_3.sql', import.meta.url), 'utf8');
    const docs = [...sql.matchAll(/VALUES \('([^']+)', '([^']+)'::jsonb/g)].map((m) => [m[1], JSON.parse(m[2])]);
    expect(Object.fromEntries(docs)).toEqual({ 'default-2': DEFAULT_POLICY_2, 'default-3': DEFAULT_POLICY });
    expect(DEFAULT_POLICY_2).toEqual({
      version: 'default-2',
      weights: { NEW_DEVICE: 10, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 50, SUSPICIOUS_IP: 30, FAILED_ATTEMPTS: 15 },
      failedAttempts: { threshold: 3 },
      thresholds: { stepUp: 25, high: 60, deny: 90 },
      phishingResistantAt: 'high',
    });
  });

  it('splits step-up into medium and high bands and demands phishing resistance from the high band', () => {
    const at = (fired: SignalName[]) => evaluate(sig(...fired), DEFAULT_POLICY_2);
    expect(at(['NEW_COUNTRY', 'NEW_DEVICE'])).toMatchObject({ score: 30, decision: 'step_up', level: 'medium', requirePhishingResistant: false });
    expect(at(['IMPOSSIBLE_TRAVEL', 'NEW_DEVICE'])).toMatchObject({ score: 60, decision: 'step_up', level: 'high', requirePhishingResistant: true });
    expect(at([])).toMatchObject({ decision: 'allow', requirePhishingResistant: false });
    const strict = { ...DEFAULT_POLICY_2, version: 'strict', phishingResistantAt: 'medium' as const };
    expect(evaluate(sig('SUSPICIOUS_IP'), strict)).toMatchObject({ level: 'medium', requirePhishingResistant: true });
    expect(() => PolicyDocumentSchema.parse({ ...DEFAULT_POLICY, thresholds: { stepUp: 25, high: 95, deny: 90 } })).toThrow(/high/);
  });

  it.each([
    ['an unknown top-level key', { ...DEFAULT_POLICY, shadow: true }],
    ['an unknown weight', { ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, TOR: 5 } }],
    ['an unknown threshold key', { ...DEFAULT_POLICY, thresholds: { stepUp: 25, deny: 90, block: 95 } }],
    ['a missing weight', { ...DEFAULT_POLICY, weights: { NEW_DEVICE: 10 } }],
    ['a negative weight', { ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, NEW_DEVICE: -1 } }],
    ['a fractional weight', { ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, NEW_DEVICE: 1.5 } }],
    ['a failure threshold of 0', { ...DEFAULT_POLICY, failedAttempts: { threshold: 0 } }],
    ['an empty version', { ...DEFAULT_POLICY, version: '' }],
  ])('rejects %s', (_, doc) => {
    expect(PolicyDocumentSchema.safeParse(doc).success).toBe(false);
  });

  it('rejects stepUp above deny, pointing at thresholds.stepUp', () => {
    const r = PolicyDocumentSchema.safeParse({ ...DEFAULT_POLICY, thresholds: { stepUp: 91, deny: 90 } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].path).toEqual(['thresholds', 'stepUp']);
    expect(PolicyDocumentSchema.safeParse({ ...DEFAULT_POLICY, thresholds: { stepUp: 90, deny: 90 } }).success).toBe(true);
  });
});

describe('reasons catalog', () => {
  it('has an entry for every signal and for NO_SIGNAL, trust for the KNOWN_* ones', () => {
    for (const n of [...SIGNAL_NAMES, 'NO_SIGNAL']) expect(REASONS, n).toHaveProperty(n);
    expect(REASONS.KNOWN_DEVICE.direction).toBe('trust');
    expect(REASONS.ALLOWED_NETWORK.direction).toBe('trust');
    expect(REASONS.IP_VELOCITY.direction).toBe('risk');
  });

  it('quotes figures for the analyst and none for the user', () => {
    const d = describeReason('SUBNET_VELOCITY', { subnetAccounts: 14, prefix: '81.2.69.0/24', velocityWindowSeconds: 3600 });
    expect(d.analyst).toBe('14 other accounts were tried from 81.2.69.0/24 in the last hour from devices new to them.');
    for (const code of Object.keys(REASONS)) {
      const u = describeReason(code, { subnetAccounts: 14, asn: 64500, prefix: '81.2.69.0/24', deniedCidr: '5.9.0.0/16' }).user;
      expect(u, code).not.toMatch(/\d|\/|\bAS\b/);
      expect(u, code).not.toMatch(/threshold|list|cidr|asn|\btor\b|vpn|proxy|hosting|velocity|km/i);
    }
    expect(describeReason('NEW_DEVICE').user).toBe("We don't recognise this device.");
  });

  it('describes an unknown code neutrally instead of failing', () => {
    expect(describeReason('MFA_LOCKED')).toMatchObject({ code: 'MFA_LOCKED', direction: 'risk' });
  });
});
