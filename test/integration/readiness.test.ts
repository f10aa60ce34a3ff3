import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { redisConnection } from '../../src/jobs/bullmq.ts';
import { HEARTBEAT_TTL_FACTOR } from '../../src/jobs/heartbeat.ts';
import { TEST_REDIS_URL } from '../helpers/db.ts';
import { ROOT, spawnTs } from '../helpers/processes.ts';
import { Client, startTestServer, type TestServer } from '../helpers/server.ts';

/** The child's beat; a silent worker drops out after HEARTBEAT_TTL_FACTOR beats. */
const BEAT_MS = 250;
const BOUND_MS = BEAT_MS * HEARTBEAT_TTL_FACTOR;

/** A risk worker in its own process, so it can be frozen (SIGSTOP) and killed (SIGKILL) for real. */
async function childWorker(t: TestServer): Promise<ChildProcess> {
  const mod = (p: string) => new URL(p, `file://${ROOT}/`).href;
  const p = spawnTs({
    eval: `
      const { startRiskWorker } = await import(${JSON.stringify(mod('workers/risk-score.worker.ts'))});
      const w = startRiskWorker({ redisUrl: ${JSON.stringify(TEST_REDIS_URL)}, queueName: ${JSON.stringify(t.queue)}, heartbeatMs: ${BEAT_MS},
        scorer: { score: async () => { throw new Error('unused'); } } });
      await w.ready;
      process.stdout.write('ready\\n');
    `,
  });
  await p.waitFor(/ready/, 30_000);
  return p.child;
}

describe('liveness and readiness', () => {
  let t: TestServer;
  let c: Client;
  let inspect: Queue;
  let conn: ReturnType<typeof redisConnection>;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    t = await startTestServer();
    c = new Client(t.url);
    conn = redisConnection(TEST_REDIS_URL);
    conn.on('error', () => {});
    inspect = new Queue(t.queue, { connection: conn });
  });
  afterAll(async () => {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await inspect?.close();
    conn?.disconnect();
    await t?.close();
  });

  it('is ready with a worker, not ready (503, naming the check) without one, and live throughout', async () => {
    const ready = await c.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok', checks: { db: 'ok', redis: 'ok', queue: 'ok' } });
    expect((await c.get('/health')).body).toEqual(ready.body);

    await t.stopWorker();
    const sick = await c.get('/health/ready');
    expect(sick.status).toBe(503);
    expect(sick.body).toEqual({ status: 'degraded', checks: { db: 'ok', redis: 'ok', queue: 'down' } });
    expect((await c.get('/health')).status).toBe(503);
    const live = await c.get('/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: 'ok' });

    await t.startWorker();
    expect((await c.get('/health/ready')).status).toBe(200);
  });

  it(`turns not ready within ${BOUND_MS} ms of a worker process freezing or dying without closing`, async () => {
    await t.stopWorker();
    const child = await childWorker(t);
    children.push(child);
    expect((await c.get('/health/ready')).status).toBe(200);

    // Frozen: its sockets stay open, so BullMQ's CLIENT LIST answer still counts it — the old
    // check said ok here. Its heartbeat stops, and readiness follows within the bound.
    child.kill('SIGSTOP');
    const frozeAt = Date.now();
    await vi.waitFor(async () => expect((await c.get('/health/ready')).status).toBe(503), { timeout: 10_000, interval: 50 });
    const frozenFor = Date.now() - frozeAt;
    expect(frozenFor).toBeLessThan(BOUND_MS + 1500); // the ttl plus scheduling slack on a loaded machine
    expect((await inspect.getWorkers()).length).toBe(1);

    // Thawed, it beats again and counts again.
    child.kill('SIGCONT');
    await vi.waitFor(async () => expect((await c.get('/health/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });

    // Killed without closing: no withdrawal, the entry simply expires.
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited;
    await vi.waitFor(async () => expect((await c.get('/health/ready')).body.checks.queue).toBe('down'), { timeout: 10_000, interval: 50 });
    expect(Date.now() - killedAt).toBeLessThan(BOUND_MS + 1500);
    expect((await c.get('/health/live')).status).toBe(200);
    await t.startWorker();
  }, 60_000);
});
