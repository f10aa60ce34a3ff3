import { beforeAll, describe, expect, it } from 'vitest';
import { ATTACK_KINDS, BENIGN_KINDS, generate } from '../../src/backtest/generate.ts';
import { formatRecord, type LoginRecord } from '../../src/backtest/record.ts';
import { newReadStats, readAttempts } from '../../src/backtest/jsonl.ts';
import { haversineKm, openGeo, type Geo } from '../../src/risk/geo.ts';
import { createNetworks } from '../../src/risk/network.ts';

const START = Date.UTC(2026, 8, 1);

describe('evaluation set generator', () => {
  let geo: Geo;
  let records: LoginRecord[];
  beforeAll(async () => {
    geo = await openGeo();
    ({ records } = await generate({ seed: 11, users: 300, days: 14, warmupDays: 10, start: START, geo, attackRate: 4 }));
  });

  it('is reproducible from its seed, and another seed gives another set', async () => {
    const again = await generate({ seed: 11, users: 300, days: 14, warmupDays: 10, start: START, geo, attackRate: 4 });
    expect(again.records.map(formatRecord).join('\n')).toBe(records.map(formatRecord).join('\n'));
    const other = await generate({ seed: 12, users: 300, days: 14, warmupDays: 10, start: START, geo, attackRate: 4 });
    expect(other.records.map(formatRecord).slice(0, 50)).not.toEqual(records.map(formatRecord).slice(0, 50));
  });

  it('writes the JSONL format in time order, labels only after the warm-up, every kind present', async () => {
    const text = records.map(formatRecord).join('\n');
    const stats = newReadStats();
    let n = 0;
    let prev = -Infinity;
    for await (const a of readAttempts({ text }, stats)) {
      n++;
      expect(a.at).toBeGreaterThanOrEqual(prev);
      prev = a.at;
      if (a.label) expect(a.at).toBeGreaterThanOrEqual(START + 10 * 86_400_000);
    }
    expect(stats.malformed).toBe(0);
    expect(n).toBe(records.length);
    const kinds = new Set(records.filter((r) => r.label).map((r) => r.kind));
    for (const k of ATTACK_KINDS) expect(kinds, k).toContain(k);
    for (const k of ['home', 'office_nat', 'corporate_vpn', 'mobile_cgnat', 'browser_update', 'typo'] as const) expect(kinds, k).toContain(k);
    for (const k of kinds) expect([...BENIGN_KINDS, ...ATTACK_KINDS] as string[]).toContain(k);
  });

  it('attackers never hold the victim’s device id and have the password (sprayers aside)', () => {
    const devicesOf = new Map<string, Set<string>>();
    for (const r of records) {
      if (r.label === 'attack' || !r.deviceId) continue;
      let s = devicesOf.get(r.user);
      if (!s) devicesOf.set(r.user, (s = new Set()));
      s.add(r.deviceId);
    }
    const attacks = records.filter((r) => r.label === 'attack');
    expect(attacks.length).toBeGreaterThan(100);
    for (const a of attacks) {
      if (a.deviceId) expect(devicesOf.get(a.user)?.has(a.deviceId) ?? false).toBe(false);
      if (a.kind !== 'password_spraying') expect(a.passwordCorrect).toBe(true);
    }
    const spray = attacks.filter((a) => a.kind === 'password_spraying');
    expect(spray.filter((a) => !a.passwordCorrect).length).toBeGreaterThan(spray.filter((a) => a.passwordCorrect).length * 5);
    // An anti-detect profile reuses one device id across many accounts.
    const shared = attacks.filter((a) => a.kind === 'shared_device_many_accounts');
    const byDevice = new Map<string, Set<string>>();
    for (const a of shared) {
      let s = byDevice.get(a.deviceId!);
      if (!s) byDevice.set(a.deviceId!, (s = new Set()));
      s.add(a.user);
    }
    expect(Math.max(...[...byDevice.values()].map((s) => s.size))).toBeGreaterThanOrEqual(5);
  });

  it('places addresses where the scenario says: real networks, right country, right city', () => {
    const nets = createNetworks({ geo });
    const ccOf = (user: string) => user.split('@')[1].slice(0, 2).toUpperCase();
    const home = new Map<string, { lat: number; lon: number }>();
    for (const r of records) if (r.kind === 'home' && !home.has(r.user)) home.set(r.user, geo.lookup(r.ip)!);
    let hosting = 0;
    let stuffing = 0;
    const proxyKm: number[] = [];
    for (const r of records) {
      const v = nets.describe(r.ip);
      expect(v.asn, r.ip).not.toBeNull(); // inside a real announced range
      expect(geo.lookup(r.ip), r.ip).not.toBeNull();
      if (r.kind === 'home' || r.kind === 'office_nat' || r.kind === 'mobile_cgnat' || r.kind === 'roaming') expect(geo.lookup(r.ip)!.country).toBe(ccOf(r.user));
      if (r.kind === 'trip_abroad') expect(geo.lookup(r.ip)!.country).not.toBe(ccOf(r.user));
      if (r.kind === 'residential_proxy_city') {
        expect(geo.lookup(r.ip)!.country).toBe(ccOf(r.user));
        proxyKm.push(haversineKm(geo.lookup(r.ip)!, home.get(r.user)!));
      }
      if (r.kind?.startsWith('stuffing_hosting')) {
        stuffing++;
        if (v.type === 'hosting') hosting++;
        expect(geo.lookup(r.ip)!.country === ccOf(r.user)).toBe(r.kind === 'stuffing_hosting_domestic');
      }
    }
    // In the victim's city (GeoIP moves some home lines, so not every single one).
    proxyKm.sort((a, b) => a - b);
    expect(proxyKm.length).toBeGreaterThan(20);
    expect(proxyKm[Math.floor(proxyKm.length / 2)]).toBeLessThan(60);
    expect(proxyKm.filter((k) => k < 150).length / proxyKm.length).toBeGreaterThan(0.8);
    // Dual-stack homes and phones on IPv6, inside the same networks' IPv6 ranges.
    const v6 = records.filter((r) => r.ip.includes(':'));
    expect(v6.length / records.length).toBeGreaterThan(0.15);
    expect(v6.some((r) => r.kind === 'home')).toBe(true);
    expect(v6.some((r) => r.kind === 'mobile_cgnat')).toBe(true);
    // The engine's own classification agrees these are data-centre networks (nearly always).
    expect(hosting / stuffing).toBeGreaterThan(0.8);
  });

  it('keeps a device’s user agent until its browser updates, then bumps the version', () => {
    const byDevice = new Map<string, string[]>();
    for (const r of records) {
      if (r.label === 'attack' || !r.deviceId || !r.userAgent) continue;
      let l = byDevice.get(r.deviceId);
      if (!l) byDevice.set(r.deviceId, (l = []));
      if (l[l.length - 1] !== r.userAgent) l.push(r.userAgent);
    }
    const changes = [...byDevice.values()].map((l) => l.length - 1);
    expect(changes.filter((c) => c === 0).length).toBeGreaterThan(0);
    expect(changes.filter((c) => c >= 1).length).toBeGreaterThan(0);
    expect(Math.max(...changes)).toBeLessThanOrEqual(2); // 24 days: at most two releases
    const updates = records.filter((r) => r.kind === 'browser_update');
    expect(updates.length).toBeGreaterThan(0);
  });
});
