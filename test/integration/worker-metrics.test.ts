import type { Server } from 'node:http';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { redisConnection } from '../../src/jobs/bullmq.ts';
import { observeWorker, registry } from '../../src/metrics/metrics.ts';
import { startHealthServer } from '../../workers/health-server.ts';
import { assertTestRedis, TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

/**
 * The worker's own metrics (issue 11 §6): served on its probe port (WORKER_HEALTH_PORT) behind
 * METRICS_TOKEN, not pushed through Redis. Job processing times come from a real BullMQ worker.
 */
describe('worker /metrics', () => {
  const closers: (() => Promise<unknown> | void)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('counts jobs a real BullMQ worker processed, by outcome, for the token holder only', async () => {
    await assertTestRedis();
    const name = uniqueName('metrics');
    const conn = redisConnection(TEST_REDIS_URL);
    conn.on('error', () => {});
    const queue = new Queue(name, { connection: conn });
    const events = new QueueEvents(name, { connection: redisConnection(TEST_REDIS_URL) });
    await events.waitUntilReady();
    const worker = new Worker(name, async (job) => {
      if (job.data.fail) throw new Error('refused');
      return { ok: true };
    }, { connection: redisConnection(TEST_REDIS_URL) });
    observeWorker(worker, name);
    closers.push(() => conn.disconnect(), () => queue.close(), () => events.close(), () => worker.close());

    const ok = await queue.add('x', { fail: false }, { jobId: 'ok-1' });
    const bad = await queue.add('x', { fail: true }, { jobId: 'bad-1', attempts: 1 });
    await ok.waitUntilFinished(events, 10_000);
    await expect(bad.waitUntilFinished(events, 10_000)).rejects.toThrow('refused');

    const token = 'w'.repeat(40);
    const server: Server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      checks: {},
      metrics: { token, render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }) },
    });
    closers.push(() => void server.close());
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    const r = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    const text = await r.text();
    // The 'failed' event may trail waitUntilFinished by a tick: read until both are in.
    const count = (t: string, outcome: string) => Number(new RegExp(`threshold_worker_job_duration_seconds_count\\{queue="${name}",outcome="${outcome}"\\} (\\d+)`).exec(t)?.[1] ?? 0);
    expect(count(text, 'ok')).toBe(1);
    await expect.poll(async () => count(await registry.metrics(), 'failed'), { timeout: 5000 }).toBe(1);

    const bare = await startHealthServer({ port: 0, host: '127.0.0.1', checks: {} });
    closers.push(() => void bare.close());
    expect((await fetch(`http://127.0.0.1:${(bare.address() as { port: number }).port}/metrics`)).status).toBe(404);
  });
});
