import { describe, expect, it } from 'vitest';
import { inCidrs, parseCidrs, parseIp } from '../../src/risk/cidr.ts';

describe('parseCidrs / inCidrs', () => {
  it('matches IPv4 networks at their edges', () => {
    const c = parseCidrs('10.0.0.0/8, 192.168.1.0/24');
    expect(inCidrs('10.255.255.255', c)).toBe('10.0.0.0/8');
    expect(inCidrs('11.0.0.0', c)).toBeNull();
    expect(inCidrs('192.168.1.7', c)).toBe('192.168.1.0/24');
    expect(inCidrs('192.168.2.7', c)).toBeNull();
  });

  it('treats a bare address as a single host and /0 as everything', () => {
    expect(inCidrs('203.0.113.9', parseCidrs('203.0.113.9'))).toBe('203.0.113.9');
    expect(inCidrs('203.0.113.10', parseCidrs('203.0.113.9'))).toBeNull();
    expect(inCidrs('8.8.8.8', parseCidrs('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(inCidrs('::1', parseCidrs('0.0.0.0/0'))).toBeNull();
  });

  it('masks host bits of an entry', () => {
    expect(inCidrs('10.9.9.9', parseCidrs('10.1.2.3/8'))).toBe('10.1.2.3/8');
  });

  it('matches IPv6 networks, including compressed and embedded-IPv4 forms', () => {
    const c = parseCidrs('2001:db8::/32,fe80::/10');
    expect(inCidrs('2001:db8:ffff::1', c)).toBe('2001:db8::/32');
    expect(inCidrs('2001:0DB8:0000:0000:0000:0000:0000:0001', c)).toBe('2001:db8::/32');
    expect(inCidrs('2001:db9::1', c)).toBeNull();
    expect(inCidrs('fe80::1%eth0', c)).toBe('fe80::/10');
    expect(inCidrs('10.0.0.1', c)).toBeNull();
    expect(parseIp('::ffff:1.2.3.4')).toEqual({ family: 6, value: 0xffff01020304n });
    expect(parseIp('1::')).toEqual({ family: 6, value: 1n << 112n });
  });

  it('checks an IPv4-mapped IPv6 address against IPv4 entries', () => {
    const c = parseCidrs('10.0.0.0/8');
    expect(inCidrs('::ffff:10.1.2.3', c)).toBe('10.0.0.0/8');
    expect(inCidrs('::ffff:a01:203', c)).toBe('10.0.0.0/8');
    expect(inCidrs('::ffff:11.1.2.3', c)).toBeNull();
  });

  it('reads the word loopback as 127.0.0.0/8 and ::1', () => {
    const c = parseCidrs('loopback');
    expect(inCidrs('127.0.0.1', c)).toBe('loopback');
    expect(inCidrs('127.255.0.9', c)).toBe('loopback');
    expect(inCidrs('::1', c)).toBe('loopback');
    expect(inCidrs('::2', c)).toBeNull();
    expect(inCidrs('128.0.0.1', c)).toBeNull();
  });

  it('ignores empty entries and returns null for a non-IP', () => {
    const c = parseCidrs(' , 10.0.0.0/8 ,,');
    expect(c).toHaveLength(1);
    expect(inCidrs('not-an-ip', c)).toBeNull();
    expect(inCidrs('', c)).toBeNull();
    expect(parseCidrs('')).toEqual([]);
  });

  it.each(['10.0.0.0/33', '10.0.0/8', 'example.com', '2001:db8::/129', '10.0.0.0/8/1', '10.0.0.0/-1', '1.2.3.4/ 8', '::1%lo/128'])(
    'throws on a bad entry %j, naming it',
    (bad) => {
      expect(() => parseCidrs(`10.0.0.0/8,${bad}`)).toThrow(bad);
    },
  );
});
