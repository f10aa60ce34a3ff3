import { describe, expect, it } from 'vitest';
import { computeSignals, DEFAULT_SIGNAL_CONFIG } from '../../src/risk/signals.ts';
import { riskFacts, riskInput, riskNet } from '../helpers/risk-fixtures.ts';

/** computeSignals is pure: (attempt, history facts, network view, config) → Signals. */
const facts = riskFacts;
const net = riskNet;
const input = riskInput;
const EDINBURGH = { country: 'GB', lat: 55.95, lon: -3.19 }; // ~534 km from London
const MADRID = { country: 'ES', lat: 40.42, lon: -3.7 }; // ~1 260 km

describe('computeSignals: impossible travel beyond GeoIP accuracy', () => {
  it('a fixed line 534 km away in 20 minutes is travel (434 km beyond 50 + 50 km: 1 302 km/h)', () => {
    const s = computeSignals(input(), facts(), net({ geo: EDINBURGH }), DEFAULT_SIGNAL_CONFIG);
    expect(s.IMPOSSIBLE_TRAVEL).toBe(true);
    expect(s.details.distanceKm).toBe(534);
  });

  it('a mobile gateway 534 km away is within its 500 + 50 km radii: no travel even for a new device', () => {
    const s = computeSignals(input(), facts(), net({ geo: EDINBURGH, type: 'mobile' }), DEFAULT_SIGNAL_CONFIG);
    expect(s.IMPOSSIBLE_TRAVEL).toBe(false);
    expect(s.details.speedKmh).toBe(0);
  });

  it('a mobile gateway 1 260 km away: travel for a new device, discounted for a known one', () => {
    const far = net({ geo: MADRID, type: 'mobile' });
    expect(computeSignals(input(), facts(), far, DEFAULT_SIGNAL_CONFIG).IMPOSSIBLE_TRAVEL).toBe(true);
    const known = computeSignals(input(), facts({ deviceKnown: true }), far, DEFAULT_SIGNAL_CONFIG);
    expect(known.IMPOSSIBLE_TRAVEL).toBe(false);
    expect(known.details.travelDiscounted).toBe(true);
  });

  it('uses the database radius when it has one', () => {
    const s = computeSignals(input(), facts(), net({ geo: { ...EDINBURGH, radiusKm: 500 } }), DEFAULT_SIGNAL_CONFIG);
    expect(s.IMPOSSIBLE_TRAVEL).toBe(false);
  });

  it('a network the account already uses is where the account already is', () => {
    const s = computeSignals(input({ deviceId: 'new' }), facts({ networkKnown: true }), net({ geo: MADRID }), DEFAULT_SIGNAL_CONFIG);
    expect(s.IMPOSSIBLE_TRAVEL).toBe(false);
    expect(s.details.travelDiscounted).toBe(true);
  });
});

describe('computeSignals: cross-account signals need a new device here', () => {
  const busy = facts({ ipAccounts: 9, subnetAccounts: 9, deviceAccounts: 9, ipFailedAccounts: 9, subnetFailedAccounts: 9 });
  it('fire for a new device', () => {
    const s = computeSignals(input(), busy, net(), DEFAULT_SIGNAL_CONFIG);
    expect([s.IP_VELOCITY, s.SUBNET_VELOCITY, s.DEVICE_VELOCITY, s.PASSWORD_SPRAY]).toEqual([true, true, true, true]);
  });
  it('stay silent for a known device (the colleague behind the office NAT) and on an allow-listed egress', () => {
    const known = computeSignals(input(), { ...busy, deviceKnown: true }, net(), DEFAULT_SIGNAL_CONFIG);
    expect([known.IP_VELOCITY, known.SUBNET_VELOCITY, known.DEVICE_VELOCITY, known.PASSWORD_SPRAY]).toEqual([false, false, false, false]);
    const allowed = computeSignals(input(), busy, net({ allowedCidr: '198.51.100.0/24', type: 'business' }), DEFAULT_SIGNAL_CONFIG);
    expect([allowed.IP_VELOCITY, allowed.SUBNET_VELOCITY, allowed.PASSWORD_SPRAY]).toEqual([false, false, false]);
    expect(allowed.ALLOWED_NETWORK).toBe(true);
  });
  it('ask three times as many accounts of one mobile CGNAT address, and none of a mobile prefix', () => {
    const mobile = net({ type: 'mobile', key: 'AS64500' });
    expect(computeSignals(input(), facts({ ipAccounts: 5, subnetAccounts: 50 }), mobile, DEFAULT_SIGNAL_CONFIG)).toMatchObject({ IP_VELOCITY: false, SUBNET_VELOCITY: false });
    expect(computeSignals(input(), facts({ ipAccounts: 6 }), mobile, DEFAULT_SIGNAL_CONFIG).IP_VELOCITY).toBe(true);
  });
});

describe('computeSignals: network novelty', () => {
  it('hosting used before is not new; hosting never used is, even without history', () => {
    const cloud = net({ type: 'hosting', key: 'AS16509' });
    expect(computeSignals(input(), facts({ networkKnown: true }), cloud, DEFAULT_SIGNAL_CONFIG).HOSTING_NETWORK).toBe(false);
    const first = computeSignals(input(), facts({ hasHistory: false, lastLocated: null, countries: [] }), cloud, DEFAULT_SIGNAL_CONFIG);
    expect(first).toMatchObject({ HOSTING_NETWORK: true, NEW_NETWORK: false, NEW_DEVICE_NEW_NETWORK: false, NEW_COUNTRY: false });
  });
  it('is JSON-clean', () => {
    const s = computeSignals(input({ userAgent: 'python-requests/2.32' }), facts(), net(), DEFAULT_SIGNAL_CONFIG);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(s.details.uaFamily).toBe('Script/Other');
  });
});
