import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { createCodeService } from '../../src/authn/methods/codes/codes.ts';
import { createSmtpEmailSender } from '../../src/notify/email.ts';
import { createTwilioSmsSender, createWebhookSmsSender } from '../../src/notify/sms.ts';
import { render } from '../../src/notify/templates.ts';
import { DeliveryError, type EmailSender } from '../../src/notify/types.ts';
import { notifyJobId } from '../../workers/queues.ts';
import { notifyProcessor } from '../../workers/notify.worker.ts';
import { createTestDb } from '../helpers/db.ts';

// Real peers on loopback: an SMTP server (smtp-server) and HTTP recorders in the Twilio and
// webhook formats. Nothing is mocked below the adapters.

// ---- SMTP ------------------------------------------------------------------------------------
interface Received {
  from: string;
  to: string[];
  raw: string;
}
const received: Received[] = [];
/** Per test: refuse a recipient with this SMTP reply code. */
let refuseRcpt: number | null = null;
let smtp: SMTPServer;
let smtpPort: number;

/** Just enough MIME to read a nodemailer message: headers, and each part of an alternative. */
function parseMime(raw: string): { headers: Record<string, string>; parts: { type: string; body: string }[] } {
  const split = (s: string) => {
    const i = s.indexOf('\r\n\r\n');
    const head = s.slice(0, i).replace(/\r\n[ \t]+/g, ' ');
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n')) {
      const c = line.indexOf(':');
      headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
    }
    return { headers, body: s.slice(i + 4) };
  };
  const decode = (body: string, cte = '7bit') => {
    if (/quoted-printable/i.test(cte))
      return Buffer.from(
        body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      ).toString('utf8');
    if (/base64/i.test(cte)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    return body;
  };
  const top = split(raw);
  const boundary = /boundary="?([^";]+)"?/i.exec(top.headers['content-type'] ?? '')?.[1];
  if (!boundary) return { headers: top.headers, parts: [{ type: top.headers['content-type'] ?? '', body: decode(top.body, top.headers['content-transfer-encoding']) }] };
  const parts = top.body
    .split(`--${boundary}`)
    .slice(1)
    .filter((p) => !p.startsWith('--'))
    .map((p) => split(p.replace(/^\r\n/, '')))
    .map((p) => ({ type: (p.headers['content-type'] ?? '').split(';')[0] as string, body: decode(p.body, p.headers['content-transfer-encoding']) }));
  return { headers: top.headers, parts };
}

// ---- HTTP recorder ---------------------------------------------------------------------------
interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
const requests: Recorded[] = [];
let respond: (req: Recorded, res: ServerResponse) => void = (_, res) => res.writeHead(500).end();
let http: Server;
let httpBase: string;

let t: Awaited<ReturnType<typeof createTestDb>>;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    logger: false,
    onRcptTo(address, _session, cb) {
      if (refuseRcpt && address.address.startsWith('refuse')) {
        const err = Object.assign(new Error('mailbox unavailable'), { responseCode: refuseRcpt });
        return cb(err);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  smtp.on('error', () => {});
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  smtpPort = (smtp.server.address() as AddressInfo).port;

  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(r);
      respond(r, res);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  t = await createTestDb();
});
afterAll(async () => {
  await new Promise<void>((r) => smtp?.close(r));
  http?.closeAllConnections();
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  await t?.drop();
});
beforeEach(() => {
  received.length = 0;
  requests.length = 0;
  refuseRcpt = null;
});

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('email over SMTP', () => {
  let email: EmailSender;
  beforeAll(() => {
    email = createSmtpEmailSender({ url: `smtp://127.0.0.1:${smtpPort}`, from: 'Threshold <no-reply@threshold.test>', timeoutMs: 5000 });
  });
  afterAll(async () => {
    await email?.close?.();
  });

  it('delivers a login code with plain-text and HTML parts', async () => {
    const m = render('login_code', { code: '305581' });
    const key = notifyJobId('login_code', randomUUID(), 1);
    const r = await email.send({ to: 'ada@example.test', subject: m.subject, text: m.text, html: m.html, idempotencyKey: key });
    expect(received).toHaveLength(1);
    const msg = received[0]!;
    expect(msg.from).toBe('no-reply@threshold.test');
    expect(msg.to).toEqual(['ada@example.test']);
    const { headers, parts } = parseMime(msg.raw);
    expect(headers['subject']).toBe('Your Threshold sign-in code');
    expect(headers['content-type']).toMatch(/^multipart\/alternative/);
    // The Message-ID comes from the job id: a copy sent again carries the same one.
    expect(headers['message-id']).toBe(r.messageId);
    expect(r.messageId).toMatch(/^<n\.[0-9a-f]{32}@threshold\.test>$/);
    const text = parts.find((p) => p.type === 'text/plain')?.body ?? '';
    const html = parts.find((p) => p.type === 'text/html')?.body ?? '';
    expect(/code is (\d{6})\./.exec(text)?.[1]).toBe('305581');
    expect(/<strong>(\d{6})<\/strong>/.exec(html)?.[1]).toBe('305581');
  });

  it('carries a code from the code service to the inbox and back', async () => {
    const codes = createCodeService({ db: t.db, clock: systemClock, pepper: randomBytes(32), ttlSeconds: 600, resendCooldownSeconds: 30, maxAttempts: 5 });
    const flowId = `flow-${randomUUID()}`;
    const issued = await codes.issue({ flowId, identityId: randomUUID(), channel: 'email', destination: 'grace@example.test' });
    const run = notifyProcessor({ db: t.db, email, sms: createWebhookSmsSender({ url: `${httpBase}/unused`, secret: 'x' }) });
    const job = { channel: 'email' as const, to: issued.destination, template: 'login_code' as const, data: { code: issued.code } };
    await run('notify.send', job, notifyJobId('login_code', issued.challengeId, 1));
    expect(received).toHaveLength(1);
    const text = parseMime(received[0]!.raw).parts.find((p) => p.type === 'text/plain')?.body ?? '';
    const code = /code is (\d{6})\./.exec(text)?.[1] ?? '';
    expect(await codes.verify(flowId, code)).toBe('ok');
    expect(await codes.verify(flowId, code)).toBe('invalid');
  });

  it('reports a permanent SMTP refusal as unrecoverable and a transient one as retryable', async () => {
    refuseRcpt = 550;
    const e550 = await email.send({ to: 'refuse@example.test', subject: 's', text: 't', html: '<p>h</p>' }).catch((e: unknown) => e);
    expect(e550).toBeInstanceOf(DeliveryError);
    expect(e550).toMatchObject({ retryable: false, outcome: 'not-sent', status: 550 });
    refuseRcpt = 450;
    const e450 = await email.send({ to: 'refuse@example.test', subject: 's', text: 't', html: '<p>h</p>' }).catch((e: unknown) => e);
    expect(e450).toMatchObject({ retryable: true, outcome: 'not-sent', status: 450 });
    expect(received).toHaveLength(0);
  });

  it('reports an unreachable server as retryable and certainly not sent', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = createSmtpEmailSender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@threshold.test', timeoutMs: 2000 });
    const e = await down.send({ to: 'ada@example.test', subject: 's', text: 't', html: 'h' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ retryable: true, outcome: 'not-sent' });
    await down.close?.();
  });
});

describe('SMS, Twilio-compatible', () => {
  const sid = 'AC0123456789abcdef0123456789abcdef';
  const sender = () => createTwilioSmsSender({ baseUrl: `${httpBase}/`, accountSid: sid, authToken: 'tok-secret', from: '+15005550006', timeoutMs: 3000 });

  it('POSTs the form to the Messages resource with Basic auth and reads the sid', async () => {
    respond = (_, res) => json(res, 201, { sid: 'SM11112222333344445555666677778888', status: 'queued' });
    const body = render('login_code', { code: '777123' }).sms;
    const r = await sender().send({ to: '+447700900123', body });
    expect(r.messageId).toBe('SM11112222333344445555666677778888');
    expect(requests).toHaveLength(1);
    const q = requests[0]!;
    expect(q.method).toBe('POST');
    expect(q.url).toBe(`/2010-04-01/Accounts/${sid}/Messages.json`);
    expect(q.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const [scheme, cred] = (q.headers.authorization ?? '').split(' ');
    expect(scheme).toBe('Basic');
    expect(Buffer.from(cred ?? '', 'base64').toString()).toBe(`${sid}:tok-secret`);
    const form = new URLSearchParams(q.body);
    expect(Object.fromEntries(form)).toEqual({ To: '+447700900123', From: '+15005550006', Body: 'Your Threshold code is 777123. It expires in 10 minutes.' });
  });

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [400, false],
    [401, false],
    [403, false],
  ])('classifies an HTTP %i answer (retryable: %s)', async (status, retryable) => {
    respond = (_, res) => json(res, status, { code: 21211, message: "The 'To' number +447700900123 is not valid", status });
    const e = await sender().send({ to: '+447700900123', body: 'x' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeliveryError);
    expect(e).toMatchObject({ retryable, status, outcome: 'not-sent' });
    // The provider's message (which echoes the number) stays out of our error.
    expect((e as Error).message).not.toContain('+447700900123');
    expect((e as Error).message).toContain('21211');
  });

  it('does not follow a redirect with the credentials', async () => {
    respond = (r, res) => (r.url.startsWith('/elsewhere') ? json(res, 201, { sid: 'SMx' }) : res.writeHead(307, { location: `${httpBase}/elsewhere` }).end());
    const e = await sender().send({ to: '+447700900123', body: 'x' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ retryable: false, status: 307 });
    expect(requests.map((r) => r.url)).toEqual([`/2010-04-01/Accounts/${sid}/Messages.json`]);
  });
});

describe('SMS, signed webhook', () => {
  const secret = 'whsec-7d1f0c9a2b4e';

  it('POSTs {to, body} with an HMAC-SHA256 signature of the exact body', async () => {
    respond = (_, res) => json(res, 202, { id: 'wh-42' });
    const s = createWebhookSmsSender({ url: `${httpBase}/hooks/sms`, secret, timeoutMs: 3000 });
    const r = await s.send({ to: '+15550001111', body: 'Your Threshold code is 246810. It expires in 10 minutes.', idempotencyKey: 'notify.login_code.c1.1' });
    expect(r.messageId).toBe('wh-42');
    const q = requests[0]!;
    expect(q.url).toBe('/hooks/sms');
    expect(q.headers['content-type']).toBe('application/json');
    expect(JSON.parse(q.body)).toEqual({ to: '+15550001111', body: 'Your Threshold code is 246810. It expires in 10 minutes.' });
    expect(q.headers['idempotency-key']).toBe('notify.login_code.c1.1');
    // Verify as a receiver would: recompute over the raw body and compare in constant time.
    const got = String(q.headers['x-threshold-signature'] ?? '');
    expect(got).toMatch(/^sha256=[0-9a-f]{64}$/);
    const want = `sha256=${createHmac('sha256', secret).update(q.body).digest('hex')}`;
    expect(timingSafeEqual(Buffer.from(got), Buffer.from(want))).toBe(true);
    const forged = `sha256=${createHmac('sha256', 'another-secret').update(q.body).digest('hex')}`;
    expect(got).not.toBe(forged);
  });

  it('treats a 5xx as retryable', async () => {
    respond = (_, res) => res.writeHead(502).end('bad gateway');
    const s = createWebhookSmsSender({ url: `${httpBase}/hooks/sms`, secret, timeoutMs: 3000 });
    await expect(s.send({ to: '+15550001111', body: 'x' })).rejects.toMatchObject({ retryable: true, status: 502 });
  });
});
