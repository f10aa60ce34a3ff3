import { describe, expect, it } from 'vitest';
import { explain, FALLBACK_REASONS, userMessage } from '../../src/risk/explain.ts';
import { DEFAULT_POLICY, evaluate } from '../../src/risk/policy.ts';
import { evaluateUnder, shadowFor } from '../../src/risk/shadow.ts';
import type { Signals } from '../../src/risk/signals.ts';

const signals = (over: Partial<Signals> = {}, details: Partial<Signals['details']> = {}): Signals => ({
  NEW_DEVICE: false,
  NEW_COUNTRY: false,
  IMPOSSIBLE_TRAVEL: false,
  SUSPICIOUS_IP: false,
  FAILED_ATTEMPTS: false,
  ...over,
  details: { hasHistory: true, accountFailures: 0, ipFailures: 0, speedKmh: null, deniedCidr: null, ...details },
});

describe('explain', () => {
  it('summarises the decision with each reason in the catalog text, using the signal details', () => {
    const s = signals({ IMPOSSIBLE_TRAVEL: true, NEW_DEVICE: true, FAILED_ATTEMPTS: true }, { speedKmh: 10456.4, accountFailures: 4, ipFailures: 14 });
    const a = evaluate(s, DEFAULT_POLICY);
    const e = explain({ ...a, country: 'AU' });
    expect(e.summary).toBe(
      'stepped up: impossible travel: 10456 km/h since the previous sign-in; 4 failed password attempts on this account and 14 from this address in the window; new device: this user never signed in successfully from it (score 75 under policy default-2)',
    );
    expect(e.reasons.map((r) => [r.code, r.direction])).toEqual([
      ['IMPOSSIBLE_TRAVEL', 'risk'],
      ['FAILED_ATTEMPTS', 'risk'],
      ['NEW_DEVICE', 'risk'],
    ]);
  });

  it('names the country, marks outcome codes as context and never drops an unknown code', () => {
    const e = explain({ decision: 'deny', score: 95, reasons: ['NEW_COUNTRY', 'RISK_DENY', 'ASN_HOSTING'], contributions: { NEW_COUNTRY: 20, ASN_HOSTING: -5 }, signals: null, country: 'DE' });
    expect(e.reasons).toEqual([
      { code: 'NEW_COUNTRY', text: 'first sign-in from DE, a country this user never signed in from', direction: 'risk' },
      { code: 'RISK_DENY', text: FALLBACK_REASONS.RISK_DENY.analyst({}), direction: 'context' },
      { code: 'ASN_HOSTING', text: 'signal ASN_HOSTING (no description in the reason catalog)', direction: 'trust' },
    ]);
    expect(explain({ decision: 'allow', score: 0, reasons: [] }).summary).toBe('allowed: nothing unusual (score 0)');
    expect(explain({ decision: 'step_up', score: 0, reasons: ['RISK_UNAVAILABLE'], policyVersion: 'none' }).summary).toMatch(/^stepped up: the risk scorer did not answer/);
  });

  it('tells the person signing in what happened without figures or internals', () => {
    const m = userMessage(['IMPOSSIBLE_TRAVEL', 'FAILED_ATTEMPTS', 'NEW_DEVICE', 'MYSTERY', 'OTHER_MYSTERY']);
    expect(m).toBe(
      'This sign-in comes from far away from your last one. There were several failed attempts to sign in recently. We did not recognise this device. Something about this sign-in looked unusual.',
    );
    expect(m).not.toMatch(/\d|km|score|policy/);
    expect(userMessage([])).toBe('Nothing unusual about this sign-in.');
    // Prototype keys are not catalog entries.
    expect(userMessage(['constructor'])).toBe('Something about this sign-in looked unusual.');
  });
});

describe('shadow evaluation', () => {
  it('recomputes FAILED_ATTEMPTS under the shadow policy threshold from the recorded counts', () => {
    const s = signals({ FAILED_ATTEMPTS: false }, { accountFailures: 2, ipFailures: 1 });
    const lenient = evaluateUnder(s, DEFAULT_POLICY); // threshold 3
    expect(lenient.reasons).toEqual([]);
    const tight = evaluateUnder(s, { ...DEFAULT_POLICY, version: 'tight', failedAttempts: { threshold: 2 } });
    expect(tight).toMatchObject({ reasons: ['FAILED_ATTEMPTS'], score: 15, policyVersion: 'tight' });
  });

  it('records nothing without signals (fail-closed step-up) or when the shadow is the scoring policy', async () => {
    const harsh = { ...DEFAULT_POLICY, version: 'harsh', weights: { ...DEFAULT_POLICY.weights, NEW_DEVICE: 95 } };
    const get = async () => harsh;
    expect(await shadowFor({ policyVersion: 'none', signals: null }, get)).toBeNull();
    expect(await shadowFor(null, get)).toBeNull();
    expect(await shadowFor({ policyVersion: 'harsh', signals: signals({ NEW_DEVICE: true }) }, get)).toBeNull();
    expect(await shadowFor({ policyVersion: 'default-2', signals: signals({ NEW_DEVICE: true }) }, get)).toEqual({
      policyVersion: 'harsh',
      decision: 'deny',
      score: 95,
      reasons: ['NEW_DEVICE'],
    });
    expect(await shadowFor({ policyVersion: 'default-2', signals: signals({ NEW_DEVICE: true }) }, async () => null)).toBeNull();
  });
});
