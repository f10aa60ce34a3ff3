import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';

/**
 * Revocation that reaches access tokens.
 *
 * An access token is a JWT that stays cryptographically valid until its `exp`, whatever happens
 * to the session (`sid`) it was issued for. Threshold's own checks close that gap:
 *
 *  - every revocation (logout, admin revoke, lock, step-up rotation, refresh-family reuse) calls
 *    `revoke(sid, until)`, which writes a deny-list entry in Redis (`threshold:revoked:<sid>`)
 *    that lives until the last moment the session or any of its tokens could still be accepted,
 *    and publishes the sid on `threshold:revocations` so every API process drops its cached
 *    verifications of that session at once;
 *  - `isRevoked(sid)` is one Redis GET. A miss means "not revoked" only when Redis answered; when
 *    Redis is down or slow the answer comes from Postgres, whose `sessions.revoked_at` is the
 *    durable truth (the deny-list only makes it fast). A session row that no longer exists is
 *    treated as revoked (fail closed).
 *  - the embedded default (no Redis) keeps the deny-list in memory and broadcasts with an
 *    in-process emitter; there is only one API process then.
 *
 * Services that verify our JWTs themselves (JWKS, no call to Threshold) cannot see a revocation
 * before `exp` unless they call `GET /auth/verify` (or read the deny-list key themselves). Keep
 * access tokens short-lived (ACCESS_TOKEN_TTL_SECONDS, 600 s by default) and put sensitive routes
 * behind `/auth/verify`. See docs/revocation.md.
 */
export interface RevocationList {
  /**
   * Deny `sid` until `untilEpochMs` (domain clock) in every process. Never throws for a Redis
   * failure: the durable record is the caller's `sessions.revoke` in Postgres, and this process's
   * caches are cleared regardless.
   */
  revoke(sid: string, untilEpochMs: number): Promise<void>;
  /** Stops use of a revoked or locked session's still-unexpired access tokens and cached verifications. */
  isRevoked(sid: string): Promise<boolean>;
  /** Lift a deny-list entry (admin unlock of a locked session). Postgres stays the caller's job. */
  restore(sid: string): Promise<void>;
  /** Called once per revocation seen by this process (its own, or another process's via pub/sub). */
  onRevoked(cb: (sid: string) => void): () => void;
  /** How the last `isRevoked` was answered; for health checks and tests. */
  readonly lastSource: 'redis' | 'memory' | 'postgres' | null;
  /** Resolves once this process is subscribed to other processes' revocations. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export interface RevocationOptions {
  db: Queryable;
  /** The command connection (owned by the caller). A subscriber is duplicated from it. */
  redis?: Redis | null;
  clock: Clock;
  /** Key prefix, default `threshold:`. Keys: `<prefix>revoked:<sid>`, channel `<prefix>revocations`. */
  prefix?: string;
  /** How long a Redis GET may take before Postgres answers instead. Default 100 ms. */
  redisTimeoutMs?: number;
  /** After a Redis failure, ask Postgres directly for this long (no timeout paid per request). Default 1 s. */
  redisBackoffMs?: number;
  /**
   * The durable answer when Redis cannot give one. Default: the session row is gone or has
   * `revoked_at`. Override if locks live in another column.
   */
  durable?: (sid: string) => Promise<boolean>;
  onError?: (err: unknown, op: string) => void;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** sids are UUIDs; anything else is never a live session, and never reaches Redis or SQL. */
const validSid = (sid: string) => typeof sid === 'string' && UUID.test(sid);

class RedisUnavailable extends Error {}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new RedisUnavailable(`no answer within ${ms} ms`)), ms);
    t.unref?.();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

export function createRevocationList(o: RevocationOptions): RevocationList {
  const { db, clock } = o;
  const redis = o.redis ?? null;
  const prefix = o.prefix ?? 'threshold:';
  const channel = `${prefix}revocations`;
  const key = (sid: string) => `${prefix}revoked:${sid.toLowerCase()}`;
  const timeoutMs = o.redisTimeoutMs ?? 100;
  const backoffMs = o.redisBackoffMs ?? 1000;
  let redisSkipUntil = 0;
  const onError = o.onError ?? (() => {});
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  // Embedded default only: the deny-list of this (single) process. sid → until (epoch ms).
  const memory = new Map<string, number>();
  let lastSource: RevocationList['lastSource'] = null;
  let closed = false;

  const durable =
    o.durable ??
    (async (sid: string) => {
      const { rows } = await db.query<{ revoked: boolean }>('SELECT revoked_at IS NOT NULL AS revoked FROM sessions WHERE id = $1', [sid]);
      return rows.length === 0 || rows[0].revoked;
    });

  const emit = (sid: string) => {
    try {
      emitter.emit('revoked', sid);
    } catch (e) {
      onError(e, 'onRevoked');
    }
  };

  // Pub/sub needs a connection of its own: a subscribed connection cannot run GET/SET.
  let subscriber: Redis | null = null;
  let subscribed: Promise<void> = Promise.resolve();
  if (redis) {
    subscriber = redis.duplicate();
    subscriber.on('error', (e) => onError(e, 'subscribe'));
    subscriber.on('message', (ch: string, sid: string) => {
      if (ch === channel && validSid(sid)) emit(sid.toLowerCase());
    });
    subscribed = subscriber.subscribe(channel).then(
      () => {},
      (e) => onError(e, 'subscribe'),
    );
  }

  const pruneMemory = () => {
    const now = clock.now();
    for (const [sid, until] of memory) if (until <= now) memory.delete(sid);
  };

  return {
    get lastSource() {
      return lastSource;
    },

    async revoke(sid, untilEpochMs) {
      if (!validSid(sid)) return;
      sid = sid.toLowerCase();
      // Relative to the domain clock, not PXAT: the entry must outlive the session as Threshold
      // counts time, whatever the skew between this host and Redis (and with injected clocks).
      const ttl = Math.ceil(untilEpochMs - clock.now());
      if (redis) {
        try {
          if (ttl > 0) await within(redis.set(key(sid), '1', 'PX', ttl), Math.max(timeoutMs, 1000));
          await within(redis.publish(channel, sid), Math.max(timeoutMs, 1000));
        } catch (e) {
          // Other processes keep a cached verification until its TTL at worst; cache misses and
          // the Postgres fallback already see the revocation.
          onError(e, 'revoke');
        }
      } else if (ttl > 0) {
        if (memory.size > 10_000) pruneMemory();
        memory.set(sid, clock.now() + ttl);
      }
      // This process learns at once, without waiting for its own message to come back.
      emit(sid);
    },

    async isRevoked(sid) {
      if (!validSid(sid)) return true;
      sid = sid.toLowerCase();
      if (redis) {
        if (redis.status === 'ready' && clock.now() >= redisSkipUntil) {
          try {
            const v = await within(redis.get(key(sid)), timeoutMs);
            lastSource = 'redis';
            return v !== null;
          } catch (e) {
            redisSkipUntil = clock.now() + backoffMs;
            onError(e, 'isRevoked');
          }
        }
      } else {
        const until = memory.get(sid);
        if (until !== undefined) {
          if (until > clock.now()) {
            lastSource = 'memory';
            return true;
          }
          memory.delete(sid);
        }
      }
      // Redis did not answer (or there is none): a miss proves nothing, ask the durable truth.
      lastSource = 'postgres';
      return durable(sid);
    },

    async restore(sid) {
      if (!validSid(sid)) return;
      sid = sid.toLowerCase();
      memory.delete(sid);
      if (redis) await within(redis.del(key(sid)), Math.max(timeoutMs, 1000));
    },

    ready: () => subscribed,

    onRevoked(cb) {
      const h = (sid: string) => cb(sid);
      emitter.on('revoked', h);
      return () => emitter.off('revoked', h);
    },

    async close() {
      if (closed) return;
      closed = true;
      emitter.removeAllListeners();
      if (subscriber) {
        await subscriber.quit().catch(() => subscriber?.disconnect());
      }
    },
  };
}
