import { createHash } from 'node:crypto';
import { createTransport } from 'nodemailer';
import { DeliveryError, type EmailSender } from './types.ts';

export interface SmtpOptions {
  /** smtp:// or smtps:// URL, credentials included. */
  url: string;
  /** The From header, e.g. `Threshold <no-reply@example.com>`. */
  from: string;
  /** Connect, greeting and idle-socket deadline per step. */
  timeoutMs?: number;
}

// Errors raised before the server could have taken the message: it certainly did not.
const BEFORE_MESSAGE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EDNS', 'EHOSTUNREACH', 'ENETUNREACH', 'ETLS', 'EAUTH', 'ENOAUTH']);

/** Email over SMTP (nodemailer): plain-text and HTML alternatives, one connection per message. */
export function createSmtpEmailSender(o: SmtpOptions): EmailSender {
  const timeout = o.timeoutMs ?? 15_000;
  const transport = createTransport(
    { url: o.url, connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout, dnsTimeout: timeout },
    { from: o.from },
  );
  // The Message-ID's domain: the sender's, so it looks like every other message from us.
  const domain = /@([A-Za-z0-9.-]+)>?\s*$/.exec(o.from)?.[1] ?? 'threshold.local';
  return {
    kind: 'smtp',
    async send(m, opts) {
      try {
        const info = await transport.sendMail({
          to: m.to,
          subject: m.subject,
          text: m.text,
          html: m.html,
          ...(m.idempotencyKey ? { messageId: `<${messageIdFor(m.idempotencyKey)}@${domain}>` } : {}),
          ...(opts?.signal ? { signal: opts.signal } : {}),
        });
        return { messageId: info.messageId };
      } catch (e) {
        throw classify(e);
      }
    },
    async close() {
      transport.close();
    },
  };
}

/** A job id hashed into a Message-ID local part (no characters a mail system might rewrite). */
const messageIdFor = (key: string) => `n.${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;

function classify(e: unknown): DeliveryError {
  const err = e as { code?: string; originalCode?: string; responseCode?: number; permanent?: boolean; timeoutType?: string; name?: string };
  const message = `smtp: ${err.responseCode ? `server answered ${err.responseCode}` : (err.code ?? err.name ?? 'error')}`;
  if (typeof err.responseCode === 'number') {
    // The server answered: it refused this message, so it did not take it.
    return new DeliveryError(message, { retryable: err.permanent !== true, outcome: 'not-sent', status: err.responseCode, cause: e });
  }
  const before =
    BEFORE_MESSAGE.has(err.code ?? '') ||
    BEFORE_MESSAGE.has(err.originalCode ?? '') ||
    err.timeoutType === 'CONNECT_TIMEOUT' ||
    err.timeoutType === 'GREETING_TIMEOUT';
  // A dropped connection or an abort mid-transaction: the server may have queued the message.
  return new DeliveryError(message, { retryable: true, outcome: before ? 'not-sent' : 'unknown', cause: e });
}
