import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const REFERENCE_CONF = resolve(import.meta.dirname, '../../deploy/nginx/threshold.conf');

/** A TCP port free on loopback right now (for a server that must know its URL before it starts). */
export const freePort = () =>
  new Promise<number>((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });

const hostPort = (url: string) => {
  const u = new URL(url);
  return `${u.hostname}:${u.port}`;
};

function replaceOnce(text: string, re: RegExp, by: string, what: string): string {
  const n = [...text.matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g'))].length;
  if (n !== 1) throw new Error(`reference nginx config: expected one ${what}, found ${n}`);
  return text.replace(re, by);
}

/** The reference config with this test's addresses; everything else exactly as shipped. */
export function renderReferenceConfig(o: { threshold: string; upstream: string; port: number }): string {
  let conf = readFileSync(REFERENCE_CONF, 'utf8');
  conf = replaceOnce(conf, /(upstream threshold \{\s*server )[^;]+;/, `$1${hostPort(o.threshold)};`, 'threshold upstream');
  conf = replaceOnce(conf, /(upstream app \{\s*server )[^;]+;/, `$1${hostPort(o.upstream)};`, 'app upstream');
  conf = replaceOnce(conf, /listen 80;/, `listen 127.0.0.1:${o.port};`, 'listen 80');
  return conf;
}

export interface Nginx {
  url: string;
  dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * A real nginx (the Debian package) in the foreground, single process, everything (pid, logs,
 * temp paths) inside a fresh temp dir, on a free loopback port, running as the current user.
 */
export async function startNginx(o: { threshold: string; upstream: string }): Promise<Nginx> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(o, await freePort());
    } catch (e) {
      lastError = e;
      if (!/Address already in use/.test(String(e))) break;
    }
  }
  throw lastError;
}

async function startOnce(o: { threshold: string; upstream: string }, port: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'threshold-nginx-'));
  const p = (f: string) => join(dir, f);
  writeFileSync(p('threshold.conf'), renderReferenceConfig({ ...o, port }));
  writeFileSync(
    p('nginx.conf'),
    [
      'daemon off;',
      'master_process off;',
      `pid ${p('nginx.pid')};`,
      `error_log ${p('error.log')} info;`,
      'events { worker_connections 256; }',
      'http {',
      `  access_log ${p('access.log')};`,
      `  client_body_temp_path ${p('client_body')};`,
      `  proxy_temp_path ${p('proxy')};`,
      `  fastcgi_temp_path ${p('fastcgi')};`,
      `  uwsgi_temp_path ${p('uwsgi')};`,
      `  scgi_temp_path ${p('scgi')};`,
      `  include ${p('threshold.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-p', `${dir}/`, '-c', p('nginx.conf'), '-e', p('error.log')];
  const check = spawnSync(NGINX_BIN, ['-t', ...args], { encoding: 'utf8' });
  if (check.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    // Say what is missing in words: spawnSync of an absent binary has no status and no stderr.
    if ((check.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
      throw new Error(`nginx is not installed (no ${NGINX_BIN}): apt-get install nginx, or set NGINX_BIN to its path`);
    if (check.error) throw new Error(`nginx -t could not run ${NGINX_BIN}: ${check.error.message}`);
    throw new Error(`nginx -t failed (exit ${check.status ?? check.signal}):\n${check.stderr}`);
  }
  const errorLog = () => (existsSync(p('error.log')) ? readFileSync(p('error.log'), 'utf8') : '');
  const proc: ChildProcess = spawn(NGINX_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let dead = false;
  void exited.then(() => (dead = true));

  const stop = async () => {
    if (!dead) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 5000;
  for (;;) {
    if (dead) {
      const msg = `nginx exited at start:\n${stderr}\n${errorLog()}`;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(msg);
    }
    const up = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen on ${port}:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `http://127.0.0.1:${port}`, dir, errorLog, stop };
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The protected application: answers 200 and records every request it sees. */
export async function startRecordingUpstream() {
  const seen: SeenRequest[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello from the app');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    last: () => seen.at(-1),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
