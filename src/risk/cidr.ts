import { isIP } from 'node:net';

/** One parsed network. `text` is the list entry it came from, so a match can be explained. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly prefix: number;
  readonly text: string;
}

export interface ParsedIp {
  family: 4 | 6;
  value: bigint;
}

const BITS = { 4: 32, 6: 128 } as const;

function parseV4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | null {
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): bigint[] | null => {
    if (h === '') return [];
    const out: bigint[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (v4 === null) return null;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-f]{1,4}$/i.test(p)) {
        out.push(BigInt(`0x${p}`));
      } else return null;
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<bigint>(halves.length === 2 ? missing : 0).fill(0n), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parse an IPv4 or IPv6 address (an IPv6 zone id is ignored) into a number. */
export function parseIp(ip: string): ParsedIp | null {
  const s = ip.trim();
  const fam = isIP(s);
  if (fam === 4) {
    const value = parseV4(s);
    return value === null ? null : { family: 4, value };
  }
  if (fam === 6) {
    const value = parseV6(s.split('%')[0]);
    return value === null ? null : { family: 6, value };
  }
  return null;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else null. */
export function unmapIPv4(p: ParsedIp): ParsedIp | null {
  return p.family === 6 && p.value >> 32n === 0xffffn ? { family: 4, value: p.value & 0xffffffffn } : null;
}

export const formatIPv4 = (v: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');

const mask = (family: 4 | 6, prefix: number): bigint => {
  const bits = BigInt(BITS[family]);
  return prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << (bits - BigInt(prefix));
};

function parseEntry(entry: string): Cidr[] {
  if (entry.toLowerCase() === 'loopback') {
    return [
      { family: 4, base: 0x7f000000n, prefix: 8, text: entry },
      { family: 6, base: 1n, prefix: 128, text: entry },
    ];
  }
  const [addr, len, extra] = entry.split('/');
  if (extra !== undefined || addr.includes('%')) throw new Error(`invalid CIDR entry "${entry}"`);
  const ip = parseIp(addr);
  if (!ip) throw new Error(`invalid CIDR entry "${entry}": not an IP address`);
  let prefix: number = BITS[ip.family];
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len) || Number(len) > BITS[ip.family]) {
      throw new Error(`invalid CIDR entry "${entry}": prefix length must be 0-${BITS[ip.family]}`);
    }
    prefix = Number(len);
  }
  // Host bits are masked off rather than rejected: "10.1.2.3/8" means 10.0.0.0/8, as in most tools.
  return [{ family: ip.family, base: ip.value & mask(ip.family, prefix), prefix, text: entry }];
}

/**
 * Parse a comma-separated list of CIDRs (bare addresses are /32 or /128; the word `loopback`
 * means 127.0.0.0/8 and ::1). Throws on the first bad entry, naming it, so a typo in a deny or
 * trusted-proxy list stops boot instead of silently matching nothing.
 */
export function parseCidrs(list: string): Cidr[] {
  return list
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .flatMap(parseEntry);
}

/**
 * The entry of `cidrs` that contains `ip`, or null (also for an unparsable ip). An IPv4-mapped
 * IPv6 address is also checked as IPv4, so "::ffff:10.0.0.1" cannot slip past "10.0.0.0/8".
 */
export function inCidrs(ip: string, cidrs: readonly Cidr[]): string | null {
  const p = parseIp(ip);
  if (!p) return null;
  const mapped = unmapIPv4(p);
  const candidates = mapped ? [p, mapped] : [p];
  for (const c of cidrs) {
    for (const a of candidates) {
      if (a.family === c.family && (a.value & mask(c.family, c.prefix)) === c.base) return c.text;
    }
  }
  return null;
}
