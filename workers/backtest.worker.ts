import { Worker } from 'bullmq';
import { redisConnection } from '../src/jobs/bullmq.ts';
import type { Logger } from '../src/logger.ts';
import { backtestProcessor, type BacktestJobDeps } from '../src/backtest/job.ts';

/**
 * The `backtest` queue's worker. One job at a time: a replay is CPU-bound and the machine's
 * login traffic must keep its cores. Failures are recorded on the job row by the processor.
 */
export function startBacktestWorker(opts: {
  redisUrl: string;
  queueName: string;
  deps: BacktestJobDeps;
  prefix?: string;
  logger?: Pick<Logger, 'error' | 'warn'>;
}): { worker: Worker; close(): Promise<void> } {
  const connection = redisConnection(opts.redisUrl);
  connection.on('error', () => {});
  const run = backtestProcessor(opts.deps);
  const worker = new Worker(opts.queueName, async (job) => run(job.name, job.data, job.id ?? ''), {
    connection,
    prefix: opts.prefix,
    concurrency: 1,
    // Long replays must not be taken for stalled while they hold the event loop between awaits.
    lockDuration: 120_000,
  });
  worker.on('error', (err) => opts.logger?.error({ err, queue: opts.queueName }, 'backtest worker error'));
  worker.on('failed', (job, err) => opts.logger?.warn({ jobId: job?.id, reason: err.message }, 'backtest job failed'));
  return {
    worker,
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}
