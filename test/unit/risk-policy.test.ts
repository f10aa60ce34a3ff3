import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, evaluate, PolicyDocumentSchema, type PolicyDocument, type SignalName } from '../../src/risk/policy.ts';
import type { Signals } from '../../src/risk/signals.ts';

const sig = (...fired: SignalName[]): Signals => ({
  NEW_DEVICE: fired.includes('NEW_DEVICE'),
  NEW_COUNTRY: fired.includes('NEW_COUNTRY'),
  IMPOSSIBLE_TRAVEL: fired.includes('IMPOSSIBLE_TRAVEL'),
  SUSPICIOUS_IP: fired.includes('SUSPICIOUS_IP'),
  FAILED_ATTEMPTS: fired.includes('FAILED_ATTEMPTS'),
  details: { hasHistory: true, accountFailures: 0, ipFailures: 0, speedKmh: null, deniedCidr: null },
});

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

  it('scores nothing fired as 0 / allow with no reasons', () => {
    expect(evaluate(sig(), DEFAULT_POLICY)).toMatchObject({ score: 0, decision: 'allow', level: 'low', reasons: [], contributions: {} });
  });

  it('applies the default policy edges (25 step-up, 90 deny)', () => {
    expect(evaluate(sig('NEW_DEVICE'), DEFAULT_POLICY).decision).toBe('allow');
    expect(evaluate(sig('NEW_DEVICE', 'FAILED_ATTEMPTS'), DEFAULT_POLICY)).toMatchObject({ score: 25, decision: 'step_up' });
    expect(evaluate(sig('NEW_DEVICE', 'SUSPICIOUS_IP', 'IMPOSSIBLE_TRAVEL'), DEFAULT_POLICY)).toMatchObject({
      score: 90,
      decision: 'deny',
      policyVersion: 'default-2',
    });
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
  it('accepts the default policy', () => {
    expect(PolicyDocumentSchema.parse(DEFAULT_POLICY)).toEqual(DEFAULT_POLICY);
    expect(DEFAULT_POLICY).toEqual({
      version: 'default-2',
      weights: { NEW_DEVICE: 10, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 50, SUSPICIOUS_IP: 30, FAILED_ATTEMPTS: 15 },
      failedAttempts: { threshold: 3 },
      thresholds: { stepUp: 25, high: 60, deny: 90 },
      phishingResistantAt: 'high',
    });
  });

  it('splits step-up into medium and high bands and demands phishing resistance from the high band', () => {
    const at = (fired: SignalName[]) => evaluate(sig(...fired), DEFAULT_POLICY);
    expect(at(['NEW_COUNTRY', 'NEW_DEVICE'])).toMatchObject({ score: 30, decision: 'step_up', level: 'medium', requirePhishingResistant: false });
    expect(at(['IMPOSSIBLE_TRAVEL', 'NEW_DEVICE'])).toMatchObject({ score: 60, decision: 'step_up', level: 'high', requirePhishingResistant: true });
    expect(at([])).toMatchObject({ decision: 'allow', requirePhishingResistant: false });
    const strict = { ...DEFAULT_POLICY, version: 'strict', phishingResistantAt: 'medium' as const };
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
