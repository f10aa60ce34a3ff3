import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.ts';
import { openGeo, type Geo } from '../../src/risk/geo.ts';
import { collectSignals, type RiskInput, type SignalDeps } from '../../src/risk/signals.ts';
import { createTestDb } from '../helpers/db.ts';

const T = Date.UTC(2026, 0, 10, 12);
const MIN = 60_000;
const HOUR = 60 * MIN;
const LONDON = { ip: '81.2.69.142', country: 'GB', lat: 51.5143, lon: -0.0912 };
const SYDNEY_IP = '1.1.1.1';
const GERMANY_IP = '5.9.0.1';

let t: Awaited<ReturnType<typeof createTestDb>>;
let db: Db;
let geo: Geo;
let deps: SignalDeps;

async function identity(): Promise<string> {
  const id = randomUUID();
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [id, `${id}@example.test`, new Date(T - 30 * 24 * HOUR)]);
  return id;
}

type Ev = { identityId?: string | null; deviceId?: string | null; ip?: string; country?: string | null; lat?: number | null; lon?: number | null; outcome: string; at: number };
async function event(e: Ev): Promise<void> {
  await db.query(
    `INSERT INTO login_events (id, identity_id, device_id, ip, country, latitude, longitude, outcome, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [randomUUID(), e.identityId ?? null, e.deviceId ?? null, e.ip ?? null, e.country ?? null, e.lat ?? null, e.lon ?? null, e.outcome, new Date(e.at)],
  );
}
/** A successful login from London on device `dev`. */
const londonLogin = (identityId: string, at: number, deviceId = 'dev-1') =>
  event({ identityId, deviceId, ip: LONDON.ip, country: 'GB', lat: LONDON.lat, lon: LONDON.lon, outcome: 'succeeded', at });

const collect = (input: Partial<RiskInput> & { at: number }, d: Partial<SignalDeps> = {}) =>
  collectSignals({ ...deps, ...d }, { identityId: null, deviceId: null, ip: LONDON.ip, ...input });

beforeAll(async () => {
  t = await createTestDb();
  db = t.db;
  geo = await openGeo();
  deps = { db, geo, denyCidrs: ['203.0.113.0/24', '5.9.0.0/16', '2a00:1450::/32'], maxTravelKmh: 900, failureWindowSeconds: 3600, failureThreshold: 3 };
});
afterAll(async () => {
  await t?.drop();
});

describe('collectSignals', () => {
  it('returns the located point and a JSON-only snapshot', async () => {
    const { signals, point } = await collect({ at: T });
    expect(point).toMatchObject({ country: 'GB' });
    expect(JSON.parse(JSON.stringify(signals))).toEqual(signals);
  });

  describe('NEW_DEVICE', () => {
    it('does not fire for a device with an earlier successful login', async () => {
      const id = await identity();
      await londonLogin(id, T - HOUR, 'laptop');
      expect((await collect({ identityId: id, deviceId: 'laptop', at: T })).signals.NEW_DEVICE).toBe(false);
    });

    it('fires for an unseen device, a null device, and a device only seen failing or on another account', async () => {
      const id = await identity();
      const other = await identity();
      await londonLogin(id, T - HOUR, 'laptop');
      await event({ identityId: id, deviceId: 'phone', ip: LONDON.ip, outcome: 'failed', at: T - MIN });
      await londonLogin(other, T - HOUR, 'tablet');
      for (const deviceId of ['desktop', null, 'phone', 'tablet']) {
        expect((await collect({ identityId: id, deviceId, at: T })).signals.NEW_DEVICE, String(deviceId)).toBe(true);
      }
    });

    it('ignores logins recorded after `at` (replay sees what the live decision saw)', async () => {
      const id = await identity();
      await londonLogin(id, T + MIN, 'laptop');
      expect((await collect({ identityId: id, deviceId: 'laptop', at: T })).signals.NEW_DEVICE).toBe(true);
      expect((await collect({ identityId: id, deviceId: 'laptop', at: T + 2 * MIN })).signals.NEW_DEVICE).toBe(false);
    });
  });

  describe('no history', () => {
    it('gives a user with no successful login no location signals', async () => {
      const id = await identity();
      await event({ identityId: id, deviceId: 'x', ip: LONDON.ip, country: 'GB', lat: LONDON.lat, lon: LONDON.lon, outcome: 'failed', at: T - MIN });
      await event({ identityId: id, deviceId: 'x', ip: LONDON.ip, country: 'GB', lat: LONDON.lat, lon: LONDON.lon, outcome: 'denied', at: T - MIN });
      const { signals, point } = await collect({ identityId: id, deviceId: 'x', ip: SYDNEY_IP, at: T });
      expect(point?.country).toBe('AU');
      expect(signals).toMatchObject({ NEW_DEVICE: true, NEW_COUNTRY: false, IMPOSSIBLE_TRAVEL: false });
      expect(signals.details).toMatchObject({ hasHistory: false, speedKmh: null });
    });

    it('treats an unknown identity as a new device with no location signals, counting IP failures', async () => {
      const ip = '8.8.4.4';
      for (let i = 0; i < 3; i++) await event({ identityId: null, ip, outcome: 'failed', at: T - i * MIN - 1 });
      const { signals } = await collect({ identityId: null, deviceId: 'laptop', ip, at: T });
      expect(signals).toMatchObject({ NEW_DEVICE: true, NEW_COUNTRY: false, IMPOSSIBLE_TRAVEL: false, FAILED_ATTEMPTS: true });
      expect(signals.details).toMatchObject({ hasHistory: false, accountFailures: 0, ipFailures: 3 });
    });
  });

  describe('NEW_COUNTRY', () => {
    it('fires for a country the user never logged in from, and not for a known one', async () => {
      const id = await identity();
      await londonLogin(id, T - 48 * HOUR);
      const de = await collect({ identityId: id, deviceId: 'dev-1', ip: GERMANY_IP, at: T });
      expect(de.signals.NEW_COUNTRY).toBe(true);
      expect(de.signals.details.hasHistory).toBe(true);
      expect((await collect({ identityId: id, deviceId: 'dev-1', ip: LONDON.ip, at: T })).signals.NEW_COUNTRY).toBe(false);
    });

    it('does not fire when the IP does not resolve', async () => {
      const id = await identity();
      await londonLogin(id, T - 48 * HOUR);
      const { signals, point } = await collect({ identityId: id, ip: '10.0.0.1', at: T });
      expect(point).toBeNull();
      expect(signals.NEW_COUNTRY).toBe(false);
      expect(signals.IMPOSSIBLE_TRAVEL).toBe(false);
    });
  });

  describe('IMPOSSIBLE_TRAVEL', () => {
    it('fires for London → Sydney one hour apart', async () => {
      const id = await identity();
      await londonLogin(id, T - HOUR);
      const { signals } = await collect({ identityId: id, deviceId: 'dev-1', ip: SYDNEY_IP, at: T });
      expect(signals.IMPOSSIBLE_TRAVEL).toBe(true);
      expect(signals.details.speedKmh).toBeGreaterThan(16_000);
    });

    it('does not fire for the same trip 30 hours apart', async () => {
      const id = await identity();
      await londonLogin(id, T - 30 * HOUR);
      const { signals } = await collect({ identityId: id, deviceId: 'dev-1', ip: SYDNEY_IP, at: T });
      expect(signals.IMPOSSIBLE_TRAVEL).toBe(false);
      expect(signals.details.speedKmh).toBeGreaterThan(500);
      expect(signals.details.speedKmh).toBeLessThan(900);
    });

    it('respects maxTravelKmh', async () => {
      const id = await identity();
      await londonLogin(id, T - 30 * HOUR);
      const { signals } = await collect({ identityId: id, ip: SYDNEY_IP, at: T }, { maxTravelKmh: 500 });
      expect(signals.IMPOSSIBLE_TRAVEL).toBe(true);
    });

    it('ignores jumps under ~100 km however fast (GeoIP noise)', async () => {
      const id = await identity();
      // ~57 km from the London fix, one second earlier.
      await event({ identityId: id, deviceId: 'dev-1', ip: '81.2.69.1', country: 'GB', lat: 51.0, lon: -0.09, outcome: 'succeeded', at: T - 1000 });
      const { signals } = await collect({ identityId: id, deviceId: 'dev-1', ip: LONDON.ip, at: T });
      expect(signals.IMPOSSIBLE_TRAVEL).toBe(false);
      // Speed counts only distance beyond both fixes' accuracy (50 km each without a radius in
      // the database): 57 km is within it, so no movement is measured at all.
      expect(signals.details.distanceKm).toBe(57);
      expect(signals.details.speedKmh).toBe(0);
    });

    it('measures from the last successful located login, not failures or unlocated ones', async () => {
      const id = await identity();
      await londonLogin(id, T - 2 * HOUR);
      await event({ identityId: id, ip: SYDNEY_IP, country: 'AU', lat: -33.87, lon: 151.21, outcome: 'failed', at: T - 10 * MIN });
      await event({ identityId: id, ip: '10.0.0.1', outcome: 'succeeded', at: T - 5 * MIN });
      const { signals } = await collect({ identityId: id, deviceId: 'dev-1', ip: LONDON.ip, at: T });
      expect(signals.IMPOSSIBLE_TRAVEL).toBe(false);
      expect(signals.details.speedKmh).toBe(0);
    });
  });

  describe('SUSPICIOUS_IP', () => {
    it('fires inside a deny CIDR (v4 and v6) and names it', async () => {
      const v4 = await collect({ ip: GERMANY_IP, at: T });
      expect(v4.signals.SUSPICIOUS_IP).toBe(true);
      expect(v4.signals.details.deniedCidr).toBe('5.9.0.0/16');
      const v6 = await collect({ ip: '2a00:1450:4001::1', at: T });
      expect(v6.signals.SUSPICIOUS_IP).toBe(true);
      expect(v6.signals.details.deniedCidr).toBe('2a00:1450::/32');
    });

    it('does not fire outside them, or with an empty list', async () => {
      const { signals } = await collect({ ip: LONDON.ip, at: T });
      expect(signals.SUSPICIOUS_IP).toBe(false);
      expect(signals.details.deniedCidr).toBeNull();
      expect((await collect({ ip: GERMANY_IP, at: T }, { denyCidrs: [] })).signals.SUSPICIOUS_IP).toBe(false);
    });
  });

  describe('FAILED_ATTEMPTS', () => {
    it('fires when the account reaches the threshold within the window, from any IP', async () => {
      const id = await identity();
      const QUIET_IP = '81.2.69.160'; // no failures recorded from it
      await londonLogin(id, T - 48 * HOUR);
      await event({ identityId: id, ip: '9.9.9.9', outcome: 'failed', at: T - 2 * HOUR }); // outside the window
      await event({ identityId: id, ip: '9.9.9.9', outcome: 'failed', at: T - 30 * MIN });
      await event({ identityId: id, ip: '8.8.8.8', outcome: 'failed', at: T - 10 * MIN });
      await event({ identityId: id, ip: '8.8.8.8', outcome: 'denied', at: T - 5 * MIN });
      const two = await collect({ identityId: id, deviceId: 'dev-1', ip: QUIET_IP, at: T });
      expect(two.signals.FAILED_ATTEMPTS).toBe(false);
      expect(two.signals.details.accountFailures).toBe(2);
      await event({ identityId: id, ip: '1.0.0.1', outcome: 'failed', at: T - MIN });
      const three = await collect({ identityId: id, deviceId: 'dev-1', ip: QUIET_IP, at: T });
      expect(three.signals.FAILED_ATTEMPTS).toBe(true);
      expect(three.signals.details).toMatchObject({ accountFailures: 3, ipFailures: 0 });
      expect((await collect({ identityId: id, ip: QUIET_IP, at: T }, { failureThreshold: 4 })).signals.FAILED_ATTEMPTS).toBe(false);
      expect((await collect({ identityId: id, ip: QUIET_IP, at: T }, { failureWindowSeconds: 3 * 3600 })).signals.details.accountFailures).toBe(4);
    });

    it('fires when the IP reaches the threshold across accounts', async () => {
      const ip = '9.9.9.10';
      const victim = await identity();
      for (let i = 0; i < 2; i++) await event({ identityId: await identity(), ip, outcome: 'failed', at: T - (i + 1) * MIN });
      const two = await collect({ identityId: victim, deviceId: 'd', ip, at: T });
      expect(two.signals.FAILED_ATTEMPTS).toBe(false);
      expect(two.signals.details).toMatchObject({ ipFailures: 2, accountFailures: 0 });
      await event({ identityId: null, ip, outcome: 'failed', at: T - 3 * MIN });
      const three = await collect({ identityId: victim, deviceId: 'd', ip, at: T });
      expect(three.signals.FAILED_ATTEMPTS).toBe(true);
      expect(three.signals.details.ipFailures).toBe(3);
    });
  });
});
