import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';

/**
 * One process owns an embedded data folder. PGlite is a single-process Postgres: a second
 * process opening the same files (`npm run migrate` beside `npm start`) sees stale pages, loses
 * writes and can leave a folder that no longer opens. The owner holds `DATA_DIR/threshold.lock`;
 * everyone else is refused with the owner's pid and what to do. Real Postgres (DATABASE_URL)
 * needs none of this.
 *
 * The lock file appears atomically with its whole content (written to a private temp file, then
 * hard-linked into place: link(2) fails with EEXIST like O_EXCL, and nobody reads a half-written
 * file). A lock whose process is gone (crash, kill -9, reboot, reused pid) is stale and taken over.
 */
export const LOCK_FILE = 'threshold.lock';

export interface LockOwner {
  pid: number;
  hostname: string;
  /** What holds it: `npm start`, `npm run migrate`, … */
  command: string;
  startedAt: string;
  /** Linux: the boot and the process' start tick, so a reboot or a reused pid reads as stale. */
  bootId?: string;
  procStart?: string;
}

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly owner: LockOwner,
  ) {
    super(
      `The data folder ${dir} is in use by another Threshold process: pid ${owner.pid} on ${owner.hostname} ` +
        `(${owner.command}, since ${owner.startedAt}). The embedded database allows one process at a time: ` +
        `stop that process first, or point this one at its own DATA_DIR; several processes can share one ` +
        `database through DATABASE_URL (PostgreSQL). If that process is certainly gone, delete ${join(dir, LOCK_FILE)}.`,
    );
    this.name = 'DataDirLockedError';
  }
}

const readOr = (f: string): string | undefined => {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    return undefined;
  }
};
const bootId = () => readOr('/proc/sys/kernel/random/boot_id');
/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot (after the `(comm)` field). */
const procStart = (pid: number): string | undefined => {
  const s = readOr(`/proc/${pid}/stat`);
  if (!s) return undefined;
  return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
};

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lock files this process holds: a second open in the same process is refused too. */
const heldHere = new Set<string>();

/** Is the recorded owner still that running process? Unknowable across hosts: then assume yes. */
export function ownerAlive(o: LockOwner, file?: string): boolean {
  if (o.hostname !== hostname()) return true;
  const boot = bootId();
  if (o.bootId && boot && o.bootId !== boot) return false;
  // Our own pid: this process (held) or a previous life of the pid (a container's pid 1 after a restart).
  if (o.pid === process.pid) return file !== undefined && heldHere.has(file);
  if (!pidAlive(o.pid)) return false;
  const start = procStart(o.pid);
  if (o.procStart && start && o.procStart !== start) return false;
  return true;
}

const parse = (text: string): LockOwner | null => {
  try {
    const o = JSON.parse(text) as LockOwner;
    return Number.isInteger(o.pid) && typeof o.hostname === 'string' ? o : null;
  } catch {
    return null;
  }
};

export interface DataLock {
  file: string;
  owner: LockOwner;
  release(): Promise<void>;
}

/**
 * Take the folder for this process or throw DataDirLockedError. `onStale` hears about a lock
 * taken over from a process that is gone.
 */
export async function acquireDataLock(
  dir: string,
  opts: { command: string; onStale?: (previous: LockOwner | null) => void },
): Promise<DataLock> {
  const abs = resolve(dir);
  const file = join(abs, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    command: opts.command,
    startedAt: new Date().toISOString(),
    bootId: bootId(),
    procStart: procStart(process.pid),
  };
  const content = JSON.stringify(owner) + '\n';
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`; // unique even for takers in one process
  await writeFile(tmp, content, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, file);
        heldHere.add(file); // before any await: a racing open in this process must see it held
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue; // released meanwhile
      }
      const prev = parse(text);
      if (prev && ownerAlive(prev, file)) throw new DataDirLockedError(abs, prev);
      // Stale: one process at a time takes it over, holding a short-lived takeover file.
      const takeover = `${file}.takeover`;
      try {
        await link(tmp, takeover);
      } catch {
        // Another process is taking it over; a takeover file left by a crash expires after 10 s.
        const st = await stat(takeover).catch(() => null);
        if (st && Date.now() - st.mtimeMs > 10_000) await unlink(takeover).catch(() => {});
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        continue;
      }
      try {
        if ((await readFile(file, 'utf8').catch(() => null)) === text) {
          await unlink(file);
          opts.onStale?.(prev);
        }
      } finally {
        await unlink(takeover).catch(() => {});
      }
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }

  // Ours from here. Remove it on a clean exit, also one through process.exit() after a failed start.
  const mine = () => readOr(file) === content.trim();
  const onExit = () => {
    if (mine()) {
      try {
        unlinkSync(file);
      } catch {
        /* already gone */
      }
    }
  };
  process.once('exit', onExit);
  let released = false;
  return {
    file,
    owner,
    async release() {
      if (released) return;
      released = true;
      heldHere.delete(file);
      process.removeListener('exit', onExit);
      if (mine()) await unlink(file).catch(() => {});
    },
  };
}
