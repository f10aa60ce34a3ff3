import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBullJobs, redisConnection } from '../../src/jobs/bullmq.ts';
import type { Jobs } from '../../src/jobs/jobs.ts';
import { openGeo } from '../../src/risk/geo.ts';
import type { RiskAssessment } from '../../src/risk/policy.ts';
import { createRiskScorer } from '../../src/risk/scorer.ts';
import { RISK_JOB, riskJobId } from '../../workers/queues.ts';
import { startRiskWorker } from '../../workers/risk-score.worker.ts';
import { createTestDb, TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

const T = Date.UTC(2026, 0, 10, 12);
const queueName = uniqueName('risk');

let t: Awaited<ReturnType<typeof createTestDb>>;
let worker: ReturnType<typeof startRiskWorker>;
let jobs: Jobs;
let inspect: Queue;
let inspectConn: ReturnType<typeof redisConnection>;

beforeAll(async () => {
  t = await createTestDb();
  const scorer = createRiskScorer({
    db: t.db,
    geo: await openGeo(),
    config: { RISK_DENY_CIDRS: '', RISK_MAX_TRAVEL_KMH: 900, RISK_FAILURE_WINDOW_SECONDS: 3600 },
  });
  worker = startRiskWorker({ redisUrl: TEST_REDIS_URL, queueName, scorer, concurrency: 2 });
  await worker.worker.waitUntilReady();
  jobs = createBullJobs(TEST_REDIS_URL);
  inspectConn = redisConnection(TEST_REDIS_URL);
  inspectConn.on('error', () => {});
  inspect = new Queue(queueName, { connection: inspectConn });
});
afterAll(async () => {
  await jobs?.close();
  await worker?.close();
  if (inspect) {
    await inspect.obliterate({ force: true }).catch(() => {});
    await inspect.close();
    inspectConn.disconnect();
  }
  await t?.drop();
});

async function waitForState(jobId: string, states: string[], ms = 5000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await inspect.getJobState(jobId);
    if (states.includes(s) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('risk-score worker on BullMQ', () => {
  it('scores a job and returns the assessment to the requester', async () => {
    const identityId = randomUUID();
    await t.db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [identityId, `${identityId}@example.test`, new Date(T)]);
    const jobId = riskJobId(`flow-${randomUUID()}`, 0);
    const a = await jobs.request<RiskAssessment>(queueName, RISK_JOB, { identityId, deviceId: 'laptop', ip: '81.2.69.142', at: T, userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15' }, { jobId, timeoutMs: 5000 });
    expect(a).toMatchObject({ decision: 'allow', reasons: ['NEW_DEVICE'], score: 10, policyVersion: 'default-3', country: 'GB' });
    expect(a.signals.details).toMatchObject({ uaFamily: 'Safari/macOS', asn: 20712, connectionType: 'residential' });
    expect(a.signals.details.hasHistory).toBe(false);
  });

  it('fails a bad payload permanently, without retrying', async () => {
    const jobId = riskJobId(`flow-${randomUUID()}`, 0);
    await jobs.enqueue(queueName, RISK_JOB, { identityId: 'not-a-uuid', deviceId: null, ip: 'nope', at: T }, { jobId, attempts: 5 });
    expect(await waitForState(jobId, ['failed'])).toBe('failed');
    const job = await inspect.getJob(jobId);
    expect(job?.attemptsMade).toBe(1);
    expect(job?.failedReason).toMatch(/invalid risk\.score payload/);
  });

  it('rejects the requester of a bad payload', async () => {
    const jobId = riskJobId(`flow-${randomUUID()}`, 1);
    await expect(
      jobs.request(queueName, RISK_JOB, { identityId: null, deviceId: null, ip: '1.1.1.1' }, { jobId, timeoutMs: 5000 }),
    ).rejects.toThrow(/invalid risk\.score payload/);
  });
});
