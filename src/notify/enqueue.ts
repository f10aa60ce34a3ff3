import type { Jobs } from '../jobs/jobs.ts';
import { AppError } from '../errors.ts';
import { NOTIFY_JOB, NotifyJobSchema, notifyAad, type NotifyJob } from '../../workers/queues.ts';
import type { DeliveryResult } from './delivery.ts';

/** Attempts per notify job: with BullMQ's exponential 1 s backoff, about 15 s of retrying. */
export const NOTIFY_ATTEMPTS = 5;

export interface NotifyClient {
  /** Fire and forget, retried in the background. `jobId` from notifyJobId(): a duplicate sends once. */
  send(job: NotifyJob, jobId: string): Promise<void>;
  /**
   * Send and wait for the provider's answer, for a flow that must tell the user at once when a
   * code cannot be delivered (one attempt; DELIVERY_FAILED on failure or after timeoutMs).
   */
  sendAndWait(job: NotifyJob, jobId: string, timeoutMs: number): Promise<DeliveryResult>;
}

/**
 * `seal` (given whenever jobs go through Redis): the payload leaves this process sealed, bound to
 * its job id; the worker opens it (workers/notify.worker.ts).
 */
export function createNotifyClient(jobs: Jobs, queue: string, attempts = NOTIFY_ATTEMPTS, seal?: (plain: string, aad: string) => string): NotifyClient {
  const check = (job: NotifyJob, jobId: string) => {
    // A malformed job is our bug; refuse it here rather than let the worker drop it.
    const r = NotifyJobSchema.safeParse(job);
    if (!r.success) throw new Error(`invalid ${NOTIFY_JOB} job: ${r.error.issues.map((i) => i.path.join('.')).join(', ')}`);
    return seal ? { sealed: seal(JSON.stringify(r.data), notifyAad(jobId)) } : r.data;
  };
  return {
    async send(job, jobId) {
      await jobs.enqueue(queue, NOTIFY_JOB, check(job, jobId), { jobId, attempts });
    },
    async sendAndWait(job, jobId, timeoutMs) {
      try {
        return await jobs.request<DeliveryResult>(queue, NOTIFY_JOB, check(job, jobId), { jobId, timeoutMs });
      } catch (e) {
        throw new AppError('DELIVERY_FAILED', { cause: e, privateDetail: `${NOTIFY_JOB} ${jobId}: ${(e as Error)?.message ?? e}` });
      }
    },
  };
}
