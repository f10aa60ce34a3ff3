import { Sealer } from '../../src/crypto/seal.ts';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { serve } from '@hono/node-server';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { Queue } from 'bullmq';
import { createBullJobs, redisConnection } from '../../src/jobs/bullmq.ts';
import { openGeo } from '../../src/risk/geo.ts';
import { createRiskScorer } from '../../src/risk/scorer.ts';
import { startRiskWorker } from '../../workers/risk-score.worker.ts';
import { startNotifyWorker } from '../../workers/notify.worker.ts';
import { createNotifier } from '../../src/notify/notifier.ts';
import { buildServices } from '../../src/services.ts';
import { bootstrapAdmin } from '../../src/bootstrap.ts';
import { createApp } from '../../src/http/app.ts';
import type { Clock } from '../../src/clock.ts';
import { assertTestRedis, createTestDb, TEST_REDIS_URL, uniqueName } from './db.ts';

/** Real time plus an offset tests can move forward (lockout expiry, TOTP steps). */
export class OffsetClock implements Clock {
  offset = 0;
  now() {
    return Date.now() + this.offset;
  }
  advance(ms: number) {
    this.offset += ms;
  }
}

export const ADMIN = { email: 'admin@example.test', password: 'correct horse battery staple' };

/**
 * A full Threshold on a real socket: private Postgres schema, BullMQ on the real Redis with its
 * own queue name, and a real risk worker process-local (stoppable).
 */
export async function startTestServer(env: Record<string, string> = {}, opts: { logger?: Logger } = {}) {
  await assertTestRedis();
  const tdb = await createTestDb();
  const queue = uniqueName('risk');
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: tdb.url,
    REDIS_URL: TEST_REDIS_URL,
    RISK_QUEUE: queue,
    NOTIFY_QUEUE: uniqueName('notify'),
    TRUSTED_PROXIES: 'loopback',
    THRESHOLD_MASTER_KEY: randomBytes(32).toString('base64'),
    THRESHOLD_ADMIN_EMAIL: ADMIN.email,
    THRESHOLD_ADMIN_PASSWORD: ADMIN.password,
    LOG_LEVEL: 'silent',
    ...env,
  });
  const clock = new OffsetClock();
  const logger = opts.logger ?? createLogger('silent');
  const jobs = createBullJobs(TEST_REDIS_URL);
  const scorer = createRiskScorer({ db: tdb.db, geo: await openGeo(), config });
  let worker: ReturnType<typeof startRiskWorker> | null = null;
  const startWorker = async () => {
    worker = startRiskWorker({ redisUrl: TEST_REDIS_URL, queueName: queue, scorer });
    await worker.ready; // connected and heartbeat written: readiness counts it from here
  };
  const stopWorker = async () => {
    await worker?.close();
    worker = null;
  };
  await startWorker();
  const notifier = createNotifier(config, tdb.db, { clock });
  const notifyWorker = startNotifyWorker({
    redisUrl: TEST_REDIS_URL,
    queueName: config.NOTIFY_QUEUE,
    deps: { db: tdb.db, email: notifier.email, sms: notifier.sms, clock, open: (s, aad) => new Sealer(config.masterKey!).open(s, aad).toString('utf8') },
  });
  await notifyWorker.ready;
  const services = await buildServices({ config, db: tdb.db, jobs, clock, logger, masterKey: config.masterKey! });
  await bootstrapAdmin(config, services.users, services.audit, () => {}, services.passwordPolicy);
  const app = createApp(services);
  // PORT given: listen there (a test that must know PUBLIC_URL before the server starts, e.g. IdP redirect URIs).
  const server = serve({ fetch: app.fetch, port: Number(env.PORT ?? 0), hostname: '127.0.0.1' });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  let notifyQueue: { q: Queue; conn: ReturnType<typeof redisConnection> } | null = null;
  return {
    url,
    config,
    clock,
    services,
    db: tdb.db,
    dbUrl: tdb.url,
    queue,
    startWorker,
    stopWorker,
    /**
     * Barrier for "nothing (more) will be sent": every notify job enqueued so far is finished.
     * Notices are enqueued inside the request, so after a response this covers its mail.
     */
    async notifyIdle(timeout = 10_000) {
      if (!notifyQueue) {
        const conn = redisConnection(TEST_REDIS_URL);
        conn.on('error', () => {});
        notifyQueue = { conn, q: new Queue(config.NOTIFY_QUEUE, { connection: conn }) };
      }
      // Polled here, not with vi.waitFor: the bench imports this file outside vitest.
      const end = Date.now() + timeout;
      for (;;) {
        const n = await notifyQueue.q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        if (Object.values(n).every((v) => v === 0)) return;
        if (Date.now() > end) throw new Error(`notify jobs still pending after ${timeout} ms: ${JSON.stringify(n)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      if (notifyQueue) {
        await notifyQueue.q.close();
        notifyQueue.conn.disconnect();
      }
      await new Promise<void>((r) => server.close(() => r()));
      await services.close();
      await stopWorker();
      await notifyWorker.close();
      await notifier.close();
      await jobs.close();
      await tdb.drop();
    },
  };
}
export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

/** A minimal browser: a cookie jar and fixed client headers (device, forwarded IP). */
export class Client {
  cookies = new Map<string, string>();
  constructor(
    private base: string,
    public headers: Record<string, string> = {},
  ) {}
  async req(method: string, path: string, body?: unknown, extra: Record<string, string> = {}) {
    const h: Record<string, string> = { ...this.headers, ...extra };
    if (this.cookies.size) h.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      const k = pair.slice(0, i);
      const v = pair.slice(i + 1);
      if (v === '' || /max-age=0/i.test(sc)) this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, headers: res.headers, body: json };
  }
  get = (p: string, h?: Record<string, string>) => this.req('GET', p, undefined, h);
  post = (p: string, b?: unknown, h?: Record<string, string>) => this.req('POST', p, b ?? {}, h);

  /** Start a login flow and submit the password; returns the last response. */
  async passwordLogin(identifier: string, password: string, opts: { returnTokens?: boolean } = {}) {
    const start = await this.post('/auth/login', { returnTokens: opts.returnTokens ?? false });
    if (start.status !== 201) throw new Error(`start failed: ${start.status} ${JSON.stringify(start.body)}`);
    const r = await this.post(`/auth/login/${start.body.id}`, { type: 'password', identifier, password });
    return { ...r, flowId: start.body.id as string };
  }
}

/** The current RFC 6238 code from Debian's oathtool, independent of otplib. */
export function oathtool(secret: string, atMs: number): string {
  try {
    return execFileSync('oathtool', ['--totp', '-b', `--now=@${Math.floor(atMs / 1000)}`, secret], { encoding: 'utf8' }).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('oathtool is not installed: apt-get install oathtool');
    throw e;
  }
}

export const IP = { london: '81.2.69.142', mountainView: '8.8.8.8', sydney: '1.1.1.1', falkenstein: '5.9.0.1' };
export const device = (n: string) => `device-${n}-${randomBytes(8).toString('hex')}`;

/**
 * A client signed in with a password on its own device (London unless told), as most tests
 * begin. Throws with the answer when the login does not finish (`step: done`).
 */
export async function signIn(
  base: string,
  email: string,
  password: string,
  o: { device?: string; ip?: string; returnTokens?: boolean } = {},
) {
  const c = new Client(base, { 'x-forwarded-for': o.ip ?? IP.london, 'x-device-id': o.device ?? device(email) });
  const r = await c.passwordLogin(email, password, { returnTokens: o.returnTokens });
  if (r.status !== 200 || r.body?.step !== 'done') throw new Error(`sign-in of ${email} did not finish: ${r.status} ${JSON.stringify(r.body)}`);
  return { c, body: r.body, token: (r.body.tokens?.access_token ?? '') as string };
}

/** The bootstrap administrator (ADMIN), signed in on a device of its own. */
export async function signInAdmin(t: { url: string }) {
  return (await signIn(t.url, ADMIN.email, ADMIN.password, { device: device('admin') })).c;
}

/** Enrol and confirm TOTP for the signed-in client (codes from oathtool); answers the secret. */
export async function enrolTotp(c: Client, t: { clock: Clock }): Promise<string> {
  const e = await c.post('/auth/mfa/totp');
  if (e.status !== 201) throw new Error(`TOTP enrolment failed: ${e.status} ${JSON.stringify(e.body)}`);
  const ok = await c.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: oathtool(e.body.secret, t.clock.now()) });
  if (ok.status !== 200) throw new Error(`TOTP confirmation failed: ${ok.status} ${JSON.stringify(ok.body)}`);
  return e.body.secret as string;
}
