import { Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { liveWorkers } from './heartbeat.ts';
import { assertJobId, JobTimeoutError, withTimeout, type Jobs } from './jobs.ts';
import { timeJob } from '../metrics/metrics.ts';
import { startHeartbeat } from './heartbeat.ts';

export const redisConnection = (url: string) => new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: false });

/** Where a worker announces each finished job of a queue, for the API process waiting on it. */
const doneChannel = (prefix: string | undefined, queue: string) => `${prefix ?? 'bull'}:${queue}:threshold-done`;

interface DoneMessage {
  id: string;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * Worker side of `request`: publish every finished job (its result, or its final failure) on the
 * queue's done channel, so the waiting API process learns it with one pub/sub message instead of
 * reading BullMQ's event stream. A lost message costs only latency: `request` still looks at the
 * job once before its deadline fails it closed.
 */
export function announceCompletions(worker: Worker, o: { redisUrl: string; queueName: string; prefix?: string }): { close(): Promise<void> } {
  const pub = new Redis(o.redisUrl, { maxRetriesPerRequest: 1 });
  pub.on('error', () => {});
  const channel = doneChannel(o.prefix, o.queueName);
  const send = (m: DoneMessage) => void pub.publish(channel, JSON.stringify(m)).catch(() => {});
  worker.on('completed', (job, result) => job.id && send({ id: job.id, ok: true, result }));
  worker.on('failed', (job, err) => {
    if (job?.id && job.attemptsMade >= (job.opts.attempts ?? 1)) send({ id: job.id, ok: false, error: err.message });
  });
  return {
    async close() {
      await pub.quit().catch(() => pub.disconnect());
    },
  };
}

/**
 * What every consuming worker of ours runs beside BullMQ's Worker: completion announcements (the
 * API learns results by pub/sub) and a heartbeat (the API's readiness counts live workers).
 * `ready` resolves once it is connected and counted; `close` undoes all of it, then the worker.
 */
export function superviseWorker(
  worker: Worker,
  connection: Redis,
  o: { redisUrl: string; queueName: string; prefix?: string; heartbeatMs?: number; logger?: { warn(o: object, msg: string): void }; kind: string },
): { ready: Promise<void>; close(force?: boolean): Promise<void> } {
  const announcer = announceCompletions(worker, { redisUrl: o.redisUrl, queueName: o.queueName, prefix: o.prefix });
  const heartbeat = startHeartbeat({
    redis: connection,
    queue: o.queueName,
    prefix: o.prefix,
    intervalMs: o.heartbeatMs,
    consuming: () => worker.isRunning() && !worker.isPaused() && !worker.closing,
    onError: (err) => o.logger?.warn({ err, queue: o.queueName }, `${o.kind} worker heartbeat failed`),
  });
  const ready = worker.waitUntilReady().then(() => heartbeat.beat());
  ready.catch(() => {});
  return {
    ready,
    async close(force = false) {
      await heartbeat.stop();
      await worker.close(force);
      await announcer.close();
      connection.disconnect();
    },
  };
}

/** Producer side of BullMQ: queues created lazily per queue name; results come by pub/sub. */
export function createBullJobs(redisUrl: string, opts: { prefix?: string } = {}): Jobs {
  const conn = redisConnection(redisUrl);
  conn.on('error', () => {});
  const queues = new Map<string, Queue>();
  const get = (name: string) => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: conn, prefix: opts.prefix });
      queues.set(name, q);
    }
    return q;
  };
  // One subscriber connection per process, one channel per queue; waiters keyed by queue and job id.
  let sub: Redis | null = null;
  const subscribed = new Map<string, Promise<unknown>>();
  const waiting = new Map<string, Set<(m: DoneMessage) => void>>();
  const listen = (queue: string) => {
    let p = subscribed.get(queue);
    if (!p) {
      if (!sub) {
        sub = new Redis(redisUrl, { maxRetriesPerRequest: null });
        sub.on('error', () => {});
        sub.on('message', (channel: string, text: string) => {
          let m: DoneMessage;
          try {
            m = JSON.parse(text) as DoneMessage;
          } catch {
            return;
          }
          const q = channel.slice(`${opts.prefix ?? 'bull'}:`.length, -':threshold-done'.length);
          for (const settle of waiting.get(`${q}/${m.id}`) ?? []) settle(m);
        });
      }
      p = sub.subscribe(doneChannel(opts.prefix, queue));
      p.catch(() => subscribed.delete(queue));
      subscribed.set(queue, p);
    }
    return p;
  };
  /** A finished job's outcome read from its hash: for a job that finished before we listened. */
  const outcomeOf = async (queue: string, id: string): Promise<DoneMessage | null> => {
    const [finishedOn, returnvalue, failedReason] = await conn.hmget(`${opts.prefix ?? 'bull'}:${queue}:${id}`, 'finishedOn', 'returnvalue', 'failedReason');
    if (!finishedOn) return null;
    if (failedReason) return { id, ok: false, error: failedReason };
    return { id, ok: true, result: returnvalue === null ? null : JSON.parse(returnvalue) };
  };
  return {
    async request<R>(queue: string, name: string, payload: unknown, o: { jobId: string; timeoutMs: number }) {
      const q = get(queue);
      const jobId = assertJobId(o.jobId);
      const key = `${queue}/${jobId}`;
      // Several requests may wait on one job id (the same flow scored twice): each has its own waiter.
      let settle!: (m: DoneMessage) => void;
      const done = new Promise<DoneMessage>((resolve) => (settle = resolve));
      let waiters = waiting.get(key);
      if (!waiters) waiting.set(key, (waiters = new Set()));
      waiters.add(settle);
      const startedAt = performance.now();
      const work = (async () => {
        await listen(queue);
        // Sent back to back: the hash read sees a job this id already finished (the same flow
        // scored twice), the add creates it otherwise; either way one round trip.
        const [earlier] = await Promise.all([
          outcomeOf(queue, jobId),
          q.add(name, payload, { jobId, attempts: 1, removeOnComplete: { age: 600 }, removeOnFail: { age: 3600 } }),
        ]);
        if (earlier) settle(earlier);
        // Missed messages (a subscriber reconnect) are caught by one look shortly before the deadline.
        const look = setTimeout(
          () => void outcomeOf(queue, jobId).then((m) => m && settle(m), () => {}),
          Math.max(0, o.timeoutMs - 150 - (performance.now() - startedAt)),
        );
        try {
          const m = await done;
          if (!m.ok) throw new Error(m.error ?? 'job failed');
          return m.result as R;
        } finally {
          clearTimeout(look);
        }
      })();
      work.catch(() => {});
      try {
        return await timeJob(queue, () => withTimeout(work, o.timeoutMs, () => new JobTimeoutError(queue, o.timeoutMs)));
      } finally {
        waiters.delete(settle);
        if (waiters.size === 0 && waiting.get(key) === waiters) waiting.delete(key);
      }
    },
    async enqueue(queue, name, payload, o) {
      const q = get(queue);
      await q.add(name, payload, {
        jobId: assertJobId(o.jobId),
        attempts: o.attempts ?? 5,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: 24 * 3600 },
        removeOnFail: { age: 7 * 24 * 3600 },
      });
    },
    async ping() {
      await conn.ping();
    },
    // Heartbeats, not Queue.getWorkers(): CLIENT LIST still lists a frozen or vanished worker
    // (see heartbeat.ts), so readiness said ok while every login waited out the deadline.
    async workers(queue) {
      return liveWorkers(conn, queue, opts.prefix);
    },
    counts: (queue) => get(queue).getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
    async close() {
      for (const q of queues.values()) await q.close().catch(() => {});
      (sub as Redis | null)?.disconnect();
      conn.disconnect();
    },
  };
}
