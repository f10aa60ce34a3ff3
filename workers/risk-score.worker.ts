import { UnrecoverableError, Worker } from 'bullmq';
import { z } from 'zod';
import { redisConnection, superviseWorker } from '../src/jobs/bullmq.ts';
import type { Logger } from '../src/logger.ts';
import type { RiskAssessment } from '../src/risk/policy.ts';
import type { RiskScorer } from '../src/risk/scorer.ts';
import { RISK_JOB, RiskJobSchema } from './queues.ts';

/**
 * Validate a `risk.score` payload and score it. A payload that can never succeed fails with
 * UnrecoverableError so BullMQ does not retry it; scoring errors (DB down) stay retryable.
 * Scoring only reads, so running the same job twice is harmless.
 */
export function riskProcessor(scorer: RiskScorer): (name: string, payload: unknown, jobId: string) => Promise<RiskAssessment> {
  return async (name, payload) => {
    if (name !== RISK_JOB) throw new UnrecoverableError(`unknown job ${name} on the risk queue`);
    const parsed = RiskJobSchema.safeParse(payload);
    if (!parsed.success) throw new UnrecoverableError(`invalid ${RISK_JOB} payload: ${z.prettifyError(parsed.error)}`);
    return scorer.score(parsed.data);
  };
}

export function startRiskWorker(opts: {
  redisUrl: string;
  queueName: string;
  scorer: RiskScorer;
  prefix?: string;
  concurrency?: number;
  /** Where worker and job failures go; the payload (an IP) is never logged. */
  logger?: Pick<Logger, 'error' | 'warn'>;
  /** How often the worker tells readiness it is consuming (src/jobs/heartbeat.ts). */
  heartbeatMs?: number;
}): { worker: Worker; ready: Promise<void>; close(): Promise<void> } {
  const connection = redisConnection(opts.redisUrl);
  // Connection errors surface through the worker's 'error' event; ioredis reconnects.
  connection.on('error', () => {});
  const run = riskProcessor(opts.scorer);
  const worker = new Worker(opts.queueName, async (job) => run(job.name, job.data, job.id ?? ''), {
    connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 8,
  });
  worker.on('error', (err) => opts.logger?.error({ err, queue: opts.queueName }, 'risk worker error'));
  worker.on('failed', (job, err) =>
    opts.logger?.warn({ jobId: job?.id, name: job?.name, reason: err.message }, 'risk job failed'),
  );
  // Results reach the waiting API by pub/sub; readiness counts this worker by its heartbeat.
  const supervised = superviseWorker(worker, connection, { ...opts, kind: 'risk' });
  return {
    worker,
    /** Connected and announced: from here the API's readiness counts this worker. */
    ready: supervised.ready,
    close: () => supervised.close(),
  };
}
