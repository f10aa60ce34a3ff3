import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/** The repository root: scripts and entry points are named relative to it. */
export const ROOT = resolve(import.meta.dirname, '../..');
/** tsx as a loader, resolved once: works from any cwd (a temp data folder) and keeps one process. */
const TSX_LOADER = import.meta.resolve('tsx');

export interface Proc {
  child: ChildProcess;
  pid: number;
  out(): string;
  err(): string;
  /** Resolves with the first match of `re` in stdout; rejects if the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
  /** SIGTERM (or `signal`) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A TypeScript file of this repository (`src/main.ts`, `scripts/user.ts`, …) or, with `eval`, a
 * module body, in its own Node process — the process itself, not a wrapper, so its pid is the
 * one to freeze or kill. Only `env` is passed (plus PATH and HOME): nothing of the test's own.
 */
export function spawnTs(
  entry: { file: string; args?: string[] } | { eval: string },
  o: { cwd?: string; env?: Record<string, string | undefined>; stdin?: string } = {},
): Proc {
  const args =
    'file' in entry
      ? ['--import', TSX_LOADER, resolve(ROOT, entry.file), ...(entry.args ?? [])]
      : ['--import', TSX_LOADER, '--input-type=module', '-e', entry.eval];
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) env[k] = process.env[k]!;
  for (const [k, v] of Object.entries(o.env ?? {})) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, args, { cwd: o.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.end(o.stdin ?? '');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, out, err })),
  );
  const done = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    pid: child.pid!,
    out: () => out,
    err: () => err,
    exited,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise((res, rej) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            res(m);
          }
        };
        const onExit = () => {
          cleanup();
          rej(new Error(`exited (${child.exitCode ?? child.signalCode}) before ${re}:\n${out}\n${err}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`no ${re} in ${timeoutMs} ms:\n${out}\n${err}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', check);
        child.once('exit', onExit);
        check();
        if (done()) onExit();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (done()) return;
      child.kill(signal);
      await exited;
    },
  };
}
