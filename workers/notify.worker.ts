import { UnrecoverableError, Worker, type WorkerOptions } from 'bullmq';
import { redisConnection, superviseWorker } from '../src/jobs/bullmq.ts';
import type { Logger } from '../src/logger.ts';
import { createDelivery, PermanentDeliveryError, type Attempt, type DeliveryDeps, type DeliveryResult } from '../src/notify/delivery.ts';
import { NOTIFY_JOB, NotifyJobSchema, SealedNotifySchema, notifyAad } from './queues.ts';

/**
 * The `notify.send` worker: validates the payload and hands it to the delivery service, which
 * records a `notifications` row keyed by the (deterministic) job id and sends at most once per
 * the policy below. The same job id enqueued twice, a retry after a provider error, or a
 * stalled job re-run after a crash all find the row and do not send a second time once it says
 * `sent`.
 *
 * ## The crash window, and the policy chosen
 *
 * Each send is: claim the row (`pending` → `sending`, with a lease longer than the provider
 * deadline), call the provider, mark it `sent` in one UPDATE. If the process dies between the
 * provider accepting and that UPDATE — or during the call, when nobody knows whether the
 * provider took the message — the row stays `sending` and BullMQ's stalled-job check runs the
 * job again. Another attempt never sends while a `sending` lease is live (it retries later);
 * once the lease is over, the previous attempt is presumed dead and its outcome is unknown.
 * What happens then depends on what losing vs. duplicating the message costs:
 *
 * - `login_code` → **at-most-once**: the row becomes `unknown` and the job fails without
 *   sending. A lost code is visible to the person waiting for it and NIST SP 800-63B's remedy is
 *   the resend (a new code on the same challenge, a new job); a duplicate SMS costs money, can
 *   arrive after a resend has already made its code stale, and repeated crashes would multiply
 *   texts to one number. The same goes for provider calls that end in a timeout or a dropped
 *   connection after the message left us: not retried.
 * - `new_device`, `factor_changed` → **at-least-once**: the message is sent again. A lost
 *   security notice is never noticed by the person it should warn; a duplicate is harmless.
 *   Both copies carry the same Message-ID (email) or `Idempotency-Key` (webhook), derived from
 *   the job id, so receiving systems can drop the second.
 *
 * Failures where the provider certainly did not take the message (connection refused, an SMTP
 * 4xx, an HTTP 5xx/429) are retried under both policies, with the bounded attempts and
 * exponential backoff the enqueuer sets (5 by default in src/jobs/bullmq.ts); the row says
 * `pending` between attempts and `failed` after the last one. A permanent refusal (HTTP
 * 400/401/403, SMTP 5xx) or a payload that can never be rendered fails at once
 * (UnrecoverableError), row `failed`. Payloads are never logged: a `login_code` job carries
 * the code in clear.
 */
export type NotifyDeps = DeliveryDeps & {
  /**
   * Opens sealed payloads (the master key; aad = notifyAad(jobId)). Given, this worker also
   * refuses unsealed ones: on a deployment that seals, a clear payload was not written by it.
   */
  open?: (sealed: string, aad: string) => string;
};

export type NotifyProcessor = (name: string, payload: unknown, jobId: string, attempt?: Attempt) => Promise<DeliveryResult>;

/** Validate a `notify.send` payload and deliver it idempotently (bad payload → UnrecoverableError). */
export function notifyProcessor(deps: NotifyDeps): NotifyProcessor {
  const delivery = createDelivery(deps);
  return async (name, payload, jobId, attempt) => {
    if (name !== NOTIFY_JOB) throw new UnrecoverableError(`unknown job ${name} on the notify queue`);
    if (!jobId) throw new UnrecoverableError(`${NOTIFY_JOB} needs a job id`);
    let body = payload;
    const sealed = SealedNotifySchema.safeParse(payload);
    if (sealed.success) {
      if (!deps.open) throw new UnrecoverableError(`sealed ${NOTIFY_JOB} payload, but this worker has no key to open it`);
      try {
        body = JSON.parse(deps.open(sealed.data.sealed, notifyAad(jobId)));
      } catch {
        throw new UnrecoverableError(`sealed ${NOTIFY_JOB} payload does not open (another key, another job, or altered)`);
      }
    } else if (deps.open) throw new UnrecoverableError(`unsealed ${NOTIFY_JOB} payload refused: this deployment seals them`);
    const parsed = NotifyJobSchema.safeParse(body);
    // Only the shape goes into the error: the values may hold a code or an address.
    if (!parsed.success) throw new UnrecoverableError(`invalid ${NOTIFY_JOB} payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.code}`).join('; ')}`);
    try {
      return await delivery.deliver(jobId, parsed.data, attempt);
    } catch (e) {
      if (e instanceof PermanentDeliveryError) throw new UnrecoverableError(e.message);
      throw e;
    }
  };
}

export function startNotifyWorker(opts: {
  redisUrl: string;
  queueName: string;
  deps: NotifyDeps;
  prefix?: string;
  concurrency?: number;
  logger?: Pick<Logger, 'error' | 'warn'>;
  /**
   * Stall detection (tests shorten it): a dead worker's job runs again about lockDuration after
   * it died; deps.leaseMs and the policy decide whether that run may send.
   */
  workerOptions?: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>;
  /** How often the worker tells readiness it is consuming (src/jobs/heartbeat.ts). */
  heartbeatMs?: number;
}): { worker: Worker; ready: Promise<void>; close(force?: boolean): Promise<void> } {
  const connection = redisConnection(opts.redisUrl);
  // Connection errors surface through the worker's 'error' event; ioredis reconnects.
  connection.on('error', () => {});
  const run = notifyProcessor(opts.deps);
  const worker = new Worker(
    opts.queueName,
    async (job) =>
      run(job.name, job.data, job.id ?? '', {
        number: job.attemptsMade + 1,
        final: job.attemptsMade + 1 >= (job.opts.attempts ?? 1),
      }),
    {
      connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency ?? 8,
      ...opts.workerOptions,
    },
  );
  worker.on('error', (err) => opts.logger?.error({ err, queue: opts.queueName }, 'notify worker error'));
  worker.on('failed', (job, err) =>
    opts.logger?.warn({ jobId: job?.id, name: job?.name, attempts: job?.attemptsMade, reason: err.message }, 'notify job failed'),
  );
  // Results reach the waiting API by pub/sub; readiness counts this worker by its heartbeat.
  const supervised = superviseWorker(worker, connection, { ...opts, kind: 'notify' });
  return {
    worker,
    /** Connected and announced: from here the API's readiness counts this worker. */
    ready: supervised.ready,
    close: (force = false) => supervised.close(force),
  };
}
