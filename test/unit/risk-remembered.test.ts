import { describe, expect, it } from 'vitest';
import { decide } from '../../src/risk/score.ts';
import { DEFAULT_POLICY, PolicyDocumentSchema, REMEMBERED_DEVICE_DEFAULT_WEIGHT } from '../../src/risk/policy.ts';
import { riskFacts, riskInput, riskNet } from '../helpers/risk-fixtures.ts';

/** The remembered-device signal (issue 12 item 5) in the pure engine. */
describe('REMEMBERED_DEVICE', () => {
  // A known device abroad on a VPN: NEW_COUNTRY 10 + NEW_NETWORK 5 + ANONYMIZING_NETWORK 10 = 25, a step-up.
  const abroad = riskNet({ type: 'vpn', geo: { country: 'FR', lat: 48.85, lon: 2.35 }, prefix: '203.0.113.0/24', key: '203.0.113.0/24', ip: '203.0.113.9' });
  const known = riskFacts({ deviceKnown: true, lastLocated: null });

  it('lowers a medium-band step-up under default-3 to an allow', () => {
    const plain = decide(riskInput(), known, abroad, DEFAULT_POLICY);
    expect(plain).toMatchObject({ decision: 'step_up', score: 25 });
    const rem = decide(riskInput({ rememberedDevice: true }), known, abroad, DEFAULT_POLICY);
    expect(rem).toMatchObject({ decision: 'allow', score: 0, contributions: { REMEMBERED_DEVICE: REMEMBERED_DEVICE_DEFAULT_WEIGHT } });
    expect(rem.reasons).toContain('REMEMBERED_DEVICE');
  });

  it('counts the device as known: no NEW_DEVICE or new-device velocity', () => {
    const fresh = riskFacts({ deviceKnown: false, ipFailedAccounts: 5 });
    const plain = decide(riskInput(), fresh, riskNet(), DEFAULT_POLICY);
    expect(plain.signals).toMatchObject({ NEW_DEVICE: true, PASSWORD_SPRAY: true });
    const rem = decide(riskInput({ rememberedDevice: true }), fresh, riskNet(), DEFAULT_POLICY);
    expect(rem.signals).toMatchObject({ NEW_DEVICE: false, PASSWORD_SPRAY: false, KNOWN_DEVICE: true, REMEMBERED_DEVICE: true });
  });

  it('never lifts a deny', () => {
    // Tor (60) + deny list (60) = 120: deny under default-3, whatever a remembered device would subtract.
    const hostile = riskNet({ tor: true, deniedCidr: '198.51.100.0/24' });
    const plain = decide(riskInput(), known, hostile, DEFAULT_POLICY);
    expect(plain.decision).toBe('deny');
    const rem = decide(riskInput({ rememberedDevice: true }), known, hostile, DEFAULT_POLICY);
    expect(rem).toMatchObject({ decision: 'deny', score: plain.score, level: 'high' });
    expect(rem.contributions).not.toHaveProperty('REMEMBERED_DEVICE');
    expect(rem.signals).toMatchObject({ REMEMBERED_DEVICE: true, details: { rememberedOverruled: true } });
    // Even a policy that weighs it enormously.
    const heavy = { ...DEFAULT_POLICY, version: 'heavy', weights: { ...DEFAULT_POLICY.weights, REMEMBERED_DEVICE: -1000 } };
    expect(decide(riskInput({ rememberedDevice: true }), known, hostile, heavy).decision).toBe('deny');
  });

  it('lowers a high band only to medium under default-3 (a deny-listed address alone scores 60)', () => {
    const listed = riskNet({ deniedCidr: '198.51.100.0/24' });
    const facts = riskFacts({ deviceKnown: true, networkKnown: true });
    expect(decide(riskInput(), facts, listed, DEFAULT_POLICY)).toMatchObject({ decision: 'step_up', level: 'high', requirePhishingResistant: true });
    expect(decide(riskInput({ rememberedDevice: true }), facts, listed, DEFAULT_POLICY)).toMatchObject({ decision: 'step_up', level: 'medium', requirePhishingResistant: false });
  });

  it('an attempt without remembered-device data scores exactly as before (replays, back-tests)', () => {
    const a = decide(riskInput(), known, abroad, DEFAULT_POLICY);
    const b = decide(riskInput({ rememberedDevice: undefined }), known, abroad, DEFAULT_POLICY);
    expect(b).toEqual(a);
    expect(a.signals).not.toHaveProperty('REMEMBERED_DEVICE');
    expect(a).not.toHaveProperty('rememberDays');
    // An unknown identity cannot be remembered.
    expect(decide(riskInput({ identityId: null, rememberedDevice: true }), known, abroad, DEFAULT_POLICY).signals).not.toHaveProperty('REMEMBERED_DEVICE');
  });

  it('a policy may turn it off (weight 0) and cap the days per band', () => {
    const off = PolicyDocumentSchema.parse({ ...DEFAULT_POLICY, version: 'off', weights: { ...DEFAULT_POLICY.weights, REMEMBERED_DEVICE: 0 }, rememberDeviceDays: { medium: 14, high: 0 } });
    const r = decide(riskInput({ rememberedDevice: true }), known, abroad, off);
    expect(r).toMatchObject({ decision: 'step_up', score: 25, rememberDays: 14 });
    expect(PolicyDocumentSchema.safeParse({ ...DEFAULT_POLICY, weights: { ...DEFAULT_POLICY.weights, REMEMBERED_DEVICE: 5 } }).success).toBe(false);
    expect(PolicyDocumentSchema.safeParse({ ...DEFAULT_POLICY, rememberDeviceDays: { low: 3 } }).success).toBe(false);
  });
});
