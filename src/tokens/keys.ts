import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import type { Sealer } from '../crypto/seal.ts';

export type SigningAlg = 'EdDSA' | 'ES256' | 'ES384' | 'PS256' | 'RS256';

export interface ActiveKey {
  kid: string;
  alg: string;
  /** The private signing key. */
  key: CryptoKey | KeyObject;
}

export interface PublicKey {
  kid: string;
  alg: string;
  key: CryptoKey | KeyObject;
  /** Public members only, with kid, alg and use. */
  jwk: JWK;
}

export interface KeyStore {
  /** The newest non-retired key; created on first use. */
  active(): Promise<ActiveKey>;
  /** Non-retired keys plus keys retired within the grace period; never private members. */
  jwks(): Promise<{ keys: JWK[] }>;
  /** Create a new key and retire all others; returns the new kid. */
  rotate(): Promise<string>;
  /** The verification key for a kid, or null if unknown or retired beyond the grace period. */
  publicKey(kid: string): Promise<PublicKey | null>;
}

export interface KeyStoreOptions {
  /** How long a retired key still verifies and is still published. Default 86400. */
  retireGraceSeconds?: number;
  /** Algorithm for new keys. Default EdDSA (Ed25519). */
  alg?: SigningAlg;
}

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: JWK;
  private_sealed: string;
  created_at: Date;
  retired_at: Date | null;
}

/** Members a public JWK may carry; anything else (d, p, q, dp, dq, qi, k, …) is dropped. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;
/** Re-check the database this often so a rotation by another process is picked up. */
const REFRESH_MS = 60_000;
const KEYGEN_LOCK = 727275;

function publicJwk(jwk: JWK, kid: string, alg: string): JWK {
  const out: JWK = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return { ...out, kid, alg, use: 'sig' };
}

const ms = (d: Date | string | null): number | null => (d === null ? null : new Date(d).getTime());

export function createKeyStore(db: Db, sealer: Sealer, clock: Clock, opts: KeyStoreOptions = {}): KeyStore {
  const graceMs = (opts.retireGraceSeconds ?? 86400) * 1000;
  const newAlg: SigningAlg = opts.alg ?? 'EdDSA';

  let activeCache: { value: ActiveKey; checkedAt: number } | null = null;
  const publicCache = new Map<string, { value: PublicKey; retiredAt: number | null; loadedAt: number }>();

  const now = () => clock.now();

  async function newestRow(q: Queryable): Promise<KeyRow | null> {
    const { rows } = await q.query<KeyRow>(
      `SELECT kid, alg, public_jwk, private_sealed, created_at, retired_at FROM signing_keys
        WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1`,
    );
    return rows[0] ?? null;
  }

  async function insertKey(q: Queryable): Promise<string> {
    const kid = randomBytes(16).toString('base64url');
    const pair = await generateKeyPair(newAlg, { extractable: true });
    const priv = await exportJWK(pair.privateKey);
    const pub = publicJwk(await exportJWK(pair.publicKey), kid, newAlg);
    // aad = kid: a sealed key copied into another row does not open.
    const sealed = sealer.seal(JSON.stringify(priv), kid);
    await q.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at) VALUES ($1, $2, $3::jsonb, $4, $5)`,
      [kid, newAlg, JSON.stringify(pub), sealed, new Date(now()).toISOString()],
    );
    return kid;
  }

  async function loadPrivate(row: KeyRow): Promise<ActiveKey> {
    const jwk = JSON.parse(sealer.open(row.private_sealed, row.kid).toString('utf8')) as JWK;
    const key = await importJWK(jwk, row.alg);
    if (key instanceof Uint8Array) throw new Error(`signing key ${row.kid} is not asymmetric`);
    return { kid: row.kid, alg: row.alg, key };
  }

  async function toPublic(kid: string, alg: string, stored: JWK): Promise<PublicKey> {
    const jwk = publicJwk(stored, kid, alg);
    const key = await importJWK(jwk, alg);
    if (key instanceof Uint8Array) throw new Error(`signing key ${kid} is not asymmetric`);
    return { kid, alg, key, jwk };
  }

  const withinGrace = (retiredAt: number | null) => retiredAt === null || retiredAt > now() - graceMs;

  return {
    async active() {
      if (activeCache && now() - activeCache.checkedAt < REFRESH_MS) return activeCache.value;
      let row = await newestRow(db);
      if (!row) {
        // Two processes starting together must not both create a key: serialise on a lock
        // and look again inside it; then re-read so every racer uses the same newest key.
        row = await db.tx(async (q) => {
          await q.query('SELECT pg_advisory_xact_lock($1)', [KEYGEN_LOCK]);
          if (!(await newestRow(q))) await insertKey(q);
          return newestRow(q);
        });
        if (!row) throw new Error('no active signing key after creating one');
      }
      const value = activeCache?.value.kid === row.kid ? activeCache.value : await loadPrivate(row);
      activeCache = { value, checkedAt: now() };
      return value;
    },

    async jwks() {
      const { rows } = await db.query<Pick<KeyRow, 'kid' | 'alg' | 'public_jwk'>>(
        `SELECT kid, alg, public_jwk FROM signing_keys
          WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid DESC`,
        [new Date(now() - graceMs).toISOString()],
      );
      return { keys: rows.map((r) => publicJwk(r.public_jwk, r.kid, r.alg)) };
    },

    async rotate() {
      const kid = await db.tx(async (q) => {
        await q.query('SELECT pg_advisory_xact_lock($1)', [KEYGEN_LOCK]);
        const k = await insertKey(q);
        await q.query('UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2', [
          new Date(now()).toISOString(),
          k,
        ]);
        return k;
      });
      activeCache = null;
      publicCache.clear();
      return kid;
    },

    async publicKey(kid) {
      if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) return null;
      let hit = publicCache.get(kid);
      if (!hit || now() - hit.loadedAt >= REFRESH_MS) {
        const { rows } = await db.query<Pick<KeyRow, 'kid' | 'alg' | 'public_jwk' | 'retired_at'>>(
          'SELECT kid, alg, public_jwk, retired_at FROM signing_keys WHERE kid = $1',
          [kid],
        );
        const r = rows[0];
        if (!r) {
          publicCache.delete(kid);
          return null;
        }
        hit = { value: await toPublic(r.kid, r.alg, r.public_jwk), retiredAt: ms(r.retired_at), loadedAt: now() };
        publicCache.set(kid, hit);
      }
      return withinGrace(hit.retiredAt) ? hit.value : null;
    },
  };
}
