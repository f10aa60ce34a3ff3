import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { InvalidTokenError, createTokenService, isInvalidToken } from '../../src/tokens/access-token.ts';
import type { KeyStore } from '../../src/tokens/keys.ts';

// A KeyStore in memory: one EdDSA key under kid "ed" and one ES256 key under kid "ec".
let store: KeyStore;
let ed: { privateKey: CryptoKey; publicKey: CryptoKey };
let ec: { privateKey: CryptoKey; publicKey: CryptoKey };

beforeAll(async () => {
  ed = await generateKeyPair('EdDSA');
  ec = await generateKeyPair('ES256');
  const pubs: Record<string, { alg: string; key: CryptoKey; jwk: JWK }> = {
    ed: { alg: 'EdDSA', key: ed.publicKey, jwk: await exportJWK(ed.publicKey) },
    ec: { alg: 'ES256', key: ec.publicKey, jwk: await exportJWK(ec.publicKey) },
  };
  store = {
    active: async () => ({ kid: 'ed', alg: 'EdDSA', key: ed.privateKey }),
    jwks: async () => ({ keys: Object.values(pubs).map((p) => p.jwk) }),
    rotate: async () => 'ed',
    publicKey: async (kid) => (pubs[kid] ? { kid, ...pubs[kid] } : null),
  };
});

const claims = { sub: 'u1', sid: 's1', amr: ['pwd'], acr: '0', auth_time: 1767225600 };
const opts = { issuer: 'https://iss.test', audience: 'api', ttlSeconds: 60 };

describe('token service against a KeyStore', () => {
  it('round-trips with the default client_id', async () => {
    const svc = createTokenService(store, new ManualClock(), opts);
    const v = await svc.verify((await svc.issue(claims)).token);
    expect(v).toMatchObject({ ...claims, client_id: 'threshold', iss: opts.issuer, aud: 'api' });
  });

  it('uses the configured client_id', async () => {
    const svc = createTokenService(store, new ManualClock(), { ...opts, clientId: 'portal' });
    expect((await svc.verify((await svc.issue(claims)).token)).client_id).toBe('portal');
  });

  // Algorithm confusion: the key registered for a kid decides the algorithm, not the header.
  it('rejects a token whose alg differs from the alg of the kid it names', async () => {
    const svc = createTokenService(store, new ManualClock(), opts);
    const payload = { ...claims, client_id: 'x', iss: opts.issuer, aud: 'api', jti: 'j', iat: 1767225600, exp: 1767225660 };
    const forged = await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid: 'ec', typ: 'at+jwt' }).sign(ed.privateKey);
    const e = await svc.verify(forged).catch((err: unknown) => err);
    expect(isInvalidToken(e)).toBe(true);
    expect(e).toBeInstanceOf(InvalidTokenError);
    expect((e as InvalidTokenError).detail).toMatch(/alg/);
  });

  it('rejects a token issued in the future beyond the tolerance', async () => {
    const clock = new ManualClock();
    const svc = createTokenService(store, clock, opts);
    clock.advance(120_000);
    const { token } = await svc.issue(claims);
    clock.advance(-120_000);
    await expect(svc.verify(token)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
  });
});
