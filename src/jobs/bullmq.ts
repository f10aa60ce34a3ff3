import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { liveWorkers } from './heartbeat.ts';
import { assertJobId, JobTimeoutError, withTimeout, type Jobs } from './jobs.ts';

export const redisConnection = (url: string) => new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: false });

/** Producer side of BullMQ: queues and their event streams, created lazily per queue name. */
export function createBullJobs(redisUrl: string, opts: { prefix?: string } = {}): Jobs {
  const conn = redisConnection(redisUrl);
  conn.on('error', () => {});
  const queues = new Map<string, { q: Queue; ev: QueueEvents; ready: Promise<unknown> }>();
  const get = (name: string) => {
    let e = queues.get(name);
    if (!e) {
      const q = new Queue(name, { connection: conn, prefix: opts.prefix });
      const evConn = redisConnection(redisUrl);
      evConn.on('error', () => {});
      const ev = new QueueEvents(name, { connection: evConn, prefix: opts.prefix });
      e = { q, ev, ready: ev.waitUntilReady() };
      queues.set(name, e);
    }
    return e;
  };
  return {
    async request<R>(queue: string, name: string, payload: unknown, o: { jobId: string; timeoutMs: number }) {
      const { q, ev, ready } = get(queue);
      const work = (async () => {
        await ready;
        const job = await q.add(name, payload, {
          jobId: assertJobId(o.jobId),
          attempts: 1,
          removeOnComplete: { age: 600 },
          removeOnFail: { age: 3600 },
        });
        return (await job.waitUntilFinished(ev, o.timeoutMs)) as R;
      })();
      work.catch(() => {});
      return withTimeout(work, o.timeoutMs, () => new JobTimeoutError(queue, o.timeoutMs));
    },
    async enqueue(queue, name, payload, o) {
      const { q } = get(queue);
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
    async close() {
      for (const { q, ev } of queues.values()) {
        await ev.close().catch(() => {});
        await q.close().catch(() => {});
      }
      conn.disconnect();
    },
  };
}
