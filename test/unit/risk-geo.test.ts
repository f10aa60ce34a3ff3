import { beforeAll, describe, expect, it } from 'vitest';
import { haversineKm, openGeo, type Geo } from '../../src/risk/geo.ts';

describe('haversineKm', () => {
  it('is 0 for the same point and symmetric', () => {
    const p = { lat: 51.5, lon: -0.1 };
    expect(haversineKm(p, p)).toBe(0);
    const q = { lat: -33.87, lon: 151.21 };
    expect(haversineKm(p, q)).toBeCloseTo(haversineKm(q, p), 9);
  });

  it('knows London–Sydney (~17,000 km) and London–Paris (~344 km)', () => {
    const london = { lat: 51.5074, lon: -0.1278 };
    expect(haversineKm(london, { lat: -33.8688, lon: 151.2093 })).toBeGreaterThan(16_900);
    expect(haversineKm(london, { lat: -33.8688, lon: 151.2093 })).toBeLessThan(17_100);
    expect(haversineKm(london, { lat: 48.8566, lon: 2.3522 })).toBeCloseTo(344, -1);
  });

  it('handles antipodes and the date line', () => {
    expect(haversineKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 })).toBeCloseTo(Math.PI * 6371.0088, 3);
    expect(haversineKm({ lat: 0, lon: 179.5 }, { lat: 0, lon: -179.5 })).toBeCloseTo(111.2, 0);
  });
});

describe('openGeo (DB-IP Lite)', () => {
  let geo: Geo;
  beforeAll(async () => {
    geo = await openGeo();
  });

  it.each([
    ['81.2.69.142', 'GB', 51.5, -0.1],
    ['8.8.8.8', 'US', null, null],
    ['1.1.1.1', 'AU', -33.9, 151.2],
    ['5.9.0.1', 'DE', null, null],
  ])('locates %s in %s', (ip, country, lat, lon) => {
    const p = geo.lookup(ip);
    expect(p?.country).toBe(country);
    expect(typeof p?.lat).toBe('number');
    expect(typeof p?.lon).toBe('number');
    if (lat !== null && lon !== null) {
      expect(Math.abs(p!.lat - lat)).toBeLessThan(1);
      expect(Math.abs(p!.lon - lon)).toBeLessThan(1);
    }
  });

  it('looks up IPv6 and strips an IPv4-mapped prefix', () => {
    expect(geo.lookup('2a00:1450:4001::1')?.country).toBe('DE');
    expect(geo.lookup('::ffff:81.2.69.142')).toEqual(geo.lookup('81.2.69.142'));
    expect(geo.lookup('::FFFF:1.1.1.1')?.country).toBe('AU');
  });

  it.each(['10.0.0.1', '127.0.0.1', '192.168.1.1', '172.16.0.5', '100.64.0.1', '169.254.1.1', '::1', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1', '0.0.0.0', 'nonsense', ''])(
    'returns null for %j',
    (ip) => {
      expect(geo.lookup(ip)).toBeNull();
    },
  );

  it('opens the databases once per process', async () => {
    expect(await openGeo()).toBe(geo);
  });

  it('rejects a missing path override', async () => {
    await expect(openGeo('/nonexistent/geo.mmdb')).rejects.toThrow();
  });
});
