import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import { ConfigError, type Config } from '../config/config.ts';
import type { Queryable } from '../db/db.ts';
import { createDevMailbox, type DevMailbox } from './dev-mailbox.ts';
import { createSmtpEmailSender } from './email.ts';
import { createTwilioSmsSender, createWebhookSmsSender } from './sms.ts';
import { DeliveryError, type EmailSender, type SmsSender } from './types.ts';

export type NotifierConfig = Pick<
  Config,
  | 'SMTP_URL'
  | 'MAIL_FROM'
  | 'SMS_PROVIDER'
  | 'SMS_TWILIO_BASE_URL'
  | 'SMS_TWILIO_ACCOUNT_SID'
  | 'SMS_TWILIO_AUTH_TOKEN'
  | 'SMS_TWILIO_FROM'
  | 'SMS_WEBHOOK_URL'
  | 'SMS_WEBHOOK_SECRET'
  | 'devMailbox'
>;

export interface Notifier {
  email: EmailSender;
  sms: SmsSender;
  /** Which channels can deliver at all, so a flow only offers those. */
  available: { email: boolean; sms: boolean };
  /** Set when the dev mailbox is one of the sinks. */
  devMailbox: DevMailbox | null;
  close(): Promise<void>;
}

/** A channel with nothing behind it: every send fails for good, and `available` says so. */
const unconfigured = (what: string): EmailSender & SmsSender => ({
  kind: 'none',
  async send() {
    throw new DeliveryError(`${what} is not configured`, { retryable: false });
  },
});

/**
 * Pick the delivery adapters from config: SMTP when SMTP_URL is set, else the dev mailbox when
 * it is on; SMS by SMS_PROVIDER (`dev` needs the dev mailbox). Checked once, at boot.
 */
export function createNotifier(
  config: NotifierConfig,
  db: Queryable,
  opts: { clock?: Clock; fetch?: typeof fetch; timeoutMs?: number } = {},
): Notifier {
  const mailbox = config.devMailbox ? createDevMailbox(db, opts.clock ?? systemClock) : null;

  let email: EmailSender;
  if (config.SMTP_URL) email = createSmtpEmailSender({ url: config.SMTP_URL, from: config.MAIL_FROM, timeoutMs: opts.timeoutMs });
  else email = mailbox?.email ?? unconfigured('email (SMTP_URL)');

  let sms: SmsSender;
  switch (config.SMS_PROVIDER) {
    case 'twilio':
      if (!config.SMS_TWILIO_ACCOUNT_SID || !config.SMS_TWILIO_AUTH_TOKEN || !config.SMS_TWILIO_FROM)
        throw new ConfigError('Invalid configuration:\n  SMS_TWILIO_ACCOUNT_SID, SMS_TWILIO_AUTH_TOKEN, SMS_TWILIO_FROM: required with SMS_PROVIDER=twilio');
      sms = createTwilioSmsSender({
        baseUrl: config.SMS_TWILIO_BASE_URL,
        accountSid: config.SMS_TWILIO_ACCOUNT_SID,
        authToken: config.SMS_TWILIO_AUTH_TOKEN,
        from: config.SMS_TWILIO_FROM,
        timeoutMs: opts.timeoutMs,
        fetch: opts.fetch,
      });
      break;
    case 'webhook':
      if (!config.SMS_WEBHOOK_URL) throw new ConfigError('Invalid configuration:\n  SMS_WEBHOOK_URL: required with SMS_PROVIDER=webhook');
      // An unsigned webhook would let anyone who finds the URL send texts as us.
      if (!config.SMS_WEBHOOK_SECRET)
        throw new ConfigError('Invalid configuration:\n  SMS_WEBHOOK_SECRET: required with SMS_PROVIDER=webhook');
      sms = createWebhookSmsSender({ url: config.SMS_WEBHOOK_URL, secret: config.SMS_WEBHOOK_SECRET, timeoutMs: opts.timeoutMs, fetch: opts.fetch });
      break;
    default:
      sms = mailbox?.sms ?? unconfigured('SMS (SMS_PROVIDER=dev needs the dev mailbox)');
  }

  return {
    email,
    sms,
    available: { email: email.kind !== 'none', sms: sms.kind !== 'none' },
    devMailbox: mailbox,
    async close() {
      await email.close?.();
      await sms.close?.();
    },
  };
}
