import { createHmac, createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import { createTokenService } from '../../src/tokens/access-token.ts';
import type { AccessClaims, TokenService } from '../../src/tokens/access-token.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import type { KeyStore } from '../../src/tokens/keys.ts';
import { createTestDb } from '../helpers/db.ts';

const ISS = 'https://login.example.test';
const AUD = 'https://api.example.test';
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const parts = (t: string) => {
  const [h, p, s] = t.split('.');
  return { h, p, s, header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()) };
};

const claims: AccessClaims = {
  sub: '2f0e0f5c-5d0b-4a57-9d1f-3d6f1c1c0b11',
  sid: 'b8a5c3e1-0000-4000-8000-000000000001',
  amr: ['pwd', 'otp', 'mfa'],
  acr: 'urn:threshold:acr:mfa',
  auth_time: Date.UTC(2026, 0, 1) / 1000 - 60,
  scope: 'openid profile',
  roles: ['ADMIN'],
};

let drop: () => Promise<void>;
let clock: ManualClock;
let keys: KeyStore;
let tokens: TokenService;

beforeAll(async () => {
  const t = await createTestDb();
  drop = t.drop;
  clock = new ManualClock();
  keys = createKeyStore(t.db, new Sealer(randomBytes(32)), clock, { retireGraceSeconds: 3600 });
  tokens = createTokenService(keys, clock, { issuer: ISS, audience: AUD, ttlSeconds: 900 });
});
afterAll(async () => {
  await drop();
});

async function rejected(token: string) {
  const e = await tokens.verify(token).then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toMatchObject({ code: 'INVALID_TOKEN', status: 401 });
}

describe('access tokens (RFC 9068)', () => {
  it('verifies with node:crypto against the published JWKS and carries every RFC 9068 claim', async () => {
    const { token, expiresIn, jti } = await tokens.issue(claims);
    expect(expiresIn).toBe(900);
    const { h, p, s, header, payload } = parts(token);
    expect(header).toEqual({ alg: 'EdDSA', kid: (await keys.active()).kid, typ: 'at+jwt' });

    const jwk = (await keys.jwks()).keys.find((k) => k.kid === header.kid);
    expect(jwk).toBeDefined();
    const pub = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    expect(nodeVerify(null, Buffer.from(`${h}.${p}`), pub, Buffer.from(s, 'base64url'))).toBe(true);
    expect(nodeVerify(null, Buffer.from(`${h}.${p}x`), pub, Buffer.from(s, 'base64url'))).toBe(false);

    const now = Date.UTC(2026, 0, 1) / 1000;
    expect(payload).toEqual({
      iss: ISS,
      sub: claims.sub,
      aud: AUD,
      exp: now + 900,
      iat: now,
      jti,
      client_id: 'threshold',
      sid: claims.sid,
      amr: claims.amr,
      acr: claims.acr,
      auth_time: claims.auth_time,
      scope: 'openid profile',
      roles: ['ADMIN'],
    });
    expect(await tokens.verify(token)).toEqual(payload);
  });

  it('gives every token a distinct jti and honours a client_id in the claims', async () => {
    const a = await tokens.issue({ ...claims, client_id: 'mobile-app', scope: undefined, roles: undefined });
    const b = await tokens.issue(claims);
    expect(a.jti).not.toBe(b.jti);
    const v = await tokens.verify(a.token);
    expect(v.client_id).toBe('mobile-app');
    expect(v).not.toHaveProperty('scope');
    expect(v).not.toHaveProperty('roles');
  });

  it('rejects a modified payload', async () => {
    const { token } = await tokens.issue(claims);
    const { h, s, payload } = parts(token);
    await rejected(`${h}.${b64({ ...payload, roles: ['ADMIN', 'SUPERUSER'] })}.${s}`);
    await rejected(`${h}.${b64({ ...payload, sub: 'someone-else' })}.${s}`);
  });

  it('rejects alg none and an HMAC token keyed with the public key', async () => {
    const { token } = await tokens.issue(claims);
    const { header, payload } = parts(token);
    await rejected(`${b64({ ...header, alg: 'none' })}.${b64(payload)}.`);
    const jwk = (await keys.jwks()).keys[0];
    const hs = `${b64({ ...header, alg: 'HS256' })}.${b64(payload)}`;
    for (const secret of [JSON.stringify(jwk), Buffer.from(jwk.x as string, 'base64url')]) {
      await rejected(`${hs}.${createHmac('sha256', secret).update(hs).digest('base64url')}`);
    }
  });

  it('rejects a correctly signed token whose typ is JWT or missing', async () => {
    const k = await keys.active();
    const { payload } = parts((await tokens.issue(claims)).token);
    await rejected(await new SignJWT(payload).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' }).sign(k.key));
    await rejected(await new SignJWT(payload).setProtectedHeader({ alg: k.alg, kid: k.kid }).sign(k.key));
    const ok = await new SignJWT(payload).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'application/at+jwt' }).sign(k.key);
    expect((await tokens.verify(ok)).sub).toBe(claims.sub);
  });

  it('rejects a correctly signed token missing an RFC 9068 claim', async () => {
    const k = await keys.active();
    const { payload } = parts((await tokens.issue(claims)).token);
    for (const claim of ['sid', 'jti', 'client_id', 'exp', 'amr']) {
      const p = { ...payload };
      delete p[claim];
      await rejected(await new SignJWT(p).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'at+jwt' }).sign(k.key));
    }
  });

  it('rejects an expired token, judged by the injected clock with a small tolerance', async () => {
    const { token } = await tokens.issue(claims);
    clock.advance(900_000 + 5_000);
    expect((await tokens.verify(token)).sub).toBe(claims.sub); // within tolerance
    clock.advance(30_000);
    await rejected(token);
    clock.advance(-935_000);
  });

  it('rejects a token for another audience or from another issuer', async () => {
    const other = createTokenService(keys, clock, { issuer: ISS, audience: 'https://other.example.test', ttlSeconds: 900 });
    await rejected((await other.issue(claims)).token);
    const foreign = createTokenService(keys, clock, { issuer: 'https://evil.example.test', audience: AUD, ttlSeconds: 900 });
    await rejected((await foreign.issue(claims)).token);
  });

  it('rejects a token signed by an unknown key, under a new kid or under ours', async () => {
    const { payload } = parts((await tokens.issue(claims)).token);
    const { privateKey } = await generateKeyPair('EdDSA');
    const sign = (kid: string) => new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).sign(privateKey);
    await rejected(await sign(randomBytes(16).toString('base64url')));
    await rejected(await sign((await keys.active()).kid));
    await rejected(await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' }).sign(privateKey));
  });

  it('rejects garbage', async () => {
    for (const t of ['', 'abc', 'a.b.c', `${'x'.repeat(9000)}.y.z`]) await rejected(t);
  });

  it('keeps old tokens valid across rotation within the grace, and signs new ones with the new kid', async () => {
    const long = createTokenService(keys, clock, { issuer: ISS, audience: AUD, ttlSeconds: 7200 });
    const before = await long.issue(claims);
    const oldKid = parts(before.token).header.kid;
    clock.advance(1000);
    const newKid = await keys.rotate();
    expect(newKid).not.toBe(oldKid);

    expect((await long.verify(before.token)).jti).toBe(before.jti);
    const after = await long.issue(claims);
    expect(parts(after.token).header.kid).toBe(newKid);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([newKid, oldKid]);

    clock.advance(3600_000 + 1000); // past the grace, not past the 2 h expiry
    const e = await long.verify(before.token).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'INVALID_TOKEN' });
    expect((await long.verify(after.token)).jti).toBe(after.jti);
  });
});
