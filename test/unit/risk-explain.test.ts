import { describe, expect, it } from 'vitest';
import { CATALOG, explain, userMessage } from '../../src/risk/explain.ts';
import { MemoryRiskHistory, type HistoryFacts } from '../../src/risk/history.ts';
import { DEFAULT_POLICY, evaluate, NO_SIGNAL, SIGNAL_NAMES, type PolicyDocument } from '../../src/risk/policy.ts';
import { REASONS } from '../../src/risk/reasons.ts';
import { decide, signalConfig, toRecorded, type ScoreSettings } from '../../src/risk/score.ts';
import { decideUnder, shadowFor, type ShadowSubject } from '../../src/risk/shadow.ts';
import { historyQuery, type RiskInput, type Signals } from '../../src/risk/signals.ts';
import { riskFacts, riskInput, riskNet, T } from '../helpers/risk-fixtures.ts';

const signals = (over: Partial<Signals> = {}, details: Partial<Signals['details']> = {}): Signals => ({
  NEW_DEVICE: false,
  NEW_COUNTRY: false,
  IMPOSSIBLE_TRAVEL: false,
  SUSPICIOUS_IP: false,
  FAILED_ATTEMPTS: false,
  ...over,
  details: { hasHistory: true, accountFailures: 0, ipFailures: 0, speedKmh: null, deniedCidr: null, ...details },
});

/** Details with every figure an analyst text may quote: none of them may reach the user text. */
const RICH: Signals['details'] = {
  hasHistory: true,
  accountFailures: 4,
  ipFailures: 14,
  speedKmh: 10456.4,
  distanceKm: 16990,
  deniedCidr: '5.9.0.0/16',
  allowedCidr: '198.51.100.0/24',
  asn: 64500,
  org: 'Example Hosting',
  connectionType: 'hosting',
  prefix: '203.0.113.0/24',
  country: 'AU',
  ipAccounts: 7,
  subnetAccounts: 14,
  deviceAccounts: 3,
  ipFailedAccounts: 5,
  subnetFailedAccounts: 9,
  failureWindowSeconds: 3600,
  velocityWindowSeconds: 3600,
};

describe('explain', () => {
  it("summarises the decision in the engine's catalog texts, quoting the signal details", () => {
    const s = signals({ IMPOSSIBLE_TRAVEL: true, NEW_DEVICE: true, FAILED_ATTEMPTS: true, SUBNET_VELOCITY: true }, RICH);
    const a = evaluate(s, DEFAULT_POLICY);
    const e = explain({ ...a, country: 'AU' });
    expect(e.summary).toBe(
      'stepped up: since the last located sign-in the account would have travelled 16990 km at 10456.4 km/h (beyond the GeoIP accuracy of both fixes); ' +
        '14 other accounts were tried from 203.0.113.0/24 in the last hour from devices new to them; ' +
        '4 failed attempts on this account and 14 from this address in the last hour; ' +
        'this device has never completed a sign-in to this account (score 105 under policy default-3)',
    );
    expect(e.reasons.map((r) => [r.code, r.direction])).toEqual([
      ['IMPOSSIBLE_TRAVEL', 'risk'],
      ['SUBNET_VELOCITY', 'risk'],
      ['FAILED_ATTEMPTS', 'risk'],
      ['NEW_DEVICE', 'risk'],
    ]);
    // A snapshot from before distanceKm was recorded: the speed alone, no placeholder.
    expect(explain({ decision: 'step_up', reasons: ['IMPOSSIBLE_TRAVEL'], signals: signals({}, { speedKmh: 1200 }) }).reasons[0].text).toBe(
      'Since the last located sign-in the account would have travelled at 1200 km/h (beyond the GeoIP accuracy of both fixes).',
    );
  });

  it('explains an allow by its trust reasons, and NO_SIGNAL when nothing fired', () => {
    const known = evaluate(signals({ KNOWN_DEVICE: true, KNOWN_NETWORK: true }, { prefix: '198.51.100.0/24', asn: 64500, org: 'Example' }), DEFAULT_POLICY);
    expect(known.reasons).toEqual(['KNOWN_DEVICE', 'KNOWN_NETWORK']);
    expect(explain(known).summary).toBe(
      'allowed: this device has completed a sign-in to this account before; the account has signed in from this network before (198.51.100.0/24, AS64500 (Example)) (score 0 under policy default-3)',
    );
    expect(explain(known).reasons.map((r) => r.direction)).toEqual(['trust', 'trust']);
    const nothing = evaluate(signals({}, { hasHistory: false }), DEFAULT_POLICY);
    expect(nothing.reasons).toEqual([NO_SIGNAL]);
    expect(explain(nothing).summary).toBe('allowed: no risk signal fired for this attempt (score 0 under policy default-3)');
  });

  it('names the country, marks outcome codes as context and never drops an unknown code', () => {
    const e = explain({ decision: 'deny', score: 95, reasons: ['NEW_COUNTRY', 'RISK_DENY', 'ASN_HOSTING'], contributions: { NEW_COUNTRY: 20, ASN_HOSTING: -5 }, signals: null, country: 'DE' });
    expect(e.reasons).toEqual([
      { code: 'NEW_COUNTRY', text: 'First sign-in from DE for this account.', direction: 'risk' },
      { code: 'RISK_DENY', text: REASONS.RISK_DENY.analyst(), direction: 'context' },
      { code: 'ASN_HOSTING', text: 'signal ASN_HOSTING (no description in the reason catalog)', direction: 'trust' },
    ]);
    expect(explain({ decision: 'allow', score: 0, reasons: [] }).summary).toBe('allowed: nothing unusual (score 0)');
    expect(explain({ decision: 'step_up', score: 0, reasons: ['RISK_UNAVAILABLE'], policyVersion: 'none' }).summary).toMatch(/^stepped up: the risk engine did not answer in time/);
    expect(explain({ decision: 'step_up', reasons: ['RISK_UNAVAILABLE'] }).reasons[0].direction).toBe('risk');
  });

  it('has analyst and user texts for every code the engine can produce', () => {
    for (const code of [...SIGNAL_NAMES, NO_SIGNAL, 'RISK_UNAVAILABLE']) {
      const e = CATALOG[code];
      expect(e, code).toBeDefined();
      expect(e.analyst(RICH).length, code).toBeGreaterThan(10);
      expect(e.user.length, code).toBeGreaterThan(10);
      expect(e.direction, code).toBe(code.startsWith('KNOWN_') || code === 'ALLOWED_NETWORK' || code === 'REMEMBERED_DEVICE' || code === NO_SIGNAL ? 'trust' : 'risk');
    }
  });

  it('tells the person signing in what happened without figures or internals', () => {
    const m = userMessage(['IMPOSSIBLE_TRAVEL', 'FAILED_ATTEMPTS', 'NEW_DEVICE', 'MYSTERY', 'OTHER_MYSTERY']);
    expect(m).toBe(
      "This sign-in comes from far away from where you signed in recently. There were several unsuccessful attempts to sign in to your account recently. We don't recognise this device. Something about this sign-in looked unusual.",
    );
    expect(userMessage([])).toBe('Nothing unusual about this sign-in.');
    expect(userMessage([NO_SIGNAL])).toBe('Nothing unusual about this sign-in.');
    expect(userMessage(['KNOWN_DEVICE', 'KNOWN_NETWORK'])).toBe('We recognise this device. You have signed in from this network before.');
    // Trust reasons do not explain a step-up; a device text shared by two codes is said once.
    expect(userMessage(['NEW_DEVICE_NEW_NETWORK', 'NEW_DEVICE', 'KNOWN_NETWORK'])).toBe("We don't recognise this device.");
    // Prototype keys are not catalog entries.
    expect(userMessage(['constructor'])).toBe('Something about this sign-in looked unusual.');
    // Every code at once: no count, speed, network, AS, list entry, threshold or policy term leaks.
    for (const code of Object.keys(CATALOG)) {
      expect(CATALOG[code].user, code).not.toMatch(/\d|km|\bAS\b|score|policy|threshold|\bTor\b|VPN|proxy|hosting|velocity|spray|deny|allow-list/i);
    }
    expect(userMessage(Object.keys(CATALOG))).not.toMatch(/\d|203\.0|64500|Example/);
  });
});

// ---------------------------------------------------------------------------------------------
// Shadow: the engine's decide() on the recorded observations.

// This file's account also knows the network (and its AS), and signs in on device d9.
const facts = (f: Partial<HistoryFacts> = {}): HistoryFacts => riskFacts({ networkKnown: true, asnKnown: true, ...f });
const net = riskNet;
const input = (i: Partial<RiskInput> = {}): RiskInput => riskInput({ deviceId: 'd9', ...i });
const LIVE: PolicyDocument = { ...DEFAULT_POLICY, version: 'live' };
const withVelocity = (version: string, v: NonNullable<PolicyDocument['velocity']>): PolicyDocument => ({ ...LIVE, version, velocity: { ...LIVE.velocity, ...v } });
const shadowOf = (
  live: { policyVersion: string; signals: Signals },
  policy: PolicyDocument,
  subject: ShadowSubject = { identityId: 'u1', deviceId: 'd9' },
  history?: MemoryRiskHistory,
) =>
  shadowFor(live, subject, async () => policy, history);

/** Deterministic pseudo-random numbers (mulberry32), so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('shadow evaluation', () => {
  it('a velocity threshold that differs changes the shadow decision as activating that policy would', async () => {
    // Two other accounts tried from this address on devices new to them; ours is a new device on a known network.
    const live = decide(input(), facts({ ipAccounts: 2 }), net(), LIVE);
    expect(live).toMatchObject({ decision: 'step_up', score: 40, reasons: ['IP_VELOCITY', 'NEW_DEVICE', 'KNOWN_NETWORK'] });
    const lax = withVelocity('lax', { ipAccounts: 3 });
    expect(await shadowOf(live, lax)).toEqual({ policyVersion: 'lax', decision: 'allow', score: 10, reasons: ['NEW_DEVICE', 'KNOWN_NETWORK'] });
    // And the other way: a stricter spray count turns an allow into a step-up.
    const quiet = decide(input(), facts({ ipFailedAccounts: 2 }), net(), LIVE);
    expect(quiet.decision).toBe('allow');
    expect(await shadowOf(quiet, withVelocity('strict', { sprayAccounts: 2 }))).toMatchObject({ decision: 'step_up', reasons: ['PASSWORD_SPRAY', 'NEW_DEVICE', 'KNOWN_NETWORK'] });
    // A device-velocity threshold needs the device id the event row keeps: without one it cannot fire.
    const shared = decide(input(), facts({ deviceAccounts: 1 }), net(), withVelocity('v', { deviceAccounts: 2 }));
    expect(shared.decision).toBe('allow');
    expect((await shadowOf(shared, withVelocity('dev', { deviceAccounts: 1 })))?.reasons).toContain('DEVICE_VELOCITY');
    expect((await shadowOf(shared, withVelocity('dev', { deviceAccounts: 1 }), { identityId: 'u1', deviceId: null }))?.reasons).not.toContain('DEVICE_VELOCITY');
  });

  it("keeps the deployment's travel setting: a shadow judges the same journey the live decision judged", async () => {
    // London 20 minutes ago, Madrid now (~1 260 km): impossible at 900 km/h, possible for a deployment allowing 5 000 km/h.
    const madrid = net({ ip: '203.0.113.9', prefix: '203.0.113.0/24', key: '203.0.113.0/24', geo: { country: 'ES', lat: 40.42, lon: -3.7 } });
    const settings: ScoreSettings = { maxTravelKmh: 5000 };
    const live = decide(input({ ip: '203.0.113.9' }), facts({ networkKnown: false }), madrid, LIVE, settings);
    expect(live.signals.IMPOSSIBLE_TRAVEL).toBe(false);
    const twin = await shadowOf(live, { ...LIVE, version: 'twin' });
    expect(twin).toMatchObject({ decision: live.decision, score: live.score, reasons: live.reasons });
    const strict = decide(input({ ip: '203.0.113.9' }), facts({ networkKnown: false }), madrid, LIVE);
    expect(strict.signals.IMPOSSIBLE_TRAVEL).toBe(true);
    // A travel weight that differs is applied to the same journey.
    expect(await shadowOf(strict, { ...LIVE, version: 'no-travel', weights: { ...LIVE.weights, IMPOSSIBLE_TRAVEL: 0 } })).toMatchObject({
      decision: 'step_up',
      score: strict.score - 60,
    });
  });

  it('equals deciding under the shadow policy directly, for any policy; a twin of the active policy always agrees', async () => {
    const next = rng(8);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
    const int = (n: number) => Math.floor(next() * n);
    const types = ['residential', 'mobile', 'hosting', 'vpn', 'business'] as const;
    for (let i = 0; i < 400; i++) {
      const f = facts({
        hasHistory: next() < 0.8,
        deviceKnown: next() < 0.4,
        networkKnown: next() < 0.4,
        asnKnown: next() < 0.5,
        countries: pick([['GB'], ['ES'], []]),
        lastLocated: next() < 0.7 ? { at: T - int(48) * 3_600_000 - 60_000, lat: pick([51.51, 40.42, -33.87]), lon: pick([-0.09, -3.7, 151.21]), radiusKm: null, networkType: null } : null,
        accountFailures: int(6),
        ipFailures: int(6),
        ipAccounts: int(8),
        subnetAccounts: int(10),
        deviceAccounts: int(4),
        ipFailedAccounts: int(6),
        subnetFailedAccounts: int(10),
      });
      const n = net({ type: pick(types), tor: next() < 0.1, deniedCidr: next() < 0.1 ? '198.51.100.0/24' : null, allowedCidr: next() < 0.1 ? '198.51.100.0/24' : null });
      const who: ShadowSubject = { identityId: next() < 0.9 ? 'u1' : null, deviceId: next() < 0.9 ? 'd9' : null };
      const at = input(who);
      const policy = (v: string): PolicyDocument => ({
        ...LIVE,
        version: v,
        failedAttempts: { threshold: 1 + int(5) },
        velocity: { ...LIVE.velocity, ipAccounts: 1 + int(4), subnetAccounts: 1 + int(6), deviceAccounts: 1 + int(3), sprayAccounts: 1 + int(4) },
        weights: { ...LIVE.weights, NEW_DEVICE: int(40), IP_VELOCITY: int(60), KNOWN_DEVICE: -int(20) },
      });
      const active = policy('active');
      const settings: ScoreSettings = { maxTravelKmh: pick([500, 900, 2000]) };
      const live = decide(at, f, n, active, settings);
      // Round-trip through JSON, as the snapshot is stored and queued.
      const stored = { policyVersion: live.policyVersion, signals: JSON.parse(JSON.stringify(live.signals)) as Signals };
      const twin = await shadowOf(stored, { ...active, version: 'twin' }, who);
      expect(twin, `case ${i}`).toEqual({ policyVersion: 'twin', decision: live.decision, score: live.score, reasons: live.reasons });
      const other = policy('other');
      const direct = decide(at, f, n, other, settings);
      expect(await shadowOf(stored, other, who), `case ${i}`).toEqual({ policyVersion: 'other', decision: direct.decision, score: direct.score, reasons: direct.reasons });
    }
  });

  it("re-reads the history when the shadow's velocity window differs (the recorded counts answer another window)", async () => {
    const history = new MemoryRiskHistory();
    const office = net();
    const rec = (i: RiskInput, outcome: 'succeeded' | 'failed') => history.record(toRecorded(i, outcome, office, history.isDeviceNew(i.identityId, i.deviceId)));
    for (const u of ['a2', 'a3']) rec(input({ identityId: u, deviceId: 'old', at: T - 3 * 86_400_000 }), 'succeeded');
    rec(input({ deviceId: 'd1', at: T - 2 * 86_400_000 }), 'succeeded');
    // 20 hours ago two other accounts were tried here on devices new to them.
    for (const u of ['a2', 'a3']) rec(input({ identityId: u, deviceId: 'x', at: T - 20 * 3_600_000 }), 'failed');
    const at = input();
    const live = decide(at, history.facts(historyQuery(at, office, signalConfig(LIVE))), office, LIVE);
    expect(live).toMatchObject({ decision: 'step_up', reasons: ['IP_VELOCITY', 'NEW_DEVICE', 'KNOWN_NETWORK'] });
    const hourly = withVelocity('hourly', { windowSeconds: 3600 });
    expect(await shadowOf(live, hourly, undefined, history)).toMatchObject({ decision: 'allow', reasons: ['NEW_DEVICE', 'KNOWN_NETWORK'] });
    // Same window: the recorded facts are used as they are.
    expect(await shadowOf(live, { ...LIVE, version: 'twin' }, undefined, new MemoryRiskHistory())).toMatchObject({ decision: 'step_up' });
  });

  it('re-weights an old snapshot without observations, recomputing FAILED_ATTEMPTS from the recorded counts', async () => {
    const s = signals({ FAILED_ATTEMPTS: false }, { accountFailures: 2, ipFailures: 1 });
    const who = { identityId: 'u1', deviceId: 'd1' };
    expect((await decideUnder(s, who, DEFAULT_POLICY)).reasons).toEqual([NO_SIGNAL]); // threshold 3
    const tight = await decideUnder(s, who, { ...DEFAULT_POLICY, version: 'tight', failedAttempts: { threshold: 2 } });
    expect(tight).toMatchObject({ reasons: ['FAILED_ATTEMPTS'], score: 15, policyVersion: 'tight' });
  });

  it('records nothing without signals (fail-closed step-up) or when the shadow is the scoring policy', async () => {
    const harsh = { ...DEFAULT_POLICY, version: 'harsh', weights: { ...DEFAULT_POLICY.weights, NEW_DEVICE: 120 } };
    const get = async () => harsh;
    const who = { identityId: 'u1', deviceId: 'd9' };
    const live = decide(input(), facts(), net(), DEFAULT_POLICY);
    expect(await shadowFor({ policyVersion: 'none', signals: null }, who, get)).toBeNull();
    expect(await shadowFor(null, who, get)).toBeNull();
    expect(await shadowFor({ policyVersion: 'harsh', signals: live.signals }, who, get)).toBeNull();
    expect(await shadowFor(live, who, get)).toEqual({ policyVersion: 'harsh', decision: 'deny', score: 120, reasons: ['NEW_DEVICE', 'KNOWN_NETWORK'] });
    expect(await shadowFor(live, who, async () => null)).toBeNull();
  });
});
