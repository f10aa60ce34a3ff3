import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { announceCompletions, createBullJobs, redisConnection } from '../../src/jobs/bullmq.ts';
import { JobTimeoutError, type Jobs } from '../../src/jobs/jobs.ts';
import { TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

/** `request` learns results by the worker's pub/sub announcement, with a look at the job as a safety net. */
describe('BullMQ request/response (real Redis)', () => {
  const queue = uniqueName('jobs');
  let jobs: Jobs;
  let worker: Worker;
  let announcer: { close(): Promise<void> } | null = null;
  const ran: string[] = [];
  const conn = redisConnection(TEST_REDIS_URL);

  beforeAll(async () => {
    jobs = createBullJobs(TEST_REDIS_URL);
    worker = new Worker(
      queue,
      async (job) => {
        ran.push(job.id!);
        if (job.name === 'boom') throw new Error('processor refused');
        return { echo: job.data, at: job.id };
      },
      { connection: conn, concurrency: 4 },
    );
    await worker.waitUntilReady();
  });
  afterAll(async () => {
    await worker.close();
    await announcer?.close();
    await jobs.close();
    conn.disconnect();
  });

  it('answers with the result as soon as the worker announces it', async () => {
    announcer = announceCompletions(worker, { redisUrl: TEST_REDIS_URL, queueName: queue });
    const t0 = performance.now();
    const r = await jobs.request<{ echo: unknown }>(queue, 'echo', { n: 1 }, { jobId: 'job-a', timeoutMs: 5000 });
    expect(r).toEqual({ echo: { n: 1 }, at: 'job-a' });
    // Well before the deadline's safety look (at 4850 ms): the announcement delivered it.
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('a final failure rejects at once with the worker reason', async () => {
    await expect(jobs.request(queue, 'boom', {}, { jobId: 'job-b', timeoutMs: 5000 })).rejects.toThrow(/processor refused/);
  });

  it('the same job id again (a restored flow scoring twice) answers from the finished job, without running it again', async () => {
    const before = ran.filter((x) => x === 'job-a').length;
    const t0 = performance.now();
    const r = await jobs.request(queue, 'echo', { n: 1 }, { jobId: 'job-a', timeoutMs: 5000 });
    expect(r).toEqual({ echo: { n: 1 }, at: 'job-a' });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(ran.filter((x) => x === 'job-a').length).toBe(before);
  });

  it('two requests waiting on one job id at once both get its result from the one announcement', async () => {
    const before = ran.length;
    const t0 = performance.now();
    const [a, b] = await Promise.all([
      jobs.request(queue, 'echo', { n: 9 }, { jobId: 'job-twice', timeoutMs: 5000 }),
      jobs.request(queue, 'echo', { n: 9 }, { jobId: 'job-twice', timeoutMs: 5000 }),
    ]);
    expect(a).toEqual({ echo: { n: 9 }, at: 'job-twice' });
    expect(b).toEqual(a);
    expect(ran.length - before).toBe(1);
    // By the announcement, not by the look just before the deadline (4 850 ms).
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('without announcements (a lost message), the look before the deadline still finds the result', async () => {
    await announcer!.close();
    announcer = null;
    worker.removeAllListeners('completed');
    worker.removeAllListeners('failed');
    const r = await jobs.request(queue, 'echo', { n: 2 }, { jobId: 'job-c', timeoutMs: 1500 });
    expect(r).toEqual({ echo: { n: 2 }, at: 'job-c' });
  });

  it('no worker answering within the deadline is a JobTimeoutError (callers fail closed)', async () => {
    const idle = uniqueName('jobs-no-worker');
    await expect(jobs.request(idle, 'echo', {}, { jobId: 'job-d', timeoutMs: 600 })).rejects.toBeInstanceOf(JobTimeoutError);
  });
});
