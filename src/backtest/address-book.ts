import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { haversineKm, type Geo } from '../risk/geo.ts';
import type { Rng } from './prng.ts';
import { parseIp } from '../risk/cidr.ts';

/** One real, routable IPv4 address with where the shipped GeoIP data places it. */
export interface Addr {
  ip: string;
  asn: number;
  cc: string;
  lat: number;
  lon: number;
}

interface Range {
  start: number;
  end: number;
}

export function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * The announced ranges of the wanted ASNs in the shipped RouteViews/DB-IP table (`asn-ipv4.csv`
 * or `asn-ipv6.csv`: start,end,asn,org), as numbers: one reader for both families.
 */
async function* asnCsvRanges(file: 'asn-ipv4.csv' | 'asn-ipv6.csv', wanted: ReadonlySet<number>, path?: string): AsyncGenerator<{ asn: number; lo: bigint; hi: bigint }> {
  const csv = path ?? join(dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json')), file);
  const rl = createInterface({ input: createReadStream(csv, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) {
    const c1 = line.indexOf(',');
    const c2 = line.indexOf(',', c1 + 1);
    const c3 = line.indexOf(',', c2 + 1);
    if (c1 < 0 || c2 < 0 || c3 < 0) continue;
    const asn = Number(line.slice(c2 + 1, c3));
    if (!wanted.has(asn)) continue;
    const lo = parseIp(line.slice(0, c1));
    const hi = parseIp(line.slice(c1 + 1, c2));
    if (lo && hi) yield { asn, lo: lo.value, hi: hi.value };
  }
}

/** The announced IPv4 ranges of the given ASNs, from the shipped RouteViews/DB-IP ASN table. */
export async function loadAsnRanges(asns: Iterable<number>, path?: string): Promise<Map<number, Range[]>> {
  const out = new Map<number, Range[]>();
  for await (const r of asnCsvRanges('asn-ipv4.csv', new Set(asns), path)) {
    let list = out.get(r.asn);
    if (!list) out.set(r.asn, (list = []));
    list.push({ start: Number(r.lo), end: Number(r.hi) });
  }
  return out;
}

/**
 * Real addresses sampled inside the real announced ranges of chosen networks, each placed by
 * the same GeoIP database the risk engine uses, so a generated "home in Munich" is where the
 * engine will see it. Sampling is weighted by range size, as real users are spread.
 */
export class AddressBook {
  private readonly byAsn = new Map<number, Addr[]>();

  static async build(rng: Rng, geo: Geo, asns: number[], perAsn: number): Promise<AddressBook> {
    const ranges = await loadAsnRanges(asns);
    const book = new AddressBook();
    for (const asn of asns) {
      const list = ranges.get(asn) ?? [];
      const found: Addr[] = [];
      const seen = new Set<number>();
      if (list.length > 0) {
        const cum: number[] = [];
        let total = 0;
        for (const r of list) {
          total += r.end - r.start + 1;
          cum.push(total);
        }
        for (let tries = 0; tries < perAsn * 4 && found.length < perAsn; tries++) {
          const x = Math.floor(rng.next() * total);
          let lo = 0;
          let hi = cum.length - 1;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (cum[mid] > x) hi = mid;
            else lo = mid + 1;
          }
          const r = list[lo];
          const n = r.start + Math.floor(rng.next() * (r.end - r.start + 1));
          const last = n & 255;
          if (last === 0 || last === 255 || seen.has(n)) continue;
          seen.add(n);
          const ip = intToIpv4(n);
          const p = geo.lookup(ip);
          if (!p) continue;
          found.push({ ip, asn, cc: p.country, lat: p.lat, lon: p.lon });
        }
      }
      book.byAsn.set(asn, found);
    }
    return book;
  }

  of(asn: number, cc?: string): Addr[] {
    const all = this.byAsn.get(asn) ?? [];
    return cc ? all.filter((a) => a.cc === cc) : all;
  }

  /** Addresses of these networks in a country (all countries when cc is undefined). */
  pool(asns: readonly number[], cc?: string): Addr[] {
    return asns.flatMap((a) => this.of(a, cc));
  }
}

/** Addresses of `pool` within `km` of `point`, nearest first; the nearest one when none is. */
export function near(pool: readonly Addr[], point: { lat: number; lon: number }, km: number): Addr[] {
  const scored = pool.map((a) => ({ a, d: haversineKm(a, point) }));
  const inside = scored.filter((s) => s.d <= km).sort((x, y) => x.d - y.d);
  if (inside.length > 0) return inside.map((s) => s.a);
  scored.sort((x, y) => x.d - y.d);
  return scored.slice(0, 1).map((s) => s.a);
}

// ---- IPv6 -------------------------------------------------------------------------------------

/** Canonical (RFC 5952) text of a 128-bit value, by the URL parser's own IPv6 serializer. */
export function formatV6(v: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** A network's /64 (what an ISP hands a household or a phone), as the top 64 bits. */
export interface V6Net {
  top: bigint;
  asn: number;
  cc: string;
  lat: number;
  lon: number;
}

/** An address in a /64 with an interface id from `rng` (privacy addresses rotate it). */
export function v6In(net: V6Net, rng: Rng): string {
  const iid = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
  return formatV6((net.top << 64n) | iid);
}

/** Real /64s inside the given networks' announced IPv6 ranges, placed by GeoIP. */
export async function sampleV6(rng: Rng, geo: Geo, asns: number[], perAsn: number): Promise<Map<number, V6Net[]>> {
  const ranges = new Map<number, Array<{ lo: bigint; hi: bigint }>>();
  for await (const r of asnCsvRanges('asn-ipv6.csv', new Set(asns))) {
    let l = ranges.get(r.asn);
    if (!l) ranges.set(r.asn, (l = []));
    l.push({ lo: r.lo >> 64n, hi: r.hi >> 64n });
  }
  const out = new Map<number, V6Net[]>();
  for (const asn of asns) {
    const list = ranges.get(asn) ?? [];
    const found: V6Net[] = [];
    // Weighted by the log of the size: one /19 of a carrier should not drown its other blocks.
    const weights = list.map((r) => Math.log2(Number(r.hi - r.lo) + 2));
    for (let tries = 0; list.length > 0 && tries < perAsn * 4 && found.length < perAsn; tries++) {
      const r = rng.weighted(list, weights);
      const span = r.hi - r.lo + 1n;
      const off = ((BigInt(rng.u32()) << 32n) | BigInt(rng.u32())) % span;
      const top = r.lo + off;
      const p = geo.lookup(formatV6((top << 64n) | 1n));
      if (!p) continue;
      found.push({ top, asn, cc: p.country, lat: p.lat, lon: p.lon });
    }
    out.set(asn, found);
  }
  return out;
}
