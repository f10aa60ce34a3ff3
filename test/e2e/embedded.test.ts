import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTs } from '../helpers/processes.ts';

/** `npm start` in `cwd` on a free port, with the environment of a fresh machine (nothing of ours). */
function startEntry(cwd: string, extra: Record<string, string> = {}) {
  const p = spawnTs({ file: 'src/main.ts' }, { cwd, env: { PORT: '0', ...extra } });
  const ready = p.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/).then((m) => ({ port: Number(m[1]), out: p.out() }));
  ready.catch(() => {}); // awaited by the tests that expect a start
  return { child: p.child, ready, exited: p.exited };
}

/** One of the npm scripts (migrate, audit:verify, user:*) in `cwd`, as an operator runs it. */
const runScript = (cwd: string, script: string, args: string[] = []) => spawnTs({ file: script, args }, { cwd }).exited;

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

  it('lets one process own the data folder: a second server and the CLIs are refused, naming the owner; a crashed owner is taken over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'threshold-e2e-'));
    dirs.push(dir);
    const lockFile = join(dir, 'data', 'threshold.lock');
    const first = startEntry(dir);
    const { port } = await first.ready;
    const owner = JSON.parse(await readFile(lockFile, 'utf8')) as { pid: number; command: string };
    expect(owner.command).toBe('npm start');
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);

    const second = await startEntry(dir).exited;
    expect(second.code).toBe(1);
    expect(second.err).toContain('in use by another Threshold process');
    expect(second.err).toContain(`pid ${owner.pid}`);
    expect(second.err).toContain('npm start');

    const [mig, audit, user] = await Promise.all([
      runScript(dir, 'scripts/migrate.ts'),
      runScript(dir, 'scripts/audit-verify.ts'),
      runScript(dir, 'scripts/user.ts', ['create', '--email', 'ops@example.test', '--roles', 'ADMIN']),
    ]);
    expect([mig.code, audit.code, user.code]).toEqual([1, 2, 2]); // audit:verify: 2 = could not check
    for (const r of [mig, audit, user]) expect(r.err).toContain(`pid ${owner.pid}`);
    expect(mig.err).toMatch(/^migrate refused/);
    expect(audit.err).toMatch(/^audit verify refused \(not checked\)/);
    expect(user.err).toMatch(/^refused, nothing changed/);
    // The owner never noticed.
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);

    await stop(first.child, first.exited);
    expect(existsSync(lockFile)).toBe(false); // a clean exit removes it
    const [verified, created] = [await runScript(dir, 'scripts/audit-verify.ts'), await runScript(dir, 'scripts/user.ts', ['create', '--email', 'ops@example.test', '--roles', 'ADMIN'])];
    expect(verified.code).toBe(0);
    expect(verified.out).toMatch(/^audit chain ok: \d+ events/);
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/password \(shown once\): \S+/);
    expect(existsSync(lockFile)).toBe(false);

    // A crash (kill -9: no cleanup) leaves the lock behind; the next start takes it over and says so.
    const crashed = startEntry(dir);
    await crashed.ready;
    const crashedOwner = JSON.parse(await readFile(lockFile, 'utf8')) as { pid: number };
    process.kill(crashedOwner.pid, 'SIGKILL');
    await crashed.exited;
    expect(existsSync(lockFile)).toBe(true);
    const again = startEntry(dir);
    const restarted = await again.ready;
    expect(restarted.out).toContain('took over the data folder lock of a process that is gone');
    expect(restarted.out).toContain(`"previousPid":${crashedOwner.pid}`);
    await stop(again.child, again.exited);
  }, 180_000);
});
