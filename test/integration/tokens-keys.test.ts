import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import type { Db } from '../../src/db/db.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import { createTestDb } from '../helpers/db.ts';

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(drops.map((d) => d()));
});

async function fresh(): Promise<Db> {
  const t = await createTestDb();
  drops.push(t.drop);
  return t.db;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

describe('signing key store', () => {
  it('creates an Ed25519 key on first use and stores the private half sealed under aad = kid', async () => {
    const db = await fresh();
    const sealer = new Sealer(randomBytes(32));
    const keys = createKeyStore(db, sealer, new ManualClock());
    const k = await keys.active();
    expect(k.alg).toBe('EdDSA');
    expect(k.kid).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    const { rows } = await db.query<{ kid: string; public_jwk: Record<string, unknown>; private_sealed: string }>(
      'SELECT kid, public_jwk, private_sealed FROM signing_keys',
    );
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row.kid).toBe(k.kid);
    const priv = JSON.parse(sealer.open(row.private_sealed, row.kid).toString('utf8')) as { d: string; x: string };
    expect(priv.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(row.private_sealed).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(priv.d);
    expect(Object.keys(row.public_jwk)).not.toContain('d');
    expect(row.public_jwk.x).toBe(priv.x);
    // Bound to its row: the ciphertext does not open under another kid or another master key.
    expect(() => sealer.open(row.private_sealed, 'another-kid')).toThrow();
    expect(() => new Sealer(randomBytes(32)).open(row.private_sealed, row.kid)).toThrow();
  });

  it('publishes only public members, with kid, alg and use', async () => {
    const db = await fresh();
    const keys = createKeyStore(db, new Sealer(randomBytes(32)), new ManualClock());
    const { kid } = await keys.active();
    const { keys: jwks } = await keys.jwks();
    expect(jwks).toHaveLength(1);
    expect(jwks[0]).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.any(String), kid, alg: 'EdDSA', use: 'sig' });
    for (const m of PRIVATE_MEMBERS) expect(jwks[0]).not.toHaveProperty(m);
    const pk = await keys.publicKey(kid);
    expect(pk?.jwk).toEqual(jwks[0]);
    expect(await keys.publicKey('no-such-kid')).toBeNull();
  });

  it('creates exactly one first key when two processes race', async () => {
    const db = await fresh();
    const sealer = new Sealer(randomBytes(32));
    const stores = Array.from({ length: 4 }, () => createKeyStore(db, sealer, new ManualClock()));
    const got = await Promise.all(stores.map((s) => s.active()));
    expect(new Set(got.map((g) => g.kid)).size).toBe(1);
    const { rows } = await db.query('SELECT kid FROM signing_keys');
    expect(rows).toHaveLength(1);
  });

  it('rotates: new active key, old one retired but published until the grace ends', async () => {
    const db = await fresh();
    const clock = new ManualClock();
    const keys = createKeyStore(db, new Sealer(randomBytes(32)), clock, { retireGraceSeconds: 600 });
    const old = (await keys.active()).kid;
    clock.advance(1000);
    const kid = await keys.rotate();
    expect(kid).not.toBe(old);
    expect((await keys.active()).kid).toBe(kid);

    const { rows } = await db.query<{ kid: string; retired_at: Date | null }>('SELECT kid, retired_at FROM signing_keys');
    expect(rows.find((r) => r.kid === old)?.retired_at?.getTime()).toBe(clock.now());
    expect(rows.find((r) => r.kid === kid)?.retired_at).toBeNull();

    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([kid, old]);
    expect(await keys.publicKey(old)).not.toBeNull();

    clock.advance(600_000 + 1);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([kid]);
    expect(await keys.publicKey(old)).toBeNull();
    expect(await keys.publicKey(kid)).not.toBeNull();
  });

  it('another process picks up a rotation once its cache refreshes', async () => {
    const db = await fresh();
    const sealer = new Sealer(randomBytes(32));
    const clock = new ManualClock();
    const a = createKeyStore(db, sealer, clock);
    const b = createKeyStore(db, sealer, clock);
    const first = (await b.active()).kid;
    const next = await a.rotate();
    expect((await b.active()).kid).toBe(first); // cached, and still valid within the grace
    clock.advance(61_000);
    expect((await b.active()).kid).toBe(next);
  });

  it('supports ES256 keys when configured', async () => {
    const db = await fresh();
    const keys = createKeyStore(db, new Sealer(randomBytes(32)), new ManualClock(), { alg: 'ES256' });
    expect((await keys.active()).alg).toBe('ES256');
    const [jwk] = (await keys.jwks()).keys;
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
  });
});
