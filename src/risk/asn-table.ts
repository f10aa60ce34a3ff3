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

interface Rows {
  n: number;
  start: Float64Array; // v4: the address; v6: unused
  end: Float64Array;
  start64: BigUint64Array; // v6: top 64 bits
  end64: BigUint64Array;
  asn: Uint32Array;
}

/**
 * Walk "start,end,asn,org" lines in a Buffer. Numbers are read from the bytes and each AS's
 * organisation is decoded once into its own string: slicing one big decoded file instead would
 * keep the whole file alive through every slice (V8 sliced strings), tens of MB for nothing.
 */
function parseRows(buf: Buffer, v6: boolean, orgs: Map<number, string>): Rows {
  let lines = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10) lines++;
  lines++;
  const rows: Rows = {
    n: 0,
    start: new Float64Array(v6 ? 0 : lines),
    end: new Float64Array(v6 ? 0 : lines),
    start64: new BigUint64Array(v6 ? lines : 0),
    end64: new BigUint64Array(v6 ? lines : 0),
    asn: new Uint32Array(lines),
  };
  let pos = 0;
  while (pos < buf.length) {
    let eol = buf.indexOf(10, pos);
    if (eol < 0) eol = buf.length;
    const c1 = buf.indexOf(44, pos);
    const c2 = c1 < 0 ? -1 : buf.indexOf(44, c1 + 1);
    const c3 = c2 < 0 ? -1 : buf.indexOf(44, c2 + 1);
    if (c1 > 0 && c3 > 0 && c3 < eol) {
      let asn = 0;
      for (let i = c2 + 1; i < c3; i++) asn = asn * 10 + (buf[i] - 48);
      const k = rows.n++;
      rows.asn[k] = asn;
      if (v6) {
        rows.start64[k] = BigInt(buf.toString('latin1', pos, c1)) >> 64n;
        rows.end64[k] = BigInt(buf.toString('latin1', c1 + 1, c2)) >> 64n;
      } else {
        let a = 0;
        for (let i = pos; i < c1; i++) a = a * 10 + (buf[i] - 48);
        let b = 0;
        for (let i = c1 + 1; i < c2; i++) b = b * 10 + (buf[i] - 48);
        rows.start[k] = a;
        rows.end[k] = b;
      }
      if (!orgs.has(asn)) {
        let o = buf.toString('utf8', c3 + 1, buf[eol - 1] === 13 ? eol - 1 : eol);
        if (o.startsWith('"') && o.endsWith('"')) o = o.slice(1, -1).replace(/""/g, '"');
        orgs.set(asn, o);
      }
    }
    pos = eol + 1;
  }
  return rows;
}

/**
 * Parse the two "-num" CSVs into typed arrays searched by bisection; the organisation name is
 * kept once per AS. ~412k IPv4 and ~103k IPv6 ranges (see README "Risk signals" for the measured
 * memory). The files are sorted by range start.
 */
export function parseAsnCsv(v4Text: string | Buffer, v6Text: string | Buffer): AsnTable {
  const orgs = new Map<number, string>();
  const v4 = parseRows(typeof v4Text === 'string' ? Buffer.from(v4Text) : v4Text, false, orgs);
  const v6 = parseRows(typeof v6Text === 'string' ? Buffer.from(v6Text) : v6Text, true, orgs);
  // Shrink to the rows read (the line count over-allocates by blank lines).
  const s4 = new Uint32Array(v4.start.subarray(0, v4.n));
  const e4 = new Uint32Array(v4.end.subarray(0, v4.n));
  const a4 = v4.asn.slice(0, v4.n);
  const s6 = v6.start64.slice(0, v6.n);
  const e6 = v6.end64.slice(0, v6.n);
  const a6 = v6.asn.slice(0, v6.n);
  const n4 = v4.n;
  const n6 = v6.n;
  const hit = (asn: number): AsnHit => ({ asn, org: orgs.get(asn) ?? '' });
  return {
    ranges: n4 + n6,
    lookupV4(addr) {
      const i = upperBound(n4, (k) => s4[k] <= addr);
      return i >= 0 && addr <= e4[i] ? hit(a4[i]) : null;
    },
    lookupV6(top) {
      const i = upperBound(n6, (k) => s6[k] <= top);
      return i >= 0 && top <= e6[i] ? hit(a6[i]) : null;
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
  const table = parseAsnCsv(readFileSync(join(d, 'asn-ipv4-num.csv')), readFileSync(join(d, 'asn-ipv6-num.csv')));
  if (dir === undefined) loaded = table;
  return table;
}
