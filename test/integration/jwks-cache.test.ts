import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { createJwksCache, JwksUnavailableError, UnknownKeyError } from '../../src/authn/trusted-issuers/jwks.ts';
import { IssuerInputSchema, type TrustedIssuer } from '../../src/authn/trusted-issuers/registry.ts';
import { startWorkloadIssuer, type WorkloadIssuer } from '../helpers/issuers.ts';

/**
 * The per-issuer JWKS cache against a real JWKS endpoint on loopback (counted): TTL, refresh on
 * an unknown kid at most once per floor and single-flight, stale keys kept while the issuer is
 * down, fail closed with nothing cached.
 */
let idp: WorkloadIssuer;
let issuer: TrustedIssuer;
const clock = new ManualClock(Date.parse('2026-11-30T09:00:00Z'));
const header = async (o: { kid?: string } = {}) => {
  const t = await idp.signClaims({ sub: 'x' }, o);
  return { header: decodeProtectedHeader(t), token: { payload: '', signature: '', protected: t.split('.')[0] } };
};

beforeAll(async () => {
  idp = await startWorkloadIssuer();
  issuer = { ...IssuerInputSchema.parse({ issuer: idp.issuer, jwksUri: idp.jwksUri, audiences: ['a'], purposes: 'both', algorithms: ['RS256'] }), id: 'i', source: 'api', createdAt: '', updatedAt: '' };
});
afterAll(async () => {
  await idp?.close();
});

describe('JWKS cache', () => {
  it('fetches once, refreshes after the TTL, and keeps stale keys while the issuer is down', async () => {
    const cache = createJwksCache({ clock, ttlMs: 60_000, refreshFloorMs: 10_000 });
    const start = idp.counts.jwks;
    const h = await header();
    await Promise.all(Array.from({ length: 20 }, () => cache.key(issuer, h.header, h.token as never)));
    expect(idp.counts.jwks - start).toBe(1); // 20 concurrent cold lookups: one fetch
    clock.advance(61_000);
    idp.setJwksStatus(503);
    await expect(cache.key(issuer, h.header, h.token as never)).resolves.toBeDefined(); // stale, still good
    expect(idp.counts.jwks - start).toBe(2); // it did try
    await cache.key(issuer, h.header, h.token as never);
    expect(idp.counts.jwks - start).toBe(2); // and not again before the floor
    idp.setJwksStatus(200);
  });

  it('an unknown kid refreshes at most once per floor, single-flight; a rotated key is found', async () => {
    const cache = createJwksCache({ clock, ttlMs: 600_000, refreshFloorMs: 30_000 });
    const h = await header();
    await cache.key(issuer, h.header, h.token as never);
    clock.advance(31_000);
    const before = idp.counts.jwks;
    const floods = await Promise.allSettled(Array.from({ length: 50 }, async (_, i) => cache.key(issuer, (await header({ kid: `random-${i}` })).header, h.token as never)));
    expect(floods.every((r) => r.status === 'rejected' && r.reason instanceof UnknownKeyError)).toBe(true);
    expect(idp.counts.jwks - before).toBe(1);
    const kid = await idp.rotate();
    const rotated = await header({ kid });
    await expect(cache.key(issuer, rotated.header, h.token as never)).rejects.toBeInstanceOf(UnknownKeyError); // within the floor
    clock.advance(31_000);
    await expect(cache.key(issuer, rotated.header, h.token as never)).resolves.toBeDefined();
    expect(idp.counts.jwks - before).toBe(2);
  });

  it('fails closed when nothing is cached and the issuer is unreachable', async () => {
    const cache = createJwksCache({ clock });
    idp.setJwksStatus(500);
    try {
      const h = await header();
      await expect(cache.key(issuer, h.header, h.token as never)).rejects.toBeInstanceOf(JwksUnavailableError);
    } finally {
      idp.setJwksStatus(200);
    }
  });
});
