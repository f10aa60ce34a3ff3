import type { HistoryFacts } from '../../src/risk/history.ts';
import type { NetworkView } from '../../src/risk/network.ts';
import type { RiskInput } from '../../src/risk/signals.ts';

/** A fixed instant for pure risk tests. */
export const T = Date.UTC(2026, 3, 1, 12);

/** History facts of an account with history, last seen in London 20 minutes before T, nothing else known. */
export const riskFacts = (f: Partial<HistoryFacts> = {}): HistoryFacts => ({
  hasHistory: true,
  deviceKnown: false,
  networkKnown: false,
  asnKnown: false,
  uaFamilyKnown: false,
  countries: ['GB'],
  lastLocated: { at: T - 20 * 60_000, lat: 51.51, lon: -0.09, radiusKm: null, networkType: 'residential' },
  accountFailures: 0,
  ipFailures: 0,
  ipAccounts: 0,
  subnetAccounts: 0,
  deviceAccounts: 0,
  ipFailedAccounts: 0,
  subnetFailedAccounts: 0,
  ...f,
});

/** A residential fixed line in London (documentation range, AS 64500). */
export const riskNet = (v: Partial<NetworkView> = {}): NetworkView => ({
  ip: '198.51.100.1',
  prefix: '198.51.100.0/24',
  asn: 64500,
  org: 'Example',
  type: 'residential',
  key: '198.51.100.0/24',
  tor: false,
  deniedCidr: null,
  allowedCidr: null,
  geo: { country: 'GB', lat: 51.51, lon: -0.09 },
  ...v,
});

export const riskInput = (i: Partial<RiskInput> = {}): RiskInput => ({ identityId: 'u1', deviceId: 'd1', ip: '198.51.100.1', at: T, ...i });
