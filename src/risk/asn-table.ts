// IP → autonomous system, from @ip-location-db/asn (RouteViews + DB-IP + NRO, CC BY 4.0).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface AsnHit {
  asn: number;
  org: string;
}

export interface AsnTable {
  /** The AS announcing an address (v4 as a 32-bit number, v6 by its top 64 bits). */
  lookupV4(addr: number): AsnHit | null;
  lookupV6(top64: bigint): AsnHit | null;
  readonly ranges: number;
}

/** First three comma-separated fields; the fourth (the organisation) may be quoted and hold commas. */
function splitRow(line: string): [string, string, string, string] | null {
  const a = line.indexOf(',');
  const b = line.indexOf(',', a + 1);
  const c = line.indexOf(',', b + 1);
  if (a < 0 || b < 0 || c < 0) return null;
  let org = line.slice(c + 1);
  if (org.startsWith('"') && org.endsWith('"')) org = org.slice(1, -1).replace(/""/g, '"');
  return [line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1, c), org];
}

function upperBound(n: number, lessOrEqual: (i: number) => boolean): number {
  // Index of the last range whose start is <= the address, or -1.
  let lo = 0;
  let hi = n - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (lessOrEqual(mid)) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

/**
 * Parse the two "-num" CSVs into typed arrays (start, end, asn) searched by bisection; the
 * organisation name is kept once per AS. ~412k IPv4 and ~103k IPv6 ranges take about 10 MB
 * (see README "Risk signals" for the measured figure). The files are sorted by start.
 */
export function parseAsnCsv(v4Text: string, v6Text: string): AsnTable {
  const orgs = new Map<number, string>();
  const v4Lines = v4Text.split('\n');
  const v4Start = new Uint32Array(v4Lines.length);
  const v4End = new Uint32Array(v4Lines.length);
  const v4Asn = new Uint32Array(v4Lines.length);
  let n4 = 0;
  for (const line of v4Lines) {
    const row = splitRow(line);
    if (!row) continue;
    const asn = Number(row[2]);
    v4Start[n4] = Number(row[0]);
    v4End[n4] = Number(row[1]);
    v4Asn[n4] = asn;
    if (!orgs.has(asn)) orgs.set(asn, row[3]);
    n4++;
  }
  const v6Lines = v6Text.split('\n');
  const v6Start = new BigUint64Array(v6Lines.length);
  const v6End = new BigUint64Array(v6Lines.length);
  const v6Asn = new Uint32Array(v6Lines.length);
  let n6 = 0;
  for (const line of v6Lines) {
    const row = splitRow(line);
    if (!row) continue;
    const asn = Number(row[2]);
    // Announcements are /64 or shorter in practice, so the top 64 bits decide.
    v6Start[n6] = BigInt(row[0]) >> 64n;
    v6End[n6] = BigInt(row[1]) >> 64n;
    v6Asn[n6] = asn;
    if (!orgs.has(asn)) orgs.set(asn, row[3]);
    n6++;
  }
  const hit = (asn: number): AsnHit => ({ asn, org: orgs.get(asn) ?? '' });
  return {
    ranges: n4 + n6,
    lookupV4(addr) {
      const i = upperBound(n4, (k) => v4Start[k] <= addr);
      return i >= 0 && addr <= v4End[i] ? hit(v4Asn[i]) : null;
    },
    lookupV6(top) {
      const i = upperBound(n6, (k) => v6Start[k] <= top);
      return i >= 0 && top <= v6End[i] ? hit(v6Asn[i]) : null;
    },
  };
}

function defaultDir(): string {
  return dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json'));
}

let loaded: AsnTable | null = null;

/**
 * The table, read once per process on first use (a few hundred ms), so processes that never
 * score (the HTTP API in queue mode) do not pay for it. `dir` overrides the package folder.
 */
export function asnTable(dir?: string): AsnTable {
  if (loaded && dir === undefined) return loaded;
  const d = dir ?? defaultDir();
  const table = parseAsnCsv(readFileSync(join(d, 'asn-ipv4-num.csv'), 'utf8'), readFileSync(join(d, 'asn-ipv6-num.csv'), 'utf8'));
  if (dir === undefined) loaded = table;
  return table;
}
