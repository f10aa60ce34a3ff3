import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

/**
 * Worker heartbeats: readiness asks "is a worker consuming this queue now?", not "is some Redis
 * connection named like a worker?". BullMQ's getWorkers() reads CLIENT LIST, which keeps
 * counting a frozen process (SIGSTOP, a blocked event loop) and a host that vanished without
 * closing its sockets (Redis' default `timeout 0` keeps those connections until TCP keepalive
 * gives up, minutes later), and counts a placeholder as one worker where CLIENT is disabled.
 *
 * Each running, unpaused worker writes its id into a sorted set scored with an expiry on
 * Redis' own clock (TIME inside the script: API and worker clocks may differ). A worker that
 * stops beating drops out after `ttl`; a worker that closes removes itself at once.
 */
export const heartbeatKey = (queue: string, prefix = 'bull') => `threshold:workers:${prefix}:${queue}`;

/** Default beat; a silent worker is gone after HEARTBEAT_TTL_FACTOR beats (6 s). */
export const HEARTBEAT_INTERVAL_MS = 2000;
export const HEARTBEAT_TTL_FACTOR = 3;

const BEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now`;

const COUNT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

/** Workers that beat within their ttl, by Redis' clock. */
export async function liveWorkers(redis: Redis, queue: string, prefix?: string): Promise<number> {
  return Number(await redis.eval(COUNT, 1, heartbeatKey(queue, prefix)));
}

export interface Heartbeat {
  id: string;
  /** Beat now (or withdraw when not consuming); resolves when Redis has it. */
  beat(): Promise<void>;
  /** Stop beating and withdraw at once. */
  stop(): Promise<void>;
}

export function startHeartbeat(o: {
  redis: Redis;
  queue: string;
  prefix?: string;
  intervalMs?: number;
  /** False while the worker is paused, closing or not yet running: then it withdraws. */
  consuming: () => boolean;
  onError?: (err: unknown) => void;
}): Heartbeat {
  const interval = o.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const ttl = interval * HEARTBEAT_TTL_FACTOR;
  const key = heartbeatKey(o.queue, o.prefix);
  const id = `${hostname()}/${process.pid}/${randomUUID()}`;
  let stopped = false;
  const beat = async () => {
    if (stopped) return;
    if (o.consuming()) await o.redis.eval(BEAT, 1, key, id, ttl);
    else await o.redis.zrem(key, id);
  };
  // Report the first failure of a run, not one per beat while Redis is away.
  let failing = false;
  const tick = () =>
    beat().then(
      () => void (failing = false),
      (e) => {
        if (!failing) o.onError?.(e);
        failing = true;
      },
    );
  const timer = setInterval(() => void tick(), interval);
  timer.unref();
  return {
    id,
    beat,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await o.redis.zrem(key, id).catch(() => {});
    },
  };
}
