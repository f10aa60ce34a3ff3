import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve, join } from 'node:path';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { createTestDb, TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';

/** A port nothing listens on right now (the kernel's pick, released). */
const freePort = () =>
  new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** Production as the README describes it: `npm run build`, then the launcher runs dist/ with plain node. */
describe('production runs compiled JavaScript', () => {
  let tdb: Awaited<ReturnType<typeof createTestDb>>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
    await run(process.execPath, [join(ROOT, 'scripts/copy-assets.mjs')], { cwd: ROOT }); // the rest of `npm run build`
    tdb = await createTestDb();
  }, 120_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    await tdb?.drop();
  });

  function launch(entry: string, env: Record<string, string>) {
    const child = spawn(process.execPath, [join(ROOT, 'scripts/run.mjs'), entry], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const waitFor = (re: RegExp) =>
      new Promise<RegExpExecArray>((res, rej) => {
        const check = () => {
          const m = re.exec(out);
          if (m) res(m);
        };
        child.stdout!.on('data', check);
        void exited.then((code) => rej(new Error(`exited ${code}:\n${out}`)));
        check();
      });
    return { child, exited, waitFor, output: () => out };
  }

  it('the API and the worker start from dist/ and a password login completes', async () => {
    const env = {
      DATABASE_URL: tdb.url,
      REDIS_URL: TEST_REDIS_URL,
      THRESHOLD_MASTER_KEY: randomBytes(32).toString('base64'),
      RISK_QUEUE: uniqueName('risk'),
      NOTIFY_QUEUE: uniqueName('notify'),
      THRESHOLD_ADMIN_EMAIL: 'ops@example.test',
      THRESHOLD_ADMIN_PASSWORD: 'correct horse battery staple',
      SMTP_URL: 'smtp://127.0.0.1:2525',
      PORT: '0',
    };
    const probePort = await freePort();
    const worker = launch('workers/main.ts', { ...env, WORKER_HEALTH_PORT: String(probePort) });
    await worker.waitFor(/worker probes on/);
    // The worker's own probes (deploy/kubernetes points its liveness and readiness here).
    const live = await fetch(`http://127.0.0.1:${probePort}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${probePort}/health/ready`);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { db: 'up', risk: 'up', notify: 'up', backtest: 'up' } });
    expect(ready.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${probePort}/metrics-or-anything`)).status).toBe(404);
    const api = launch('src/main.ts', env);
    const m = await api.waitFor(/"runtime":"(\w+)".*listening on http:\/\/127\.0\.0\.1:(\d+)/);
    expect(m[1]).toBe('compiled');
    const base = `http://127.0.0.1:${m[2]}`;
    const start = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-device-id': 'device-build-test-0001' }, body: '{}' });
    expect(start.status).toBe(201);
    const flow = (await start.json()) as { id: string };
    const r = await fetch(`${base}/auth/login/${flow.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-device-id': 'device-build-test-0001' },
      body: JSON.stringify({ type: 'password', identifier: env.THRESHOLD_ADMIN_EMAIL, password: env.THRESHOLD_ADMIN_PASSWORD }),
    });
    const body = (await r.json()) as { step: string };
    expect(r.status).toBe(200);
    expect(body.step).toBe('done');
  }, 90_000);

  it('the compiled scorer describes public addresses (its data files are in dist/): a back-test of two logins', async () => {
    // Loopback logins never reach the AS classes; a public address does, through src/risk/asn-classes.json.
    const dir = mkdtempSync(join(tmpdir(), 'threshold-build-'));
    const input = join(dir, 'two.jsonl');
    const line = (ip: string, ts: string) => JSON.stringify({ ts, user: 'u1@example.test', ip, deviceId: 'device-build-test-0002', userAgent: 'Mozilla/5.0 Firefox/128.0', passwordCorrect: true });
    writeFileSync(input, `${line('8.8.8.8', '2026-11-01T10:00:00Z')}\n${line('81.2.69.142', '2026-11-01T12:00:00Z')}\n`);
    try {
      const { stdout } = await run(process.execPath, [join(ROOT, 'scripts/run.mjs'), 'scripts/backtest.ts', '--input', input, '--policy', 'default'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production' },
      });
      expect(stdout).toMatch(/policy default-\d+: 2 scored attempts/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses to run TypeScript in production when the compiled entry is missing', async () => {
    const p = launch('scripts/no-such-entry.ts', {});
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/npm run build/);
  });
});
