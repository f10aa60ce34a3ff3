import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { ConfigError } from '../../src/config/config.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createInProcessJobs } from '../../src/jobs/in-process.ts';
import { AppError } from '../../src/errors.ts';
import { createDelivery, PermanentDeliveryError } from '../../src/notify/delivery.ts';
import { createNotifyClient } from '../../src/notify/enqueue.ts';
import { createNotifier, type NotifierConfig } from '../../src/notify/notifier.ts';
import { DeliveryError, type EmailMessage, type EmailSender, type SmsMessage, type SmsSender } from '../../src/notify/types.ts';
import type { NotifyJob } from '../../workers/queues.ts';
import { notifyProcessor } from '../../workers/notify.worker.ts';

// The delivery rules (idempotency, retries, the crash-window policy) on the embedded PGlite,
// with scripted senders standing in for providers (the real ones are tested in integration).
let db: Db;
const clock = new ManualClock(Date.UTC(2026, 2, 1, 9));
let seq = 0;
const nextId = () => `notify.test.${++seq}.0`;

/** A sender whose next answers are scripted: a message id, or an error to throw. */
function scripted() {
  const sent: (EmailMessage | SmsMessage)[] = [];
  const script: (Error | 'ok')[] = [];
  const send = async (m: EmailMessage | SmsMessage) => {
    const next = script.shift() ?? 'ok';
    if (next !== 'ok') throw next;
    sent.push(m);
    return { messageId: `m-${sent.length}` };
  };
  const sender: EmailSender & SmsSender = { kind: 'scripted', send };
  return { sender, sent, script };
}

const codeJob: NotifyJob = { channel: 'email', to: 'ada@example.test', template: 'login_code', data: { code: '424242' } };
const deviceJob: NotifyJob = { channel: 'email', to: 'ada@example.test', template: 'new_device', data: { device: 'Firefox', revokeUrl: 'https://id.example.test/r/1' } };
const status = async (id: string) =>
  (await db.query<{ status: string; attempts: number; last_error: string | null }>('SELECT status, attempts, last_error FROM notifications WHERE id = $1', [id])).rows[0];

beforeAll(async () => {
  db = await createPgliteDb();
  await migrate(db);
});
afterAll(async () => {
  await db?.close();
});

describe('idempotent delivery', () => {
  it('sends once per job id, however often the job runs', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    const id = nextId();
    expect(await d.deliver(id, codeJob)).toEqual({ status: 'sent', messageId: 'm-1', duplicate: false });
    expect(await d.deliver(id, codeJob)).toEqual({ status: 'sent', messageId: 'm-1', duplicate: true });
    expect(s.sent).toHaveLength(1);
    expect((s.sent[0] as EmailMessage).text).toContain('424242');
    expect((s.sent[0] as EmailMessage).idempotencyKey).toBe(id);
    expect(await status(id)).toMatchObject({ status: 'sent', attempts: 1 });
    // The row never holds the message body, so never the code.
    const row = JSON.stringify((await db.query('SELECT * FROM notifications WHERE id = $1', [id])).rows);
    expect(row).not.toContain('424242');
  });

  it('refuses a job id reused for another message', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    const id = nextId();
    await d.deliver(id, codeJob);
    await expect(d.deliver(id, { ...codeJob, to: 'eve@example.test' })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(s.sent).toHaveLength(1);
  });

  it('fails for good when the template data is bad, without calling the provider', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    await expect(d.deliver(nextId(), { ...codeJob, data: { code: 'abc' } })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(s.sent).toHaveLength(0);
  });

  it('retries a provider failure that certainly did not send, and marks the last one failed', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    const id = nextId();
    s.script.push(new DeliveryError('down', { retryable: true }), new DeliveryError('down', { retryable: true }));
    await expect(d.deliver(id, codeJob, { number: 1, final: false })).rejects.toBeInstanceOf(DeliveryError);
    expect(await status(id)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'down' });
    await expect(d.deliver(id, codeJob, { number: 2, final: true })).rejects.toBeInstanceOf(DeliveryError);
    expect(await status(id)).toMatchObject({ status: 'failed', attempts: 2 });
    // Enqueued again later (same id): it may still go out once.
    await d.deliver(id, codeJob);
    expect(await status(id)).toMatchObject({ status: 'sent', attempts: 3 });
    expect(s.sent).toHaveLength(1);
  });

  it('stops at a permanent refusal', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    const id = nextId();
    s.script.push(new DeliveryError('twilio: answered 400', { retryable: false, status: 400 }));
    await expect(d.deliver(id, codeJob, { number: 1, final: false })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(await status(id)).toMatchObject({ status: 'failed', last_error: 'twilio: answered 400' });
  });
});

describe('the crash window policy', () => {
  it('does not resend a code whose provider call ended with an unknown outcome (at-most-once)', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    const id = nextId();
    s.script.push(new DeliveryError('connection dropped after DATA', { retryable: true, outcome: 'unknown' }));
    await expect(d.deliver(id, codeJob, { number: 1, final: false })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(await status(id)).toMatchObject({ status: 'unknown' });
    await expect(d.deliver(id, codeJob, { number: 2, final: false })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(s.sent).toHaveLength(0);
  });

  it('resends a security notice whose outcome is unknown (at-least-once)', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender });
    const id = nextId();
    s.script.push(new DeliveryError('connection dropped after DATA', { retryable: true, outcome: 'unknown' }));
    await expect(d.deliver(id, deviceJob, { number: 1, final: false })).rejects.toBeInstanceOf(DeliveryError);
    expect(await status(id)).toMatchObject({ status: 'pending' });
    await d.deliver(id, deviceJob, { number: 2, final: false });
    expect(s.sent).toHaveLength(1);
  });

  /** Leave a row as a worker that died mid-call would: `sending`, lease running. */
  async function diedMidSend(job: NotifyJob, leaseMs: number) {
    const id = nextId();
    const t = new Date(clock.now());
    await db.query(
      `INSERT INTO notifications (id, channel, destination, template, status, attempts, lease_until, created_at, updated_at)
       VALUES ($1, $2, $3, $4, 'sending', 1, $5, $6, $6)`,
      [id, job.channel, job.to, job.template, new Date(clock.now() + leaseMs), t],
    );
    return id;
  }

  it('never sends while another attempt holds a live lease', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender, sendTimeoutMs: 1000, leaseMs: 5000 });
    const id = await diedMidSend(deviceJob, 5000);
    await expect(d.deliver(id, deviceJob, { number: 2, final: false })).rejects.toThrow(/being sent by another attempt/);
    expect(s.sent).toHaveLength(0);
    expect(await status(id)).toMatchObject({ status: 'sending' });
  });

  it('after a dead attempt, sends a security notice again but not a code', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender, sendTimeoutMs: 1000, leaseMs: 5000 });
    const code = await diedMidSend(codeJob, 5000);
    const notice = await diedMidSend(deviceJob, 5000);
    clock.advance(5000);
    await expect(d.deliver(code, codeJob, { number: 2, final: false })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(await status(code)).toMatchObject({ status: 'unknown' });
    await d.deliver(notice, deviceJob, { number: 2, final: false });
    expect(await status(notice)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(s.sent.map((m) => m.idempotencyKey)).toEqual([notice]);
  });

  it('lets a deployment choose the other policy per template', async () => {
    const s = scripted();
    const d = createDelivery({ db, clock, email: s.sender, sms: s.sender, sendTimeoutMs: 1000, leaseMs: 5000, policy: { login_code: 'at-least-once' } });
    const id = await diedMidSend(codeJob, 5000);
    clock.advance(5001);
    await d.deliver(id, codeJob);
    expect(s.sent).toHaveLength(1);
  });

  it('keeps the lease longer than a provider call', () => {
    const s = scripted();
    expect(() => createDelivery({ db, clock, email: s.sender, sms: s.sender, sendTimeoutMs: 5000, leaseMs: 5000 })).toThrow(/leaseMs/);
  });
});

describe('notifyProcessor', () => {
  it('fails a bad payload or job name permanently, without echoing values', async () => {
    const s = scripted();
    const run = notifyProcessor({ db, clock, email: s.sender, sms: s.sender });
    await expect(run('notify.other', codeJob, nextId())).rejects.toBeInstanceOf(UnrecoverableError);
    const bad = { ...codeJob, to: '+447700900123', data: { code: '987654' } };
    const e = await run('notify.send', bad, nextId()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UnrecoverableError);
    expect((e as Error).message).not.toContain('987654');
    expect((e as Error).message).not.toContain('+447700900123');
    const p = await run('notify.send', { ...codeJob, data: { code: '12' } }, nextId()).catch((x: unknown) => x);
    expect(p).toBeInstanceOf(UnrecoverableError);
    expect(s.sent).toHaveLength(0);
  });

  it('delivers through the in-process signature (name, payload, jobId)', async () => {
    const s = scripted();
    const run = notifyProcessor({ db, clock, email: s.sender, sms: s.sender });
    const job: NotifyJob = { channel: 'sms', to: '+447700900123', template: 'login_code', data: { code: '135790' } };
    const id = nextId();
    await run('notify.send', job, id);
    await run('notify.send', job, id);
    expect(s.sent).toEqual([{ to: '+447700900123', body: 'Your Threshold code is 135790. It expires in 10 minutes.', idempotencyKey: id }]);
  });
});

describe('createNotifyClient (embedded runner)', () => {
  it('sends through the queue, and turns a failed send into DELIVERY_FAILED for the flow', async () => {
    const s = scripted();
    const jobs = createInProcessJobs({ notify: notifyProcessor({ db, clock, email: s.sender, sms: s.sender }) });
    const client = createNotifyClient(jobs, 'notify');
    const ok = await client.sendAndWait(codeJob, nextId(), 2000);
    expect(ok).toMatchObject({ status: 'sent', duplicate: false });
    s.script.push(new DeliveryError('twilio: answered 500', { retryable: true, status: 500 }));
    const e = await client.sendAndWait({ ...codeJob, channel: 'sms', to: '+447700900123' }, nextId(), 2000).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('DELIVERY_FAILED');
    expect((e as AppError).expose).toBe(true);
    expect((e as AppError).status).toBe(503);
    await expect(client.send({ ...codeJob, to: 'not-an-address' }, nextId())).rejects.toThrow(/invalid notify\.send job/);
  });
});

describe('createNotifier', () => {
  const base: NotifierConfig = {
    SMTP_URL: undefined,
    MAIL_FROM: 'Threshold <no-reply@threshold.test>',
    SMS_PROVIDER: 'dev',
    SMS_TWILIO_BASE_URL: 'https://api.twilio.com',
    SMS_TWILIO_ACCOUNT_SID: undefined,
    SMS_TWILIO_AUTH_TOKEN: undefined,
    SMS_TWILIO_FROM: undefined,
    SMS_WEBHOOK_URL: undefined,
    SMS_WEBHOOK_SECRET: undefined,
    devMailbox: true,
  };

  it('writes both channels to the dev mailbox in the embedded default', async () => {
    const n = createNotifier(base, db, { clock });
    expect(n.email.kind).toBe('dev');
    expect(n.sms.kind).toBe('dev');
    const run = notifyProcessor({ db, clock, ...n });
    await run('notify.send', { ...codeJob, to: 'dev@example.test' }, nextId());
    await run('notify.send', { channel: 'sms', to: '+15550000001', template: 'login_code', data: { code: '111222' } }, nextId());
    const mail = await n.devMailbox!.list({ destination: 'dev@example.test' });
    expect(mail).toHaveLength(1);
    expect(mail[0]).toMatchObject({ channel: 'email', subject: 'Your Threshold sign-in code' });
    expect(mail[0]?.textBody).toContain('424242');
    expect(mail[0]?.htmlBody).toContain('<strong>424242</strong>');
    const texts = await n.devMailbox!.list({ destination: '+15550000001' });
    expect(texts.map((m) => m.textBody)).toEqual(['Your Threshold code is 111222. It expires in 10 minutes.']);
  });

  it('picks SMTP and the configured SMS provider, and says what is unavailable', async () => {
    const prod = createNotifier({ ...base, devMailbox: false }, db);
    expect(prod.available).toEqual({ email: false, sms: false });
    expect(prod.devMailbox).toBeNull();
    await expect(prod.email.send({ to: 'a@b.test', subject: 's', text: 't', html: 'h' })).rejects.toMatchObject({ retryable: false });
    const n = createNotifier(
      { ...base, devMailbox: false, SMTP_URL: 'smtp://127.0.0.1:2525', SMS_PROVIDER: 'webhook', SMS_WEBHOOK_URL: 'https://hooks.example.test/sms', SMS_WEBHOOK_SECRET: 's3cret-s3cret-s3cret' },
      db,
    );
    expect([n.email.kind, n.sms.kind]).toEqual(['smtp', 'webhook']);
    expect(n.available).toEqual({ email: true, sms: true });
    await n.close();
    expect(() => createNotifier({ ...base, SMS_PROVIDER: 'webhook', SMS_WEBHOOK_URL: 'https://hooks.example.test/sms' }, db)).toThrow(ConfigError);
    expect(() => createNotifier({ ...base, SMS_PROVIDER: 'twilio' }, db)).toThrow(/SMS_TWILIO_ACCOUNT_SID/);
  });
});
