import { randomUUID } from 'node:crypto';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { Context, MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { isAppError, type AppError } from '../../errors.ts';
import { parseCidrs } from '../../risk/cidr.ts';
import { problem } from '../present.ts';
import { clientIp } from './client.ts';
import {
  keyHasher,
  limiterUnavailable,
  makeLimiter,
  rateLimited,
  withStoreTimeout,
  type LoginLimiter,
} from '../../security/limits.ts';

export type IpOf = (c: Context) => string;

/**
 * The client IP as `clientContext` resolved it, or resolved here (same rule: X-Forwarded-For
 * only from trusted proxies) when the middleware runs before it. Stops spoofed per-IP budgets.
 */
export function ipGetter(trustedProxies: string): IpOf {
  const trusted = parseCidrs(trustedProxies);
  return (c) => (c.get('clientIp' as never) as string | undefined) ?? clientIp(c, trusted);
}

/** Answers here rather than throwing: this may run in front of the app whose onError presents. */
const answer = (c: Context, err: AppError) => {
  c.header('Cache-Control', 'no-store');
  return problem(c, err, (c.get('requestId' as never) as string | undefined) ?? randomUUID());
};

export interface RateLimitOptions {
  /** Redis (shared by all API processes) or null for memory (embedded default). */
  redis: Redis | null;
  /** Store key prefix, one per limited endpoint. */
  prefix: string;
  /** Requests allowed per `duration` seconds per key. */
  points: number;
  duration: number;
  /** What is counted: usually `ipGetter(TRUSTED_PROXIES)`; IPv6 is counted per /64. */
  key: IpOf;
  hashKey?: Buffer | string;
  storeTimeoutMs?: number;
}

/**
 * Caps requests per client (e.g. flow creation on POST /auth/login): stops a client from
 * flooding the flows table or cycling fresh flows. 429 problem+json with Retry-After when spent;
 * 503 when the store is down (fail closed, like the login limiter).
 */
export function rateLimit(opts: RateLimitOptions): MiddlewareHandler {
  // Validated once, at creation.
  const limiter = makeLimiter(opts.redis, opts.prefix, { points: opts.points, duration: opts.duration });
  const hash = keyHasher(opts.hashKey);
  const timeoutMs = opts.storeTimeoutMs ?? 1000;
  return async (c, next) => {
    const key = hash(opts.key(c), '').ip;
    try {
      await withStoreTimeout(limiter.consume(key, 1), timeoutMs);
    } catch (e) {
      return answer(c, e instanceof RateLimiterRes ? rateLimited(e.msBeforeNext, opts.prefix) : limiterUnavailable(e));
    }
    await next();
  };
}

export interface GuardOptions {
  /** Defaults to a real timer; tests may observe the delays. */
  sleep?: (ms: number) => Promise<void>;
  /** A store error while settling an attempt (after the answer is known); the next attempt fails closed anyway. */
  onStoreError?: (err: unknown) => void;
  /** Bodies larger than this are left to the route (it answers 413). */
  maxBodyBytes?: number;
}

/** Reads at most `max` bytes of a copy of the body; null if larger or not JSON. */
async function peekJson(c: Context, max: number): Promise<unknown> {
  if (!/^application\/(.+\+)?json\b/i.test(c.req.header('content-type') ?? '')) return null;
  const body = c.req.raw.clone().body;
  if (!body) return null;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  try {
    // Decode exactly as the route's c.req.text() does (TextDecoder drops a UTF-8 BOM): a body the
    // route accepts must never look unparseable here, or the attempt would skip the limiter.
    return JSON.parse(new TextDecoder().decode(Buffer.concat(chunks)));
  } catch {
    return null;
  }
}

const isPasswordEvent = (b: unknown): b is { type: 'password'; identifier: string; password: string } => {
  const o = b as { type?: unknown; identifier?: unknown; password?: unknown } | null;
  return !!o && typeof o === 'object' && o.type === 'password' && typeof o.identifier === 'string' && o.identifier.length > 0 && typeof o.password === 'string';
};

/**
 * What the login route tells the limiter about a password event, as `c.set('loginOutcome', …)`:
 * `passed` (the password was right), `failed` (wrong, or the account is locked: the same to the
 * client). Unset when no password was checked (another event, a conflict, a dependency down): the
 * attempt's points are given back. The limiter never reads the answer's body.
 */
export type LoginAttemptOutcome = 'passed' | 'failed';

/**
 * Mount on `POST /auth/login/:id`: stops online password guessing (per IP, per account, per
 * IP+account, progressive delay) in front of the durable Postgres lockout. Only `password` events
 * are limited; other events pass through untouched.
 *
 * The progressive delay is applied here, server-side, *before* the route runs: a slowed attempt
 * holds a timer and its socket, not a database connection, a flow lock or an argon2 slot.
 */
export function loginAttemptGuard(limiter: LoginLimiter, getIp: IpOf, opts: GuardOptions = {}): MiddlewareHandler {
  const sleep = opts.sleep ?? ((ms: number) => sleepMs(ms));
  const maxBody = opts.maxBodyBytes ?? 64 * 1024;
  const quietly = async (f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      opts.onStoreError?.(e);
    }
  };
  return async (c, next) => {
    if (c.req.method !== 'POST') return next();
    const event = await peekJson(c, maxBody);
    // Not a password attempt (or malformed: the route refuses it without checking a password).
    if (!isPasswordEvent(event)) return next();
    const ip = getIp(c);
    const id = event.identifier;
    let delayMs: number;
    try {
      ({ delayMs } = await limiter.beforeAttempt(ip, id));
    } catch (e) {
      if (isAppError(e)) return answer(c, e);
      throw e;
    }
    if (delayMs > 0) await sleep(delayMs);
    try {
      await next();
    } catch (e) {
      await quietly(() => limiter.release(ip, id));
      throw e;
    }
    const outcome = c.get('loginOutcome' as never) as LoginAttemptOutcome | undefined;
    if (outcome === 'failed') await quietly(() => limiter.onFailure(ip, id));
    else if (outcome === 'passed') await quietly(() => limiter.onSuccess(ip, id));
    else await quietly(() => limiter.release(ip, id));
  };
}
