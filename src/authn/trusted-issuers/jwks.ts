import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Clock } from '../../clock.ts';
import type { TrustedIssuer } from './registry.ts';

/**
 * Each trusted issuer's signing keys, fetched from its JWKS (or its OpenID discovery document's
 * `jwks_uri`) and kept in memory: no call to the issuer per verified token.
 *
 * - Kept `ttlMs`; a stale set is refreshed on the next use, and still used if the issuer cannot
 *   be reached (keys do not go bad because the IdP is down). With nothing cached, fail closed.
 * - A `kid` not in the set triggers a refresh (the issuer rotated), but at most one per
 *   `refreshFloorMs` per issuer, single-flight: a flood of tokens with random kids costs the
 *   issuer one request per floor, and the tokens are refused from memory.
 */
export class JwksUnavailableError extends Error {
  readonly reason = 'JWKS_UNAVAILABLE' as const;
}
export class UnknownKeyError extends Error {
  readonly reason = 'UNKNOWN_KEY' as const;
}

type KeyGetter = ReturnType<typeof createLocalJWKSet>;
interface State {
  /** Source the keys came from: a changed issuer configuration starts afresh. */
  source: string;
  keys: KeyGetter | null;
  kids: Set<string>;
  fetchedAt: number;
  lastAttempt: number;
  inflight: Promise<void> | null;
}

export interface JwksCacheOptions {
  clock: Clock;
  ttlMs?: number;
  refreshFloorMs?: number;
  timeoutMs?: number;
  /** Injected for tests; the global fetch otherwise. */
  fetch?: typeof fetch;
}

const MAX_DOC_BYTES = 256 * 1024;

async function getJson(f: typeof fetch, url: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const res = await f(url, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_DOC_BYTES) throw new Error(`${url} answered more than ${MAX_DOC_BYTES} bytes`);
  const body = JSON.parse(text) as unknown;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error(`${url} did not answer a JSON object`);
  return body as Record<string, unknown>;
}

export function createJwksCache(o: JwksCacheOptions) {
  const ttlMs = o.ttlMs ?? 10 * 60_000;
  const floorMs = o.refreshFloorMs ?? 30_000;
  const timeoutMs = o.timeoutMs ?? 3000;
  const f = o.fetch ?? fetch;
  const states = new Map<string, State>();
  const stats = { fetches: 0, failures: 0 };

  const sourceOf = (i: TrustedIssuer) => `${i.jwksUri ?? ''}\n${i.discoveryUrl ?? ''}`;

  /** The JWKS URL: configured, or from discovery (whose `issuer` must be this issuer: stops a mix-up). */
  async function jwksUrl(i: TrustedIssuer): Promise<string> {
    if (i.jwksUri) return i.jwksUri;
    const doc = await getJson(f, i.discoveryUrl!, timeoutMs);
    if (doc.issuer !== i.issuer) throw new Error('discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//i.test(doc.jwks_uri)) throw new Error('discovery document has no http(s) jwks_uri');
    return doc.jwks_uri;
  }

  function refresh(i: TrustedIssuer, st: State): Promise<void> {
    st.inflight ??= (async () => {
      st.lastAttempt = o.clock.now();
      stats.fetches++;
      try {
        const doc = await getJson(f, await jwksUrl(i), timeoutMs);
        if (!Array.isArray(doc.keys)) throw new Error('JWKS has no keys array');
        // Private or symmetric members are never used for verification: keep public parts only.
        const keys = (doc.keys as Record<string, unknown>[]).filter((k) => k && typeof k === 'object' && k.kty !== 'oct' && k.d === undefined);
        st.keys = createLocalJWKSet({ keys } as JSONWebKeySet);
        st.kids = new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
        st.fetchedAt = o.clock.now();
      } catch (e) {
        stats.failures++;
        throw e;
      }
    })().finally(() => {
      st.inflight = null;
    });
    return st.inflight;
  }

  function stateOf(i: TrustedIssuer): State {
    let st = states.get(i.issuer);
    if (!st || st.source !== sourceOf(i)) {
      st = { source: sourceOf(i), keys: null, kids: new Set(), fetchedAt: 0, lastAttempt: -Infinity, inflight: null };
      states.set(i.issuer, st);
    }
    return st;
  }

  /** The key for a token's header; throws JwksUnavailableError or UnknownKeyError. */
  async function key(i: TrustedIssuer, header: JWSHeaderParameters, token: FlattenedJWSInput) {
    const st = stateOf(i);
    const now = o.clock.now();
    if (!st.keys || now - st.fetchedAt >= ttlMs) {
      // Stale (or never fetched): refresh, but no more often than the floor when it keeps failing.
      if (!st.keys || now - st.lastAttempt >= floorMs) await refresh(i, st).catch(() => {});
      if (!st.keys) throw new JwksUnavailableError(`no keys for ${i.issuer}`);
    }
    const known = typeof header.kid !== 'string' || st.kids.has(header.kid);
    if (!known && o.clock.now() - st.lastAttempt >= floorMs) {
      await refresh(i, st).catch(() => {});
    } else if (!known && st.inflight) {
      await st.inflight.catch(() => {});
    }
    try {
      return await st.keys!(header, token);
    } catch (e) {
      throw new UnknownKeyError(e instanceof Error ? e.message : 'no matching key');
    }
  }

  return { key, stats, forget: (issuer: string) => states.delete(issuer) };
}
export type JwksCache = ReturnType<typeof createJwksCache>;
