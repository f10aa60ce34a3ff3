import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { createVerifyCache, credentialKey, type VerifiedCredential } from '../../src/http/verify-cache.ts';

const entry = (sid: string, id = 'u1'): VerifiedCredential => ({
  principal: { identityId: id, sessionId: sid, amr: ['pwd'], authTime: 0, factorTimes: {} },
  email: `${id}@example.test`,
  roles: ['TECHNICIAN'],
  permissions: [{ name: 'VIEW_CASES', requirement: null }],
});
const FAR = Number.MAX_SAFE_INTEGER;

describe('verify cache', () => {
  it('is bounded: the least recently used entry goes first', () => {
    const clock = new ManualClock();
    const cache = createVerifyCache({ clock, max: 3, ttlMs: 60_000 });
    for (const n of ['a', 'b', 'c']) cache.set(`bearer:${n}`, entry(`s-${n}`), FAR);
    expect(cache.get('bearer:a')).toBeDefined(); // a is now the most recent
    cache.set('bearer:d', entry('s-d'), FAR);
    expect(cache.size).toBe(3);
    expect(cache.get('bearer:b')).toBeUndefined();
    expect(cache.get('bearer:a')).toBeDefined();
    expect(cache.get('bearer:c')).toBeDefined();
    expect(cache.get('bearer:d')).toBeDefined();
    expect(cache.stats().evictions).toBe(1);
    for (let i = 0; i < 1000; i++) cache.set(`cookie:${i}`, entry(`s${i % 7}`), FAR);
    expect(cache.size).toBe(3);
    // The session index shrinks with evictions: clearing an evicted session finds nothing.
    expect(cache.clearSession('s-a')).toBe(0);
  });

  it('expires after its TTL', () => {
    const clock = new ManualClock();
    const cache = createVerifyCache({ clock, max: 10, ttlMs: 30_000 });
    cache.set('cookie:x', entry('s1'), FAR);
    clock.advance(29_999);
    expect(cache.get('cookie:x')).toBeDefined();
    clock.advance(1);
    expect(cache.get('cookie:x')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("never outlives the credential: the token's exp or the session's idle expiry comes first", () => {
    const clock = new ManualClock();
    const cache = createVerifyCache({ clock, max: 10, ttlMs: 60_000 });
    cache.set('bearer:t', entry('s1'), clock.now() + 5_000);
    clock.advance(4_999);
    expect(cache.get('bearer:t')).toBeDefined();
    clock.advance(1);
    expect(cache.get('bearer:t')).toBeUndefined();
    // Already expired: not stored at all.
    cache.set('bearer:old', entry('s1'), clock.now());
    expect(cache.size).toBe(0);
  });

  it('clearSession drops every entry of that session and nothing else', () => {
    const clock = new ManualClock();
    const cache = createVerifyCache({ clock, max: 10, ttlMs: 60_000 });
    cache.set('cookie:c1', entry('s1'), FAR);
    cache.set('bearer:t1', entry('s1'), FAR);
    cache.set('bearer:t2', entry('s1'), FAR);
    cache.set('bearer:other', entry('s2', 'u2'), FAR);
    expect(cache.clearSession('s1')).toBe(3);
    expect(cache.get('cookie:c1')).toBeUndefined();
    expect(cache.get('bearer:t1')).toBeUndefined();
    expect(cache.get('bearer:other')?.principal.sessionId).toBe('s2');
    expect(cache.clearSession('unknown')).toBe(0);
  });

  it('a verification that raced a revocation cannot put the session back', () => {
    const clock = new ManualClock();
    const cache = createVerifyCache({ clock, max: 10, ttlMs: 30_000 });
    cache.clearSession('s1');
    cache.set('bearer:late', entry('s1'), FAR);
    expect(cache.get('bearer:late')).toBeUndefined();
    clock.advance(30_000);
    cache.set('bearer:later', entry('s1'), FAR);
    expect(cache.get('bearer:later')).toBeDefined();
  });

  it('keys by sha256 of the credential, never the raw token', () => {
    expect(credentialKey('bearer:secret')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(credentialKey('bearer:secret')).not.toContain('secret');
  });

  it('max 0 or ttl 0 disables it; bad options fail at creation', () => {
    const clock = new ManualClock();
    const off = createVerifyCache({ clock, max: 0 });
    off.set('bearer:x', entry('s1'), FAR);
    expect(off.get('bearer:x')).toBeUndefined();
    const noTtl = createVerifyCache({ clock, ttlMs: 0 });
    noTtl.set('bearer:x', entry('s1'), FAR);
    expect(noTtl.size).toBe(0);
    expect(() => createVerifyCache({ clock, max: -1 })).toThrow(TypeError);
    expect(() => createVerifyCache({ clock, ttlMs: Number.NaN })).toThrow(TypeError);
  });
});
