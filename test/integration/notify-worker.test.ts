import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBullJobs, redisConnection } from '../../src/jobs/bullmq.ts';
import type { Jobs } from '../../src/jobs/jobs.ts';
import { createSmtpEmailSender } from '../../src/notify/email.ts';
import { createTwilioSmsSender, createWebhookSmsSender } from '../../src/notify/sms.ts';
import type { EmailSender, SmsSender } from '../../src/notify/types.ts';
import { NOTIFY_JOB, notifyJobId, type NotifyJob } from '../../workers/queues.ts';
import { startNotifyWorker } from '../../workers/notify.worker.ts';
import { createTestDb, TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';
import { spawnTs } from '../helpers/processes.ts';

// The notify worker as a real BullMQ Worker on Redis, delivering to a real SMTP server; the
// crash tests run the first worker in a child process and SIGKILL it mid-job.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FROM = 'Threshold <no-reply@threshold.test>';
// Short locks so BullMQ notices a dead worker's job in about a second.
const FAST = { lockDuration: 1000, stalledInterval: 500 };
const SEND_TIMEOUT_MS = 2000;
const LEASE_MS = 2500;

// ---- SMTP server with a trap door ------------------------------------------------------------
interface Received {
  to: string[];
  messageId: string;
  raw: string;
}
const received: Received[] = [];
/**
 * Where the next session stops and calls `onTrap` (which kills the worker) instead of answering:
 * `rcpt` — before any of the message was sent; `data` — after the server has the whole
 * message but before it says 250 (the classic duplicate window of RFC 1047).
 */
let trap: { at: 'rcpt' | 'data'; onTrap: () => void } | null = null;
let smtp: SMTPServer;
let smtpUrl: string;

// ---- HTTP SMS provider that is down ----------------------------------------------------------
let smsHits = 0;
let sms500: Server;
let sms500Base: string;

let t: Awaited<ReturnType<typeof createTestDb>>;
let jobs: Jobs;
const inspectConn = redisConnection(TEST_REDIS_URL);
inspectConn.on('error', () => {});
const cleanups: (() => Promise<unknown>)[] = [];
const children = new Set<ChildProcess>();

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    logger: false,
    onRcptTo(_address, _session, cb) {
      if (trap?.at === 'rcpt') {
        const { onTrap } = trap;
        trap = null;
        onTrap(); // never answer: the client is mid-envelope when it dies
        return;
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          messageId: /^message-id:\s*(.+)$/im.exec(raw)?.[1]?.trim() ?? '',
          raw,
        });
        if (trap?.at === 'data') {
          const { onTrap } = trap;
          trap = null;
          onTrap(); // the server holds the message; the client dies before hearing 250
          return;
        }
        cb();
      });
    },
  });
  smtp.on('error', () => {});
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;

  sms500 = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      smsHits++;
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"code":20500,"message":"Internal Server Error"}');
    });
  });
  await new Promise<void>((r) => sms500.listen(0, '127.0.0.1', r));
  sms500Base = `http://127.0.0.1:${(sms500.address() as AddressInfo).port}`;

  t = await createTestDb();
  jobs = createBullJobs(TEST_REDIS_URL);
});
afterEach(async () => {
  trap = null;
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await jobs?.close();
  inspectConn.disconnect();
  await new Promise<void>((r) => smtp?.close(r));
  sms500?.closeAllConnections();
  await new Promise<void>((r) => (sms500 ? sms500.close(() => r()) : r()));
  await t?.drop();
});

function senders(): { email: EmailSender; sms: SmsSender } {
  const email = createSmtpEmailSender({ url: smtpUrl, from: FROM, timeoutMs: 5000 });
  cleanups.push(async () => email.close?.());
  return { email, sms: createWebhookSmsSender({ url: `${sms500Base}/unused`, secret: 'unused' }) };
}

/** An in-process notify worker on `queue`, closed after the test. */
async function worker(queue: string, deps: { email: EmailSender; sms: SmsSender } = senders()) {
  const w = startNotifyWorker({
    redisUrl: TEST_REDIS_URL,
    queueName: queue,
    deps: { db: t.db, ...deps, sendTimeoutMs: SEND_TIMEOUT_MS, leaseMs: LEASE_MS },
    concurrency: 2,
    workerOptions: FAST,
  });
  await w.worker.waitUntilReady();
  cleanups.push(() => w.close());
  return w;
}

/** A queue handle to look at job states; obliterated after the test. */
function inspect(queue: string) {
  const q = new Queue(queue, { connection: inspectConn });
  cleanups.push(async () => {
    await q.obliterate({ force: true }).catch(() => {});
    await q.close();
  });
  return q;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const stateIs = (q: Queue, id: string, ...states: string[]) =>
  waitFor(`job ${id} to be ${states.join('|')}`, async () => {
    const s = await q.getJobState(id);
    return states.includes(s) ? s : null;
  });
const row = async (id: string) =>
  (await t.db.query<{ status: string; attempts: number; provider_message_id: string | null }>('SELECT status, attempts, provider_message_id FROM notifications WHERE id = $1', [id])).rows[0];
const to = (addr: string) => received.filter((m) => m.to.includes(addr));

/**
 * The first worker, in its own process so it can be killed for real (SIGKILL: no cleanup, no
 * lock release, sockets cut by the OS).
 */
async function childWorker(queue: string): Promise<ChildProcess> {
  const mod = (p: string) => new URL(p, `file://${ROOT}`).href;
  const script = `
    const { startNotifyWorker } = await import(${JSON.stringify(mod('workers/notify.worker.ts'))});
    const { createPgDb } = await import(${JSON.stringify(mod('src/db/pg.ts'))});
    const { createSmtpEmailSender } = await import(${JSON.stringify(mod('src/notify/email.ts'))});
    const { createWebhookSmsSender } = await import(${JSON.stringify(mod('src/notify/sms.ts'))});
    const c = JSON.parse(process.env.NOTIFY_CHILD);
    const w = startNotifyWorker({
      redisUrl: c.redisUrl, queueName: c.queue, concurrency: 1, workerOptions: c.fast,
      deps: {
        db: createPgDb(c.dbUrl, 2),
        email: createSmtpEmailSender({ url: c.smtpUrl, from: c.from, timeoutMs: 10000 }),
        sms: createWebhookSmsSender({ url: c.smsUrl, secret: 'unused' }),
        sendTimeoutMs: c.sendTimeoutMs, leaseMs: c.leaseMs,
      },
    });
    await w.worker.waitUntilReady();
    process.stdout.write('ready\\n');
  `;
  const p = spawnTs(
    { eval: script },
    {
      env: {
        NOTIFY_CHILD: JSON.stringify({
          redisUrl: TEST_REDIS_URL,
          queue,
          dbUrl: t.url,
          smtpUrl,
          from: FROM,
          smsUrl: `${sms500Base}/unused`,
          fast: FAST,
          sendTimeoutMs: SEND_TIMEOUT_MS,
          leaseMs: LEASE_MS,
        }),
      },
    },
  );
  const child = p.child;
  children.add(child);
  child.once('exit', () => children.delete(child));
  await p.waitFor(/ready/, 20_000);
  return child;
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

const emailJob = (template: NotifyJob['template'], addr: string): NotifyJob =>
  template === 'login_code'
    ? { channel: 'email', to: addr, template, data: { code: '482913' } }
    : { channel: 'email', to: addr, template: 'new_device', data: { device: 'Firefox on Linux', revokeUrl: 'https://id.example.test/r/abc' } };

describe('notify worker on BullMQ', () => {
  it('delivers one email for a job', async () => {
    const queue = uniqueName('notify');
    const q = inspect(queue);
    await worker(queue);
    const addr = `one-${randomUUID()}@example.test`;
    const id = notifyJobId('login_code', randomUUID(), 1);
    await jobs.enqueue(queue, NOTIFY_JOB, emailJob('login_code', addr), { jobId: id, attempts: 3 });
    await stateIs(q, id, 'completed');
    expect(to(addr)).toHaveLength(1);
    expect(to(addr)[0]?.raw).toContain('482913');
    expect(await row(id)).toMatchObject({ status: 'sent', attempts: 1 });
    expect((await row(id))?.provider_message_id).toBe(to(addr)[0]?.messageId);
  });

  it('delivers once when the same job id is enqueued twice, even after BullMQ forgot the first', async () => {
    const queue = uniqueName('notify');
    const q = inspect(queue);
    await worker(queue);
    const addr = `dup-${randomUUID()}@example.test`;
    const id = notifyJobId('new_device', randomUUID());
    const job = emailJob('new_device', addr);
    await Promise.all([jobs.enqueue(queue, NOTIFY_JOB, job, { jobId: id }), jobs.enqueue(queue, NOTIFY_JOB, job, { jobId: id })]);
    await stateIs(q, id, 'completed');
    // Drop the finished job so BullMQ's own id dedupe cannot help: the row must.
    await (await q.getJob(id))?.remove();
    await jobs.enqueue(queue, NOTIFY_JOB, job, { jobId: id });
    await stateIs(q, id, 'completed');
    expect((await q.getJob(id))?.returnvalue).toMatchObject({ status: 'sent', duplicate: true });
    expect(to(addr)).toHaveLength(1);
  });

  it('fails after its bounded attempts when the SMS provider answers 500, and records it', async () => {
    const queue = uniqueName('notify');
    const q = inspect(queue);
    const sms = createTwilioSmsSender({ baseUrl: sms500Base, accountSid: 'AC1', authToken: 'tok', from: '+15005550006', timeoutMs: 2000 });
    await worker(queue, { email: senders().email, sms });
    const before = smsHits;
    const id = notifyJobId('login_code', randomUUID(), 1);
    await jobs.enqueue(queue, NOTIFY_JOB, { channel: 'sms', to: '+447700900123', template: 'login_code', data: { code: '111333' } }, { jobId: id, attempts: 3 });
    await stateIs(q, id, 'failed');
    const job = await q.getJob(id);
    expect(job?.attemptsMade).toBe(3);
    expect(job?.failedReason).toMatch(/answered 500/);
    expect(smsHits - before).toBe(3);
    expect(await row(id)).toMatchObject({ status: 'failed', attempts: 3 });
  });
});

describe('notify worker killed mid-job', () => {
  it('a security notice: killed before the message left, the restarted worker delivers exactly one', async () => {
    const queue = uniqueName('notify');
    const q = inspect(queue);
    const child = await childWorker(queue);
    const addr = `kill1-${randomUUID()}@example.test`;
    const id = notifyJobId('new_device', randomUUID());
    trap = { at: 'rcpt', onTrap: () => child.kill('SIGKILL') };
    await jobs.enqueue(queue, NOTIFY_JOB, emailJob('new_device', addr), { jobId: id, attempts: 5 });
    await exited(child);
    expect(await row(id)).toMatchObject({ status: 'sending', attempts: 1 });
    expect(to(addr)).toHaveLength(0);

    await worker(queue); // BullMQ's stalled check hands it the dead worker's job
    await stateIs(q, id, 'completed');
    expect(to(addr)).toHaveLength(1);
    expect(await row(id)).toMatchObject({ status: 'sent' });
  });

  it('a login code: killed after the server took it, the restarted worker does not send it again', async () => {
    const queue = uniqueName('notify');
    const q = inspect(queue);
    const child = await childWorker(queue);
    const addr = `kill2-${randomUUID()}@example.test`;
    const id = notifyJobId('login_code', randomUUID(), 1);
    trap = { at: 'data', onTrap: () => child.kill('SIGKILL') };
    await jobs.enqueue(queue, NOTIFY_JOB, emailJob('login_code', addr), { jobId: id, attempts: 5 });
    await exited(child);
    expect(to(addr)).toHaveLength(1);

    await worker(queue);
    await stateIs(q, id, 'failed');
    // At-most-once: the outcome was unknown, so no second copy; the user can ask for a resend.
    expect((await q.getJob(id))?.failedReason).toMatch(/not sent again/);
    expect(await row(id)).toMatchObject({ status: 'unknown' });
    // No pause needed: the job failed for good above and its first worker is dead.
    expect(to(addr)).toHaveLength(1);
  });

  it('a security notice in the same window is sent again, under the same Message-ID (the cost of at-least-once)', async () => {
    const queue = uniqueName('notify');
    const q = inspect(queue);
    const child = await childWorker(queue);
    const addr = `kill3-${randomUUID()}@example.test`;
    const id = notifyJobId('new_device', randomUUID());
    trap = { at: 'data', onTrap: () => child.kill('SIGKILL') };
    await jobs.enqueue(queue, NOTIFY_JOB, emailJob('new_device', addr), { jobId: id, attempts: 5 });
    await exited(child);
    await worker(queue);
    await stateIs(q, id, 'completed');
    const copies = to(addr);
    expect(copies).toHaveLength(2);
    expect(copies[0]?.messageId).toMatch(/^<n\.[0-9a-f]{32}@threshold\.test>$/);
    expect(copies[1]?.messageId).toBe(copies[0]?.messageId);
    expect(await row(id)).toMatchObject({ status: 'sent' });
  });
});
