import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import type { NotifyJob } from '../../workers/queues.ts';
import { render, TemplateDataError, type TemplateName } from './templates.ts';
import { DeliveryError, type EmailSender, type SmsSender } from './types.ts';

/**
 * What to do when an earlier attempt died while the provider call was in flight, so nobody
 * knows whether the message went out (see workers/notify.worker.ts for the reasoning).
 * - `at-most-once`: do not send again; the row becomes `unknown`.
 * - `at-least-once`: send again, under the same idempotency key / Message-ID.
 */
export type DeliveryPolicy = 'at-most-once' | 'at-least-once';

export const DEFAULT_POLICY: Record<TemplateName, DeliveryPolicy> = {
  // A lost code is noticed and recovered by the user (resend); a late duplicate is noise.
  login_code: 'at-most-once',
  // A lost security notice is never noticed by the person it should warn.
  factor_changed: 'at-least-once',
  new_device: 'at-least-once',
  email_verification: 'at-most-once',
  signup_attempt: 'at-least-once',
  // Like a code: the user asks again when it does not come; a duplicate link is harmless (one flow, one use).
  recovery_link: 'at-most-once',
};

export interface DeliveryDeps {
  db: Queryable;
  email: EmailSender;
  sms: SmsSender;
  clock?: Clock;
  /** Deadline of one provider call. Keep it below the BullMQ lock duration (30 s by default). */
  sendTimeoutMs?: number;
  /** How long a `sending` claim is trusted; after it, the attempt is presumed dead. */
  leaseMs?: number;
  policy?: Partial<Record<TemplateName, DeliveryPolicy>>;
}

export interface Attempt {
  /** 1 for the first run of the job. */
  number: number;
  /** No retry follows if this one fails. */
  final: boolean;
}

export type DeliveryResult = { status: 'sent'; messageId: string; duplicate: boolean };

/** The job can never succeed: do not retry it (the worker maps this to UnrecoverableError). */
export class PermanentDeliveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentDeliveryError';
  }
}

interface Row {
  channel: string;
  destination: string;
  template: string;
  status: 'pending' | 'sending' | 'sent' | 'failed' | 'unknown';
  lease_until: Date | null;
  provider_message_id: string | null;
}

export interface Delivery {
  /**
   * Send the message of job `id` at most once per policy. Resolves when it is sent (now or by an
   * earlier run); throws PermanentDeliveryError when it must not be retried, another error when
   * a retry may succeed.
   */
  deliver(id: string, job: NotifyJob, attempt?: Attempt): Promise<DeliveryResult>;
}

export function createDelivery(deps: DeliveryDeps): Delivery {
  const { db } = deps;
  const clock = deps.clock ?? systemClock;
  const sendTimeoutMs = deps.sendTimeoutMs ?? 20_000;
  const leaseMs = deps.leaseMs ?? sendTimeoutMs + 5_000;
  // A lease shorter than a provider call would let a second attempt start while one is live.
  if (leaseMs <= sendTimeoutMs) throw new Error('notify: leaseMs must exceed sendTimeoutMs');
  const policyOf = (t: TemplateName): DeliveryPolicy => deps.policy?.[t] ?? DEFAULT_POLICY[t];
  const now = () => new Date(clock.now());

  const setStatus = (id: string, status: Row['status'], error: string | null) =>
    db.query('UPDATE notifications SET status = $2, last_error = $3, lease_until = NULL, updated_at = $4 WHERE id = $1 AND status <> $5', [
      id,
      status,
      error,
      now(),
      'sent',
    ]);

  return {
    async deliver(id, job, attempt = { number: 1, final: true }) {
      let msg;
      try {
        msg = render(job.template, job.data);
      } catch (e) {
        if (e instanceof TemplateDataError) throw new PermanentDeliveryError(e.message, { cause: e });
        throw e;
      }
      const policy = policyOf(job.template);
      const t = now();
      await db.query(
        `INSERT INTO notifications (id, channel, destination, template, status, attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (id) DO NOTHING`,
        [id, job.channel, job.to, job.template, t],
      );
      // Claim the send. Only one run can hold a live `sending` lease; a dead one's lease
      // is taken over only under at-least-once.
      const claim = await db.query<{ attempts: number }>(
        `UPDATE notifications SET status = 'sending', attempts = attempts + 1, lease_until = $2, updated_at = $3
          WHERE id = $1 AND channel = $4 AND destination = $5 AND template = $6
            AND (status IN ('pending', 'failed') OR (status = 'sending' AND lease_until <= $3 AND $7))
          RETURNING attempts`,
        [id, new Date(t.getTime() + leaseMs), t, job.channel, job.to, job.template, policy === 'at-least-once'],
      );
      if (claim.rowCount !== 1) {
        const { rows } = await db.query<Row>(
          'SELECT channel, destination, template, status, lease_until, provider_message_id FROM notifications WHERE id = $1',
          [id],
        );
        const r = rows[0];
        if (!r) throw new Error(`notification ${id} vanished`);
        if (r.channel !== job.channel || r.destination !== job.to || r.template !== job.template)
          throw new PermanentDeliveryError(`notification ${id} already exists for another message`);
        if (r.status === 'sent') return { status: 'sent', messageId: r.provider_message_id ?? '', duplicate: true };
        if (r.status === 'unknown') throw new PermanentDeliveryError(`notification ${id}: outcome of an earlier attempt unknown; not sent again (${policy})`);
        if (r.status === 'sending' && r.lease_until && r.lease_until.getTime() > t.getTime())
          throw new Error(`notification ${id} is being sent by another attempt`);
        // A dead attempt under at-most-once: record that we do not know, and stop.
        await db.query(
          `UPDATE notifications SET status = 'unknown', lease_until = NULL, last_error = $2, updated_at = $3
            WHERE id = $1 AND status = 'sending' AND lease_until <= $3`,
          [id, 'an attempt died during the provider call; not sent again (at-most-once)', t],
        );
        throw new PermanentDeliveryError(`notification ${id}: an earlier attempt died mid-send; not sent again (${policy})`);
      }

      let messageId: string;
      try {
        const signal = AbortSignal.timeout(sendTimeoutMs);
        const sent =
          job.channel === 'email'
            ? await deps.email.send({ to: job.to, subject: msg.subject, text: msg.text, html: msg.html, idempotencyKey: id }, { signal })
            : await deps.sms.send({ to: job.to, body: msg.sms, idempotencyKey: id }, { signal });
        messageId = sent.messageId;
      } catch (e) {
        const de =
          e instanceof DeliveryError
            ? e
            : new DeliveryError(`provider call failed: ${(e as Error)?.message ?? e}`, { retryable: true, outcome: 'unknown', cause: e });
        if (!de.retryable) {
          await setStatus(id, 'failed', de.message);
          throw new PermanentDeliveryError(de.message, { cause: de });
        }
        if (de.outcome === 'unknown' && policy === 'at-most-once') {
          await setStatus(id, 'unknown', de.message);
          throw new PermanentDeliveryError(`${de.message}; outcome unknown, not sent again (at-most-once)`, { cause: de });
        }
        await setStatus(id, attempt.final ? 'failed' : 'pending', de.message);
        throw de;
      }
      // The shortest step after the provider accepted: one UPDATE. A crash before it is the
      // window the policy above decides about.
      await db.query(
        `UPDATE notifications SET status = 'sent', provider_message_id = $2, sent_at = $3, lease_until = NULL, last_error = NULL, updated_at = $3
          WHERE id = $1`,
        [id, messageId, now()],
      );
      return { status: 'sent', messageId, duplicate: false };
    },
  };
}
