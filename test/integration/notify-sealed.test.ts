import { randomBytes } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Sealer } from '../../src/crypto/seal.ts';
import { createBullJobs } from '../../src/jobs/bullmq.ts';
import { createNotifyClient } from '../../src/notify/enqueue.ts';
import type { EmailMessage, EmailSender, SmsMessage, SmsSender } from '../../src/notify/types.ts';
import { notifyAad, type NotifyJob } from '../../workers/queues.ts';
import { notifyProcessor, startNotifyWorker } from '../../workers/notify.worker.ts';
import { createTestDb, TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

/**
 * Codes and recovery links never lie in Redis in clear: notify payloads go through BullMQ sealed
 * under the master key, bound to their job id, and a worker that holds the key refuses clear ones.
 */
describe('sealed notify payloads', () => {
  let tdb: Awaited<ReturnType<typeof createTestDb>>;
  const redis = new Redis(TEST_REDIS_URL);
  const sent: (EmailMessage | SmsMessage)[] = [];
  const sender: EmailSender & SmsSender = { kind: 'capture', send: async (m: EmailMessage | SmsMessage) => (sent.push(m), { messageId: `m-${sent.length}` }) };
  const sealer = new Sealer(randomBytes(32));
  const open = (s: string, aad: string) => sealer.open(s, aad).toString('utf8');
  const job: NotifyJob = { channel: 'email', to: 'ada@example.test', template: 'recovery_link', data: { link: 'https://id.example.test/auth/recovery/f1#code=SECRETLINKCODE0123456789', code: 'SECRETLINKCODE0123456789', ttlMinutes: '30' } };
  beforeAll(async () => {
    tdb = await createTestDb();
  });
  afterAll(async () => {
    redis.disconnect();
    await tdb?.drop();
  });

  it('is sealed in Redis, opened and delivered by the worker', async () => {
    const queue = uniqueName('notify-sealed');
    const jobs = createBullJobs(TEST_REDIS_URL);
    const w = startNotifyWorker({ redisUrl: TEST_REDIS_URL, queueName: queue, deps: { db: tdb.db, email: sender, sms: sender, open } });
    try {
      await w.ready;
      const client = createNotifyClient(jobs, queue, 1, (p, aad) => sealer.seal(p, aad));
      const id = `notify.recovery_link.sealed-${randomBytes(4).toString('hex')}.0`;
      await client.send(job, id);
      await vi.waitFor(() => expect(sent.some((m) => 'text' in m && m.text.includes('SECRETLINKCODE0123456789'))).toBe(true), { timeout: 15_000 });
      // What BullMQ keeps of the job (it keeps completed jobs for a while): nothing readable.
      const raw = await redis.hget(`bull:${queue}:${id}`, 'data');
      expect(raw).toMatch(/^\{"sealed":"v1\./);
      expect(raw).not.toContain('SECRETLINKCODE');
      expect(raw).not.toContain('ada@example.test');
    } finally {
      await w.close();
      await jobs.close();
    }
  });

  it('a worker with the key refuses a clear payload, and one sealed for another job or key', async () => {
    const run = notifyProcessor({ db: tdb.db, email: sender, sms: sender, open });
    const before = sent.length;
    await expect(run('notify.send', job, 'notify.recovery_link.clear.0')).rejects.toThrow(/unsealed/);
    const other = { sealed: sealer.seal(JSON.stringify(job), notifyAad('notify.recovery_link.a.0')) };
    await expect(run('notify.send', other, 'notify.recovery_link.b.0')).rejects.toBeInstanceOf(UnrecoverableError);
    const foreign = { sealed: new Sealer(randomBytes(32)).seal(JSON.stringify(job), notifyAad('notify.recovery_link.c.0')) };
    await expect(run('notify.send', foreign, 'notify.recovery_link.c.0')).rejects.toThrow(/does not open/);
    // And a worker without the key cannot deliver a sealed one (nor guess it is clear).
    const keyless = notifyProcessor({ db: tdb.db, email: sender, sms: sender });
    const mine = { sealed: sealer.seal(JSON.stringify(job), notifyAad('notify.recovery_link.d.0')) };
    await expect(keyless('notify.send', mine, 'notify.recovery_link.d.0')).rejects.toThrow(/no key/);
    expect(sent.length).toBe(before);
  });
});
