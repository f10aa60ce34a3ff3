import { readFileSync, statSync } from 'node:fs';
import { asnTable, type AsnTable } from './asn-table.ts';
import { formatIPv4, inCidrs, parseCidrs, parseIp, unmapIPv4, type Cidr } from './cidr.ts';
import type { Geo, GeoPoint } from './geo.ts';

/** How an address reaches the internet. `business` is reserved for allow-listed egress. */
export type ConnectionType = 'hosting' | 'vpn' | 'proxy' | 'tor' | 'mobile' | 'residential' | 'business' | 'unknown';

/**
 * Connection types whose addresses rotate inside the operator's AS: a phone's CGNAT pool, a VPN's
 * exits, a relay or cloud egress. For these the operator (AS) is the network a person "uses"; for
 * fixed lines it is the /24 or /48, so a stranger on the victim's own ISP is still a new network.
 */
const BY_ASN = new Set<ConnectionType>(['mobile', 'vpn', 'proxy', 'hosting']);

/** Everything the signals need to know about the source address of one attempt. */
export interface NetworkView {
  ip: string;
  /** The /24 (IPv4) or /48 (IPv6) holding the address, e.g. "81.2.69.0/24"; null if unparsable. */
  prefix: string | null;
  asn: number | null;
  org: string | null;
  type: ConnectionType;
  /**
   * The unit of "has this user used this network": "AS<n>" for mobile carriers, VPNs, proxies and
   * hosting (addresses rotate inside the operator), else the prefix.
   */
  key: string | null;
  /** Listed Tor exit. */
  tor: boolean;
  /** Deny-list entry containing the address. */
  deniedCidr: string | null;
  /** Allow-list entry (known corporate egress) containing the address. */
  allowedCidr: string | null;
  geo: GeoPoint | null;
}

export interface Networks {
  describe(ip: string): NetworkView;
}

let classes: Record<string, ConnectionType> | null = null;
/** AS → connection type, built by scripts/build-asn-classes.ts (provenance inside the file). */
function asnClass(asn: number): ConnectionType | undefined {
  classes ??= (JSON.parse(readFileSync(new URL('./asn-classes.json', import.meta.url), 'utf8')) as { classes: Record<string, ConnectionType> }).classes;
  return classes[String(asn)];
}

/** A parsed address normalised (IPv4-mapped IPv6 → IPv4) with its /24 or /48 prefix text. */
export function networkPrefix(ip: string): { family: 4 | 6; prefix: string; v4: number | null; top64: bigint | null } | null {
  const p0 = parseIp(ip);
  if (!p0) return null;
  const p = unmapIPv4(p0) ?? p0;
  if (p.family === 4) {
    const v = Number(p.value);
    return { family: 4, prefix: `${formatIPv4(p.value & 0xffffff00n)}/24`, v4: v, top64: null };
  }
  const top48 = p.value >> 80n;
  const groups = [(top48 >> 32n) & 0xffffn, (top48 >> 16n) & 0xffffn, top48 & 0xffffn].map((g) => g.toString(16));
  // Canonical text (RFC 5952): trailing zero groups fold into "::".
  while (groups.length > 0 && groups[groups.length - 1] === '0') groups.pop();
  return { family: 6, prefix: `${groups.join(':')}::/48`, v4: null, top64: p.value >> 64n };
}

/**
 * A list of CIDRs (or bare addresses) in a file, one per line, `#` comments allowed, re-read when
 * the file's mtime or size changes (checked at most every `checkMs`), so an operator can update
 * Tor exits or deny ranges without a restart. A file that disappears or stops parsing keeps the
 * last good list (and reports the error once per change): a typo must not silently empty a deny
 * list.
 */
export class ReloadingList {
  private exact = new Set<string>();
  private cidrs: Cidr[] = [];
  private stamp = '';
  private checkedAt = -Infinity;
  lastError: Error | null = null;

  constructor(
    readonly path: string,
    private readonly opts: { checkMs?: number; now?: () => number; onError?: (err: Error) => void } = {},
  ) {
    this.refresh(true);
  }

  private refresh(first = false): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      if (first) throw err;
      this.fail(err as Error, 'missing');
      return;
    }
    if (stamp === this.stamp) return;
    try {
      const exact = new Set<string>();
      const cidrs: Cidr[] = [];
      for (const raw of readFileSync(this.path, 'utf8').split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        if (!line) continue;
        const parsed = parseCidrs(line);
        for (const c of parsed) {
          if (c.prefix === (c.family === 4 ? 32 : 128)) exact.add(`${c.family}:${c.base}`);
          else cidrs.push({ ...c, text: line });
        }
      }
      this.exact = exact;
      this.cidrs = cidrs;
      this.stamp = stamp;
      this.lastError = null;
    } catch (err) {
      if (first) throw err;
      this.fail(err as Error, stamp);
    }
  }

  private fail(err: Error, stamp: string): void {
    if (this.stamp === `bad:${stamp}`) return;
    this.stamp = `bad:${stamp}`;
    this.lastError = err;
    this.opts.onError?.(err);
  }

  /** The entry holding `ip`, or null. */
  match(ip: string): string | null {
    const now = (this.opts.now ?? Date.now)();
    if (now - this.checkedAt >= (this.opts.checkMs ?? 1000)) {
      this.checkedAt = now;
      this.refresh();
    }
    const p0 = parseIp(ip);
    if (!p0) return null;
    const p = unmapIPv4(p0) ?? p0;
    if (this.exact.has(`${p.family}:${p.value}`)) return p.family === 4 ? formatIPv4(p.value) : ip;
    return this.cidrs.length ? inCidrs(ip, this.cidrs) : null;
  }
}

export interface NetworkSources {
  geo: Geo;
  /** Defaults to the shipped @ip-location-db/asn table, loaded on first use. */
  asn?: AsnTable | (() => AsnTable);
  /** Inline deny list (RISK_DENY_CIDRS). */
  denyCidrs?: string;
  torExitsFile?: string;
  denyCidrsFile?: string;
  allowCidrsFile?: string;
  /** How often the list files are stat()ed; default 1 s. */
  checkMs?: number;
  now?: () => number;
  onListError?: (err: Error) => void;
}

/**
 * Network identity of an address: AS and organisation, connection type, prefix, reputation
 * and location. Everything is local data; no network call at scoring time.
 */
export function createNetworks(src: NetworkSources): Networks {
  const inlineDeny = parseCidrs(src.denyCidrs ?? '');
  const list = (path?: string) =>
    path ? new ReloadingList(path, { checkMs: src.checkMs, now: src.now, onError: src.onListError }) : null;
  const tor = list(src.torExitsFile);
  const deny = list(src.denyCidrsFile);
  const allow = list(src.allowCidrsFile);
  let table: AsnTable | null = typeof src.asn === 'object' ? src.asn : null;
  const getTable = (): AsnTable => {
    if (!table) table = typeof src.asn === 'function' ? src.asn() : asnTable();
    return table;
  };

  return {
    describe(ip) {
      const pre = networkPrefix(ip);
      const t = getTable();
      const hit = pre === null ? null : pre.v4 !== null ? t.lookupV4(pre.v4) : t.lookupV6(pre.top64!);
      const isTor = tor?.match(ip) != null;
      const deniedCidr = inCidrs(ip, inlineDeny) ?? deny?.match(ip) ?? null;
      const allowedCidr = allow?.match(ip) ?? null;
      let type: ConnectionType = hit ? (asnClass(hit.asn) ?? 'residential') : 'unknown';
      if (isTor) type = 'tor';
      else if (allowedCidr) type = 'business';
      const key = pre === null ? null : hit && BY_ASN.has(type) ? `AS${hit.asn}` : pre.prefix;
      return {
        ip,
        prefix: pre?.prefix ?? null,
        asn: hit?.asn ?? null,
        org: hit?.org ?? null,
        type,
        key,
        tor: isTor,
        deniedCidr,
        allowedCidr,
        geo: src.geo.lookup(ip),
      };
    },
  };
}
