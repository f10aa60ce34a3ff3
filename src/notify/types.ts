/** Delivery adapters: small interfaces the notify worker calls; one implementation per provider. */

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  /**
   * A stable key for this message (the notify job id). SMTP uses it for the Message-ID, so a
   * copy sent again after a crash carries the same id and mail systems can drop it.
   */
  idempotencyKey?: string;
}

export interface SmsMessage {
  to: string;
  body: string;
  /** Sent as `Idempotency-Key` where the provider accepts one. */
  idempotencyKey?: string;
}

export interface SendOptions {
  /** Aborts the provider call (the worker's send deadline). */
  signal?: AbortSignal;
}

export interface EmailSender {
  readonly kind: string;
  send(m: EmailMessage, opts?: SendOptions): Promise<{ messageId: string }>;
  close?(): Promise<void>;
}

export interface SmsSender {
  readonly kind: string;
  send(m: SmsMessage, opts?: SendOptions): Promise<{ messageId: string }>;
  close?(): Promise<void>;
}

/**
 * A provider call that failed. `retryable`: the same message may go through later (5xx, 429,
 * network). `outcome`: `not-sent` when the provider certainly did not take the message (it
 * refused, or we never reached it); `unknown` when it may have (the call died after the
 * message left us), which is what the at-most-once policy must not retry.
 */
export class DeliveryError extends Error {
  readonly retryable: boolean;
  readonly outcome: 'not-sent' | 'unknown';
  readonly status?: number;
  constructor(message: string, o: { retryable: boolean; outcome?: 'not-sent' | 'unknown'; status?: number; cause?: unknown }) {
    super(message, { cause: o.cause });
    this.name = 'DeliveryError';
    this.retryable = o.retryable;
    this.outcome = o.outcome ?? 'not-sent';
    this.status = o.status;
  }
}

export const isDeliveryError = (e: unknown): e is DeliveryError => e instanceof DeliveryError;

/** HTTP status → retryable? 408, 425, 429 and 5xx are worth another try; other 4xx are not. */
export const retryableStatus = (status: number): boolean =>
  status >= 500 || status === 408 || status === 425 || status === 429;
