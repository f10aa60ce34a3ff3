import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { haversineKm, type Geo } from '../risk/geo.ts';
import type { Rng } from './prng.ts';

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

export function ipv4ToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

export function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function asnCsvPath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json')), 'asn-ipv4.csv');
}

/** The announced IPv4 ranges of the given ASNs, from the shipped RouteViews/DB-IP ASN table. */
export async function loadAsnRanges(asns: Iterable<number>, path = asnCsvPath()): Promise<Map<number, Range[]>> {
  const wanted = new Set(asns);
  const out = new Map<number, Range[]>();
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) {
    const c1 = line.indexOf(',');
    const c2 = line.indexOf(',', c1 + 1);
    const c3 = line.indexOf(',', c2 + 1);
    if (c1 < 0 || c2 < 0 || c3 < 0) continue;
    const asn = Number(line.slice(c2 + 1, c3));
    if (!wanted.has(asn)) continue;
    const start = ipv4ToInt(line.slice(0, c1));
    const end = ipv4ToInt(line.slice(c1 + 1, c2));
    let list = out.get(asn);
    if (!list) out.set(asn, (list = []));
    list.push({ start, end });
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

function parseV6(ip: string): bigint {
  const [head, tail] = ip.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

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
  const wanted = new Set(asns);
  const ranges = new Map<number, Array<{ lo: bigint; hi: bigint }>>();
  const path = join(dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json')), 'asn-ipv6.csv');
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) {
    const c1 = line.indexOf(',');
    const c2 = line.indexOf(',', c1 + 1);
    const c3 = line.indexOf(',', c2 + 1);
    if (c1 < 0 || c2 < 0 || c3 < 0) continue;
    const asn = Number(line.slice(c2 + 1, c3));
    if (!wanted.has(asn)) continue;
    const lo = parseV6(line.slice(0, c1)) >> 64n;
    const hi = parseV6(line.slice(c1 + 1, c2)) >> 64n;
    let l = ranges.get(asn);
    if (!l) ranges.set(asn, (l = []));
    l.push({ lo, hi });
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
