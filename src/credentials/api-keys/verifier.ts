import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Audit } from '../../audit/audit.ts';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { RbacVersionSource } from '../../rbac/snapshot.ts';
import { inCidrs, parseCidrs, type Cidr } from '../../risk/cidr.ts';
import { keyHasher, limiterUnavailable, makeLimiter, rateLimited, withStoreTimeout, type Store } from '../../security/limits.ts';
import { hashApiKey, isWellFormedApiKey } from './format.ts';
import type { ApiKeyLookup, ApiKeyStore } from './store.ts';

/**
 * The API-key check, exactly as the operator design draws it:
 *
 *   no key → 401 · bad format → 400 · hash, look up · unknown → 401 · expired or revoked → 401 ·
 *   IP not in the key's allow-list → 403 · over its rate limit → 429 · load permissions ·
 *   (authorize → 403 or proceed, by the route) · update usage stats (usage.ts).
 *
 * Warm path: the record is held in memory by its hash, valid while the process-wide API-key
 * version (one Redis GET, the same pattern as the RBAC snapshot) has not moved and for at most
 * `cacheMs`; the version read and the key's rate-limit counter go to Redis together. Every
 * revocation or rotation bumps the version after its commit, so every process's next request
 * reloads: revocation takes effect at once everywhere. When the version cannot be read the record
 * is reloaded from Postgres on every request (slower, never stale).
 *
 * Wrong keys: a malformed, unknown, expired or revoked key counts against the client IP; past
 * `failuresPerIp` in `failureWindowSeconds` that IP's unknown keys are refused with 429 before
 * any lookup (a burst of guesses costs no SQL). Known-key refusals are audited once per key,
 * reason and window.
 */
export interface ApiKeyVerifierOptions {
  store: ApiKeyStore;
  clock: Clock;
  audit: Audit;
  logger: Logger;
  version: RbacVersionSource;
  redis: Redis | null;
  hashKey: Buffer;
  defaultRatePerMinute: number;
  failuresPerIp: number;
  failureWindowSeconds: number;
  cacheMs?: number;
  storeTimeoutMs?: number;
  /** Prefix of the limiter keys (tests give each its own). */
  prefix?: string;
}

export interface VerifiedKey {
  record: ApiKeyLookup;
}

interface Entry {
  record: ApiKeyLookup;
  cidrs: Cidr[];
  version: number;
  loadedAt: number;
}

export function createApiKeyVerifier(o: ApiKeyVerifierOptions) {
  const cacheMs = o.cacheMs ?? 30_000;
  const timeoutMs = o.storeTimeoutMs ?? 1000;
  const prefix = o.prefix ?? 'rl:apikey';
  const hashIp = keyHasher(o.hashKey);
  const failures = makeLimiter(o.redis, `${prefix}-fail`, { points: o.failuresPerIp, duration: o.failureWindowSeconds });
  const limiters = new Map<number, Store>();
  const limiterFor = (perMinute: number) => {
    let l = limiters.get(perMinute);
    if (!l) limiters.set(perMinute, (l = makeLimiter(o.redis, `${prefix}-rate-${perMinute}`, { points: perMinute, duration: 60 })));
    return l;
  };
  const cache = new Map<string, Entry>();
  const audited = new Map<string, number>();

  const version = async (): Promise<number> => {
    try {
      return await o.version.current();
    } catch {
      return Number.NaN;
    }
  };

  const auditRefusal = (r: Pick<ApiKeyLookup, 'id' | 'identityId'> | null, reason: string, ip: string) => {
    const now = o.clock.now();
    const k = `${r?.id ?? `ip:${hashIp(ip, '').ip}`}\n${reason}`;
    const last = audited.get(k);
    if (last !== undefined && now - last < 5 * 60_000) return;
    audited.delete(k);
    audited.set(k, now);
    while (audited.size > 10_000) audited.delete(audited.keys().next().value as string);
    void o.audit
      .append({ type: 'api_key.refused', actor: r?.identityId ?? null, subject: r?.id ?? null, reason, data: { ip } })
      .catch((err) => o.logger.error({ err }, 'audit of an API-key refusal failed'));
  };

  /** A wrong key from `ip`: counted (the next lookups from there stop at the limit). */
  const failed = async (ip: string) => {
    try {
      await withStoreTimeout(failures.consume(hashIp(ip, '').ip, 1), timeoutMs);
    } catch {
      // Spent already, or the store is down: the next lookup's check answers for it.
    }
  };

  /** Stops a burst of guessed keys from one address before it reaches Postgres. */
  const checkIpBudget = async (ip: string) => {
    let res: RateLimiterRes | null;
    try {
      res = await withStoreTimeout(failures.get(hashIp(ip, '').ip), timeoutMs);
    } catch (e) {
      throw limiterUnavailable(e);
    }
    if (res && res.consumedPoints >= o.failuresPerIp) {
      auditRefusal(null, 'TOO_MANY_WRONG_KEYS', ip);
      throw rateLimited(res.msBeforeNext, 'api key failures per IP');
    }
  };

  /** One request of the key counted: allowed, spent (ms until a point frees), or the store failed. */
  const consume = async (r: ApiKeyLookup): Promise<{ spentMs: number | null } | Error> => {
    try {
      await withStoreTimeout(limiterFor(r.rateLimitPerMinute ?? o.defaultRatePerMinute).consume(r.id, 1), timeoutMs);
      return { spentMs: null };
    } catch (e) {
      return e instanceof RateLimiterRes ? { spentMs: e.msBeforeNext } : (e as Error);
    }
  };

  return {
    /**
     * The key's record, or null (unknown, expired, revoked, or its identity no longer active:
     * the same 401 for all). Throws 400 (malformed), 403 (address), 429 (rate limit, or too many
     * wrong keys from this address).
     */
    async verify(key: string, ip: string): Promise<VerifiedKey | null> {
      if (!isWellFormedApiKey(key)) {
        await failed(ip);
        throw new AppError('API_KEY_MALFORMED');
      }
      const hash = hashApiKey(key);
      const now = o.clock.now();
      let entry = cache.get(hash);
      // The version read and (when the record is held) the rate-limit count, together.
      const [v, spent] = await Promise.all([version(), entry ? consume(entry.record) : Promise.resolve(null)]);
      const fresh = entry && !Number.isNaN(v) && entry.version === v && now - entry.loadedAt < cacheMs;
      let counted = spent;
      if (!fresh) {
        if (entry) cache.delete(hash);
        await checkIpBudget(ip);
        const record = await o.store.byHash(hash);
        if (!record) {
          await failed(ip);
          return null;
        }
        entry = { record, cidrs: parseCidrs(record.allowedCidrs.join(',')), version: Number.isNaN(v) ? -1 : v, loadedAt: now };
        if (!Number.isNaN(v)) {
          cache.set(hash, entry);
          while (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
        }
        counted = null;
      }
      const r = entry!.record;
      if (r.revokedAt !== null || (r.expiresAt !== null && r.expiresAt <= now) || !r.ownerActive || !r.creatorActive) {
        auditRefusal(r, r.revokedAt !== null ? 'REVOKED' : !r.ownerActive ? 'IDENTITY_INACTIVE' : !r.creatorActive ? 'CREATOR_INACTIVE' : 'EXPIRED', ip);
        await failed(ip);
        return null;
      }
      if (entry!.cidrs.length && !inCidrs(ip, entry!.cidrs)) {
        auditRefusal(r, 'ADDRESS_REFUSED', ip);
        throw new AppError('API_KEY_ADDRESS_REFUSED');
      }
      const res = counted ?? (await consume(r));
      if (res instanceof Error) throw limiterUnavailable(res);
      if (res.spentMs !== null) {
        auditRefusal(r, 'RATE_LIMITED', ip);
        throw rateLimited(res.spentMs, 'api key');
      }
      return { record: r };
    },
    /** This process's cache, dropped at once (the version bump tells the others). */
    forget(): void {
      cache.clear();
    },
  };
}

export type ApiKeyVerifier = ReturnType<typeof createApiKeyVerifier>;
