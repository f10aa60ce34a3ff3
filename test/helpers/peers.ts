import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A real SMTP server on loopback that keeps every message it accepts. */
export async function startSmtp() {
  const messages: { to: string[]; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    /** The newest 6-digit code sent to this address. */
    lastCode(to: string): string | null {
      const m = [...messages].reverse().find((x) => x.to.includes(to));
      const text = m?.raw.replace(/=\r?\n/g, '') ?? '';
      return /\b(\d{6})\b/.exec(text)?.[1] ?? null;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A loopback stand-in for a Twilio-compatible SMS API that records each request. */
export async function startSmsRecorder() {
  const requests: { path: string; auth: string; form: URLSearchParams }[] = [];
  let status = 201;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', auth: req.headers.authorization ?? '', form: new URLSearchParams(Buffer.concat(chunks).toString()) });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status < 300 ? { sid: `SM${requests.length}`, status: 'queued' } : { message: 'provider down' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    setStatus: (s: number) => {
      status = s;
    },
    lastCode(to: string): string | null {
      const r = [...requests].reverse().find((x) => x.form.get('To') === to);
      return /\b(\d{6})\b/.exec(r?.form.get('Body') ?? '')?.[1] ?? null;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
