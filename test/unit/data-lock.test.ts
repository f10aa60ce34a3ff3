import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDataLock, DataDirLockedError, LOCK_FILE, type LockOwner } from '../../src/db/data-lock.ts';

const dirs: string[] = [];
const freshDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'threshold-lock-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A pid that existed and is gone. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const writeLock = (dir: string, o: Partial<LockOwner>) =>
  writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), hostname: hostname(), command: 'npm start', startedAt: '2026-01-01T00:00:00Z', ...o }));

describe('data folder lock', () => {
  it('holds the folder: a second taker is refused naming the owner; release frees it', async () => {
    const dir = await freshDir();
    const lock = await acquireDataLock(dir, { command: 'npm start' });
    const owner = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockOwner;
    expect(owner).toMatchObject({ pid: process.pid, hostname: hostname(), command: 'npm start' });
    const err = await acquireDataLock(dir, { command: 'npm run migrate' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    expect((err as Error).message).toContain('stop that process first');
    await lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    await (await acquireDataLock(dir, { command: 'npm run migrate' })).release();
    expect(readdirSync(dir)).toEqual([]); // no temp or takeover files left behind
  });

  it('lets exactly one of many simultaneous takers in', async () => {
    const dir = await freshDir();
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => acquireDataLock(dir, { command: 'x' })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DataDirLockedError);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireDataLock>>>).value.release();
  });

  it('takes over the lock of a process that is gone, once, and says whose', async () => {
    const dir = await freshDir();
    const pid = deadPid();
    await writeLock(dir, { pid });
    const stale: (LockOwner | null)[] = [];
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => acquireDataLock(dir, { command: 'npm start', onStale: (p) => stale.push(p) })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(stale.map((p) => p?.pid)).toEqual([pid]);
    for (const r of results) if (r.status === 'fulfilled') await r.value.release();
  });

  it('treats another boot and a reused pid as gone, another host as alive', async () => {
    const dir = await freshDir();
    await writeLock(dir, { pid: process.pid, bootId: 'some-earlier-boot' });
    await (await acquireDataLock(dir, { command: 'a' })).release();

    // A live process whose start time differs from the recorded one: the pid was reused.
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      await writeLock(dir, { pid: live.pid!, procStart: '1' });
      await (await acquireDataLock(dir, { command: 'b' })).release();
      // The same live process without a recorded start time is alive: refused.
      await writeLock(dir, { pid: live.pid! });
      await expect(acquireDataLock(dir, { command: 'c' })).rejects.toBeInstanceOf(DataDirLockedError);
    } finally {
      live.kill('SIGKILL');
    }

    await writeLock(dir, { hostname: 'another-host.example' });
    const err = await acquireDataLock(dir, { command: 'd' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toContain('another-host.example');
    expect((err as Error).message).toContain(`delete ${join(dir, LOCK_FILE)}`);
  });
});
