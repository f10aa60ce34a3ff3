import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');

/** The environment of a fresh machine: no DATABASE_URL, no REDIS_URL, nothing of ours. */
function cleanEnv(extra: Record<string, string> = {}) {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) env[k] = process.env[k]!;
  return { ...env, PORT: '0', ...extra };
}

function startEntry(cwd: string, extra: Record<string, string> = {}) {
  const child = spawn(TSX, [join(ROOT, 'src/main.ts')], { cwd, env: cleanEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const ready = new Promise<{ port: number; out: string }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no start in 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout!.on('data', () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res({ port: Number(m[1]), out });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`exited ${code}:\n${out}\n${err}`));
    });
  });
  ready.catch(() => {}); // awaited by the tests that expect a start
  const exited = new Promise<{ code: number | null; out: string; err: string }>((res) => child.on('exit', (code) => res({ code, out, err })));
  return { child, ready, exited };
}

async function stop(child: ChildProcess, exited: Promise<unknown>) {
  child.kill('SIGTERM');
  await exited;
}

async function passwordLogin(port: number, email: string, password: string) {
  const base = `http://127.0.0.1:${port}`;
  const start = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const flow = (await start.json()) as { id: string };
  // Like a browser: the device cookie set with the flow goes back with it (flows are bound to it).
  const device = start.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith('threshold_device='));
  const r = await fetch(`${base}/auth/login/${flow.id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(device ? { cookie: device } : {}) },
    body: JSON.stringify({ type: 'password', identifier: email, password }),
  });
  return { status: r.status, body: (await r.json()) as any, cookies: r.headers.getSetCookie() };
}

describe('embedded default (npm start on a fresh folder)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('starts on PGlite with in-process jobs, prints the admin once, and completes a password login', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'threshold-e2e-'));
    dirs.push(dir);
    const first = startEntry(dir);
    const { port, out } = await first.ready;
    const m = /email:\s+(\S+)\s+password:\s+(\S+)/.exec(out);
    expect(m).not.toBeNull();
    const [, email, password] = m!;

    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as unknown;
    expect(health).toEqual({ status: 'ok', checks: { db: 'ok', queue: 'ok' } });

    const login = await passwordLogin(port, email, password);
    expect(login.status).toBe(200);
    expect(login.body.step).toBe('done');
    expect(login.body.session.amr).toEqual(['pwd']);
    expect(login.body.risk.reasons).toEqual(['NEW_DEVICE']); // scored by the in-process risk job
    expect(login.cookies.some((c) => c.startsWith('threshold_session='))).toBe(true);
    expect((await stat(join(dir, 'data', 'pglite'))).isDirectory()).toBe(true);
    expect(((await stat(join(dir, 'data', 'master.key'))).mode & 0o077)).toBe(0);
    await stop(first.child, first.exited);

    // A restart keeps the data: the admin is not created or printed again and still signs in.
    const second = startEntry(dir);
    const again = await second.ready;
    expect(again.out).not.toMatch(/password:/);
    expect((await passwordLogin(again.port, email, password)).body.step).toBe('done');
    await stop(second.child, second.exited);
  }, 120_000);

  it('refuses to start on a bad setting and names the variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'threshold-e2e-'));
    dirs.push(dir);
    const bad = startEntry(dir, { PORT: 'eighty', LOCKOUT_THRESHOLD: '1000' });
    const res = await bad.exited;
    expect(res.code).toBe(1);
    expect(res.err).toContain('PORT');
    expect(res.err).toContain('LOCKOUT_THRESHOLD');
  }, 60_000);
});
