import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAsnCsv } from '../../src/risk/asn-table.ts';
import { createNetworks, networkPrefix, ReloadingList } from '../../src/risk/network.ts';
import { userAgentFamily } from '../../src/risk/user-agent.ts';

const dir = mkdtempSync(join(tmpdir(), 'risk-net-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('networkPrefix', () => {
  it('gives the /24 of IPv4, the /48 of IPv6, and unmaps IPv4-mapped addresses', () => {
    expect(networkPrefix('81.2.69.142')?.prefix).toBe('81.2.69.0/24');
    expect(networkPrefix('::ffff:81.2.69.142')?.prefix).toBe('81.2.69.0/24');
    expect(networkPrefix('2001:db8:abcd:12::1')?.prefix).toBe('2001:db8:abcd::/48');
    expect(networkPrefix('2a00:1450:0:1::1')?.prefix).toBe('2a00:1450::/48');
    expect(networkPrefix('::1')?.prefix).toBe('::/48');
    expect(networkPrefix('not an ip')).toBeNull();
  });
});

describe('ASN table', () => {
  const v4 = '16777216,16777471,13335,"Cloudflare, Inc."\n16778240,16779263,38803,Gtelecom Pty Ltd\n';
  const v6 = '42540488161975842760550356425300246528,42540488241204005274814694018844196863,6939,Hurricane Electric LLC\n';
  const table = parseAsnCsv(v4, v6);

  it('finds the range by bisection, keeps quoted organisations whole, and misses gaps', () => {
    expect(table.lookupV4(16777216 + 5)).toEqual({ asn: 13335, org: 'Cloudflare, Inc.' });
    expect(table.lookupV4(16779263)).toEqual({ asn: 38803, org: 'Gtelecom Pty Ltd' });
    expect(table.lookupV4(16777471 + 10)).toBeNull();
    expect(table.lookupV4(1)).toBeNull();
    expect(table.lookupV6(42540488161975842760550356425300246528n >> 64n)).toEqual({ asn: 6939, org: 'Hurricane Electric LLC' });
    expect(table.ranges).toBe(3);
  });

  it('classifies through the shipped table: hosting, mobile (keyed by AS), residential, unknown', () => {
    const nets = createNetworks({ geo: { lookup: () => null } });
    expect(nets.describe('3.2.64.10')).toMatchObject({ asn: 14618, type: 'hosting', key: 'AS14618' });
    expect(nets.describe('23.18.1.1')).toMatchObject({ asn: 21928, type: 'mobile', key: 'AS21928', prefix: '23.18.1.0/24' });
    expect(nets.describe('81.2.69.142')).toMatchObject({ asn: 20712, type: 'residential', key: '81.2.69.0/24' });
    expect(nets.describe('10.1.2.3')).toMatchObject({ asn: null, type: 'unknown', key: '10.1.2.0/24' });
  });
});

describe('ReloadingList', () => {
  it('re-reads a changed file, keeps the last good list on a bad edit or a deleted file, and reports once', () => {
    const path = join(dir, 'deny.txt');
    writeFileSync(path, '# comment\n203.0.113.0/24\n198.51.100.7\n');
    let now = 0;
    const errors: Error[] = [];
    const list = new ReloadingList(path, { checkMs: 1000, now: () => now, onError: (e) => errors.push(e) });
    expect(list.match('203.0.113.9')).toBe('203.0.113.0/24');
    expect(list.match('198.51.100.7')).toBe('198.51.100.7');
    expect(list.match('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(list.match('198.51.100.8')).toBeNull();

    writeFileSync(path, '192.0.2.0/24\n');
    expect(list.match('192.0.2.1')).toBeNull(); // not re-checked yet (checkMs)
    now += 1000;
    expect(list.match('192.0.2.1')).toBe('192.0.2.0/24');
    expect(list.match('203.0.113.9')).toBeNull();

    writeFileSync(path, '192.0.2.0/24\nbogus-entry\n');
    now += 1000;
    expect(list.match('192.0.2.1')).toBe('192.0.2.0/24'); // last good list kept
    now += 1000;
    list.match('192.0.2.1');
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toContain('bogus-entry');

    unlinkSync(path);
    now += 1000;
    expect(list.match('192.0.2.1')).toBe('192.0.2.0/24');
    expect(errors).toHaveLength(2);
  });

  it('refuses to start on a missing or malformed file (boot fails, not the first login)', () => {
    expect(() => new ReloadingList(join(dir, 'nope.txt'))).toThrow();
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, '10.0.0.0/33\n');
    expect(() => new ReloadingList(bad)).toThrow(/10\.0\.0\.0\/33/);
  });
});

describe('userAgentFamily', () => {
  it.each([
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36', 'Chrome/Windows'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0', 'Edge/Windows'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1', 'Safari/iOS'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox/Linux'],
    ['Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36', 'Chrome/Android'],
    ['python-requests/2.32', 'Script/Other'],
  ])('%s → %s', (ua, fam) => expect(userAgentFamily(ua)).toBe(fam));

  it('is null without a header', () => expect(userAgentFamily(null)).toBeNull());
});
