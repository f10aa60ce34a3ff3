import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import type { EmailSender, SmsSender } from './types.ts';

/** A message the dev mailbox holds (what would have been emailed or texted). */
export interface DevMessage {
  id: string;
  channel: 'sms' | 'email';
  destination: string;
  subject: string | null;
  textBody: string;
  htmlBody: string | null;
  createdAt: number;
}

export interface DevMailbox {
  email: EmailSender;
  sms: SmsSender;
  /** Newest first. */
  list(o?: { destination?: string; limit?: number }): Promise<DevMessage[]>;
}

/**
 * Development sink for both channels: messages become dev_mailbox rows that a page or
 * `GET /dev/mailbox` shows. Only wired when the dev mailbox is on (never in production).
 */
export function createDevMailbox(db: Queryable, clock: Clock = systemClock): DevMailbox {
  const put = async (channel: 'sms' | 'email', destination: string, subject: string | null, text: string, html: string | null) => {
    const id = randomUUID();
    await db.query(
      'INSERT INTO dev_mailbox (id, channel, destination, subject, text_body, html_body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [id, channel, destination, subject, text, html, new Date(clock.now())],
    );
    return { messageId: `dev-${id}` };
  };
  return {
    email: { kind: 'dev', send: (m) => put('email', m.to, m.subject, m.text, m.html) },
    sms: { kind: 'dev', send: (m) => put('sms', m.to, null, m.body, null) },
    async list(o = {}) {
      const limit = Math.min(Math.max(o.limit ?? 50, 1), 500);
      const { rows } = await db.query<{
        id: string;
        channel: 'sms' | 'email';
        destination: string;
        subject: string | null;
        text_body: string;
        html_body: string | null;
        created_at: Date;
      }>(
        `SELECT id, channel, destination, subject, text_body, html_body, created_at FROM dev_mailbox
          WHERE ($1::text IS NULL OR destination = $1) ORDER BY created_at DESC, id LIMIT $2`,
        [o.destination ?? null, limit],
      );
      return rows.map((r) => ({
        id: r.id,
        channel: r.channel,
        destination: r.destination,
        subject: r.subject,
        textBody: r.text_body,
        htmlBody: r.html_body,
        createdAt: new Date(r.created_at).getTime(),
      }));
    },
  };
}
