import { describe, expect, it } from 'vitest';
import { networkOf } from '../../src/tokens/refresh.ts';

describe('networkOf (what counts as "the client moved")', () => {
  it('IPv4: the /24', () => {
    expect(networkOf('81.2.69.142')).toBe('81.2.69.0/24');
    expect(networkOf('81.2.69.1')).toBe(networkOf('81.2.69.254'));
    expect(networkOf('81.2.70.1')).not.toBe(networkOf('81.2.69.1'));
  });

  it('an IPv4-mapped IPv6 address is its IPv4 /24', () => {
    expect(networkOf('::ffff:81.2.69.142')).toBe('81.2.69.0/24');
  });

  it('IPv6: the /48', () => {
    expect(networkOf('2a00:1450:4009:81a::200e')).toBe('2a00:1450:4009::/48');
    expect(networkOf('2a00:1450:4009:ffff::1')).toBe(networkOf('2a00:1450:4009::1'));
    expect(networkOf('2a00:1450:400a::1')).not.toBe(networkOf('2a00:1450:4009::1'));
    expect(networkOf('::1')).toBe('0:0:0::/48');
  });

  it('something that is not an address stays itself', () => {
    expect(networkOf('unknown')).toBe('unparsed:unknown');
  });
});
