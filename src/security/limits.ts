import { createHash, createHmac } from 'node:crypto';
import { metrics } from '../metrics/metrics.ts';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, ERRORS, type ErrorCode } from '../errors.ts';
import { normalizeIdentifier } from '../authn/methods/password/password.ts';
import { parseIp, unmapIPv4, formatIPv4 } from '../risk/cidr.ts';

/**
 * Brute-force limits on password attempts (rate-limiter-flexible): per client IP, per account
 * (normalised identifier, known or not) and per IP+account, plus a progressive delay.
 *
 * Counting is by reservation: `beforeAttempt` consumes one point on each limit *before* the
 * password is checked, `onSuccess`/`release` give it back. So N parallel guesses can never slip
 * past a limit between check and count, and a failure stays counted even if the process or Redis
 * dies after the password check. Steady state: only failures (and attempts in flight) count.
 * The progressive delay follows confirmed failures only (a streak that `onFailure` extends and
 * `onSuccess` clears), so parallel attempts that turn out right are never slowed down.
 *
 * Stores: Redis in production (shared by every API process), memory in the embedded default
 * (one process). There is deliberately no insurance limiter: when Redis cannot answer, attempts
 * are refused with 503 — an outage must never mean unlimited guesses. Durable account lockout
 * stays in Postgres (src/authn/methods/password/password.ts); these counters are the fast, forgettable front line.
 */

export interface Window {
  /** Failures allowed inside the window; the next attempt gets 429. */
  points: number;
  /** Window length in seconds (fixed window from the first counted failure). */
  duration: number;
}

export interface DelayPolicy {
  /** Consecutive IP+account failures before attempts are slowed down. */
  afterFailures: number;
  baseMs: number;
  maxMs: number;
}

export interface LoginLimiterOptions {
  /** A Redis connection the limiter takes ownership of (closed by `close()`); null = in memory. */
  redis: Redis | null;
  /** Key prefix in the store; each limit adds `:ip`, `:acct`, `:ipacct`. */
  prefix?: string;
  perIp: Window;
  perAccount: Window;
  perIpAccount: Window;
  delay: DelayPolicy;
  /** HMAC key for store keys; without it keys are plain SHA-256 (guessable emails stay guessable). */
  hashKey?: Buffer | string;
  /** A store call slower than this counts as the store being down (fail closed). */
  storeTimeoutMs?: number;
}

export interface LoginLimiter {
  /**
   * Stops online guessing: reserves one attempt on each limit before a password is checked.
   * Throws RATE_LIMITED (429, Retry-After) when a limit is spent, the unavailable error (503)
   * when the store cannot answer. The caller must await `delayMs` before checking the password.
   */
  beforeAttempt(ip: string, identifier: string): Promise<{ delayMs: number }>;
  /** A wrong password or a locked account: the reservation stands; the delay streak grows. */
  onFailure(ip: string, identifier: string): Promise<void>;
  /** A correct password: gives back the per-IP and per-account points, clears IP+account and its streak. */
  onSuccess(ip: string, identifier: string): Promise<void>;
  /** The attempt never reached a password check (bad body, wrong step, conflict, 5xx): give it back. */
  release(ip: string, identifier: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * 503 code for "the limiter store is down". RATE_LIMIT_UNAVAILABLE once it is in the error
 * registry, SERVICE_UNAVAILABLE until then.
 */
export const LIMITER_UNAVAILABLE_CODE: ErrorCode = (
  'RATE_LIMIT_UNAVAILABLE' in ERRORS ? 'RATE_LIMIT_UNAVAILABLE' : 'SERVICE_UNAVAILABLE'
) as ErrorCode;

export const limiterUnavailable = (cause: unknown) =>
  new AppError(LIMITER_UNAVAILABLE_CODE, { privateDetail: 'rate-limit store unavailable', cause });

export const rateLimited = (msBeforeNext: number, which: string) =>
  // Every limiter's refusal is built here, so it is counted here (`which` names limiters, never keys).
  (metrics.rateLimited.inc({ limiter: which }), new AppError('RATE_LIMITED', {
    privateDetail: `rate limit spent: ${which}`,
    headers: { 'Retry-After': String(retryAfterSeconds(msBeforeNext)) },
  }));

/** Whole seconds, at least 1 (a Retry-After of 0 invites a hot retry loop). */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Exponential, capped: 0 until `afterFailures` prior failures, then base, 2×base, 4×base… ≤ max. */
export function progressiveDelay(priorFailures: number, p: DelayPolicy): number {
  if (priorFailures < p.afterFailures || p.baseMs <= 0) return 0;
  const exp = Math.min(priorFailures - p.afterFailures, 30);
  return Math.min(p.maxMs, p.baseMs * 2 ** exp);
}

/**
 * The unit an IP is counted in: the address for IPv4, the /64 for IPv6 (one host usually owns
 * a whole /64, so counting single v6 addresses would give an attacker 2^64 fresh budgets).
 */
export function ipBucket(ip: string): string {
  const p = parseIp(ip);
  if (!p) return ip;
  const v4 = p.family === 4 ? p : unmapIPv4(p);
  if (v4) return formatIPv4(v4.value);
  return `${(p.value >> 64n).toString(16)}::/64`;
}

/** Store keys: a keyed hash, so no email address or IP is readable in Redis. */
export function keyHasher(hashKey?: Buffer | string) {
  const h = (s: string) =>
    (hashKey ? createHmac('sha256', hashKey) : createHash('sha256')).update(s).digest('hex').slice(0, 32);
  return (ip: string, identifier: string) => {
    const bucket = ipBucket(ip);
    const acct = normalizeIdentifier(identifier);
    return { ip: h(`ip\0${bucket}`), acct: h(`acct\0${acct}`), ipacct: h(`ipacct\0${bucket}\0${acct}`) };
  };
}

export function withStoreTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`rate-limit store did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

export type Store = RateLimiterRedis | RateLimiterMemory;

/** One rate-limiter-flexible limiter on Redis or memory; never with an insurance limiter. */
export function makeLimiter(redis: Redis | null, keyPrefix: string, w: Window): Store {
  if (!Number.isInteger(w.points) || w.points < 1) throw new Error(`${keyPrefix}: points must be an integer ≥ 1`);
  if (!Number.isInteger(w.duration) || w.duration < 1) throw new Error(`${keyPrefix}: duration must be whole seconds ≥ 1`);
  return redis
    ? // rejectIfRedisNotReady: a disconnected client fails at once instead of queueing commands.
      new RateLimiterRedis({ storeClient: redis, keyPrefix, points: w.points, duration: w.duration, rejectIfRedisNotReady: true })
    : new RateLimiterMemory({ keyPrefix, points: w.points, duration: w.duration });
}

/**
 * A Redis connection suited to the limiter: no offline queue and one retry per command, so a
 * dead server surfaces as an error within the store timeout instead of requests piling up.
 */
export function limiterRedis(url: string): Redis {
  const r = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  r.on('error', () => {}); // reported per request as 503; reconnects on its own
  return r;
}

/** Resolves once a limiter connection is ready (or rejects after `ms`). */
export async function redisReady(r: Redis, ms = 5000): Promise<void> {
  if (r.status === 'ready') return;
  await withStoreTimeout(new Promise<void>((res) => r.once('ready', () => res())), ms);
}

export function createLoginLimiter(opts: LoginLimiterOptions): LoginLimiter {
  const prefix = opts.prefix ?? 'rl:login';
  const timeoutMs = opts.storeTimeoutMs ?? 1000;
  const d = opts.delay;
  if (d.afterFailures < 0 || d.baseMs < 0 || d.maxMs < d.baseMs) throw new Error('delay: need afterFailures ≥ 0 and 0 ≤ baseMs ≤ maxMs');
  const limits = {
    ip: makeLimiter(opts.redis, `${prefix}:ip`, opts.perIp),
    acct: makeLimiter(opts.redis, `${prefix}:acct`, opts.perAccount),
    ipacct: makeLimiter(opts.redis, `${prefix}:ipacct`, opts.perIpAccount),
  };
  // Consecutive confirmed failures per IP+account (never refuses; only read for the delay).
  const streak = makeLimiter(opts.redis, `${prefix}:streak`, { points: Number.MAX_SAFE_INTEGER, duration: opts.perIpAccount.duration });
  const names = ['ip', 'acct', 'ipacct'] as const;
  const keysOf = keyHasher(opts.hashKey);
  const call = <T>(p: Promise<T>) => withStoreTimeout(p, timeoutMs);

  /** Give one point back; a window that lapsed meanwhile must not go negative (a free extra try). */
  const refund = async (name: (typeof names)[number], key: string) => {
    const res = await call(limits[name].reward(key, 1));
    if (res.consumedPoints < 0) await call(limits[name].delete(key));
  };
  const storeCall = async (f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      throw limiterUnavailable(e);
    }
  };

  return {
    async beforeAttempt(ip, identifier) {
      const keys = keysOf(ip, identifier);
      const failures = call(streak.get(keys.ipacct));
      // It may fail (store timeout) while the limits are awaited: mark it handled now; awaiting
      // it below still throws.
      failures.catch(() => {});
      const results = await Promise.allSettled(names.map((n) => call(limits[n].consume(keys[n], 1))));
      const down = results.find((r) => r.status === 'rejected' && !(r.reason instanceof RateLimiterRes));
      // Points consumed before the store failed stay consumed: erring towards fewer attempts.
      if (down) {
        failures.catch(() => {});
        throw limiterUnavailable((down as PromiseRejectedResult).reason);
      }
      const refused = names.filter((_, i) => results[i].status === 'rejected');
      if (refused.length) {
        // The refused attempt never happens: give its points back everywhere (best effort).
        await Promise.allSettled(names.map((n) => refund(n, keys[n])));
        const wait = Math.max(...refused.map((n) => ((results[names.indexOf(n)] as PromiseRejectedResult).reason as RateLimiterRes).msBeforeNext));
        failures.catch(() => {});
        throw rateLimited(wait, refused.join(','));
      }
      let prior: RateLimiterRes | null;
      try {
        prior = await failures;
      } catch (e) {
        throw limiterUnavailable(e);
      }
      return { delayMs: progressiveDelay(prior?.consumedPoints ?? 0, d) };
    },
    async onFailure(ip, identifier) {
      // The limits were counted at reservation, so a crash between the check and here cannot
      // un-count a guess; only the delay streak is extended.
      const keys = keysOf(ip, identifier);
      await storeCall(() => call(streak.penalty(keys.ipacct, 1)));
    },
    async onSuccess(ip, identifier) {
      const keys = keysOf(ip, identifier);
      await storeCall(() =>
        Promise.all([
          refund('ip', keys.ip),
          refund('acct', keys.acct),
          call(limits.ipacct.delete(keys.ipacct)),
          call(streak.delete(keys.ipacct)),
        ]),
      );
    },
    async release(ip, identifier) {
      const keys = keysOf(ip, identifier);
      await storeCall(() => Promise.all(names.map((n) => refund(n, keys[n]))));
    },
    async close() {
      const r = opts.redis;
      if (!r || r.status === 'end') return;
      // quit() waits for pending replies; a connection that is not up has none worth waiting for.
      if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r.disconnect();
    },
  };
}

/** Settings as the lead will add them to src/config/config.ts; read with defaults until then. */
export const LIMIT_DEFAULTS = {
  RATE_LIMIT_IP_FAILURES: 100,
  RATE_LIMIT_IP_WINDOW_SECONDS: 900,
  RATE_LIMIT_ACCOUNT_FAILURES: 50,
  RATE_LIMIT_ACCOUNT_WINDOW_SECONDS: 900,
  RATE_LIMIT_IP_ACCOUNT_FAILURES: 10,
  RATE_LIMIT_IP_ACCOUNT_WINDOW_SECONDS: 900,
  RATE_LIMIT_DELAY_AFTER_FAILURES: 3,
  RATE_LIMIT_DELAY_BASE_MS: 250,
  RATE_LIMIT_DELAY_MAX_MS: 8000,
  RATE_LIMIT_FLOW_STARTS_PER_MINUTE: 60,
  RATE_LIMIT_STORE_TIMEOUT_MS: 1000,
} as const;

export type LimitSettings = { -readonly [K in keyof typeof LIMIT_DEFAULTS]: number };

/** The limit settings from a loaded config (keys it lacks take their defaults). */
export function limitSettings(config: object): LimitSettings {
  const c = config as Record<string, unknown>;
  const out = {} as LimitSettings;
  for (const [k, def] of Object.entries(LIMIT_DEFAULTS) as [keyof LimitSettings, number][]) {
    const v = c[k];
    out[k] = typeof v === 'number' && Number.isFinite(v) ? v : def;
  }
  return out;
}

/** createLoginLimiter options from settings. */
export function loginLimiterOptions(s: LimitSettings): Omit<LoginLimiterOptions, 'redis' | 'hashKey'> {
  return {
    perIp: { points: s.RATE_LIMIT_IP_FAILURES, duration: s.RATE_LIMIT_IP_WINDOW_SECONDS },
    perAccount: { points: s.RATE_LIMIT_ACCOUNT_FAILURES, duration: s.RATE_LIMIT_ACCOUNT_WINDOW_SECONDS },
    perIpAccount: { points: s.RATE_LIMIT_IP_ACCOUNT_FAILURES, duration: s.RATE_LIMIT_IP_ACCOUNT_WINDOW_SECONDS },
    delay: { afterFailures: s.RATE_LIMIT_DELAY_AFTER_FAILURES, baseMs: s.RATE_LIMIT_DELAY_BASE_MS, maxMs: s.RATE_LIMIT_DELAY_MAX_MS },
    storeTimeoutMs: s.RATE_LIMIT_STORE_TIMEOUT_MS,
  };
}
