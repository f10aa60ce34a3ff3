import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

type Message = { id?: number; method?: string; params?: any; result?: any; error?: { message: string }; sessionId?: string };
type Waiter = { method: string; sessionId?: string; match: (params: any) => boolean; resolve: (params: any) => void };

/**
 * A real headless Chromium driven over the DevTools protocol on a pipe (no WebSocket, no driver
 * package): enough to load pages, run script in them and watch the network.
 */
export class Chromium {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private waiters: Waiter[] = [];
  private listeners: ((m: Message) => void)[] = [];
  private constructor(
    private proc: ChildProcess,
    private dir: string,
  ) {
    let buf = '';
    (proc.stdio[4] as Readable).on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\0')) >= 0) {
        const m = JSON.parse(buf.slice(0, i)) as Message;
        buf = buf.slice(i + 1);
        this.dispatch(m);
      }
    });
  }

  /**
   * `hostRules`: Chromium's --host-resolver-rules, e.g. "MAP *.sibling.test 127.0.0.1".
   * `secureOrigins`: http origins to treat as https ones (Chromium sends Sec-Fetch-* only to
   * potentially trustworthy origins, as a TLS deployment would be).
   */
  static async launch(hostRules: string, secureOrigins: string[] = []): Promise<Chromium> {
    const dir = mkdtempSync(join(tmpdir(), 'threshold-chromium-'));
    const proc = spawn(
      CHROMIUM_BIN,
      ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', '--remote-debugging-pipe', `--user-data-dir=${dir}`, `--host-resolver-rules=${hostRules}`,
        ...(secureOrigins.length ? [`--unsafely-treat-insecure-origin-as-secure=${secureOrigins.join(',')}`] : []), 'about:blank'],
      { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] },
    );
    // A missing binary is an 'error' event, not an exit: say what to install instead of crashing the run.
    const failed = new Promise<never>((_, reject) =>
      proc.once('error', (e: NodeJS.ErrnoException) => {
        rmSync(dir, { recursive: true, force: true });
        reject(new Error(e.code === 'ENOENT'
          ? `Chromium is not installed (no ${CHROMIUM_BIN}): apt-get install chromium, or set CHROMIUM_BIN to its path`
          : `Chromium could not start (${CHROMIUM_BIN}): ${e.message}`));
      }));
    // Writing to a browser that never started fails with EPIPE; the 'error' above says why.
    (proc.stdio[3] as Writable).on('error', () => {});
    const b = new Chromium(proc, dir);
    await Promise.race([b.send('Browser.getVersion'), failed]);
    return b;
  }

  private dispatch(m: Message) {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error.message));
      else p?.resolve(m.result);
      return;
    }
    for (const l of this.listeners) l(m);
    this.waiters = this.waiters.filter((w) => {
      // `Domain.*` waits for any event of that domain.
      const method = w.method.endsWith('.*') ? m.method?.startsWith(w.method.slice(0, -1)) : w.method === m.method;
      if (!method || (w.sessionId && w.sessionId !== m.sessionId) || !w.match(m.params)) return true;
      w.resolve(m.params);
      return false;
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    const msg = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.proc.stdio[3] as Writable).write(msg + '\0');
    });
  }

  /** Resolves on the next event that matches; register it before causing the event. */
  waitFor(method: string, sessionId: string | undefined, match: (params: any) => boolean = () => true, timeoutMs = 10_000): Promise<any> {
    return new Promise((resolve, reject) => {
      const w: Waiter = { method, sessionId, match, resolve: (p) => (clearTimeout(t), resolve(p)) };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out waiting for ${method}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  onEvent(f: (m: Message) => void) {
    this.listeners.push(f);
  }

  /**
   * A fresh tab with the Page, Network and Runtime domains on; returns its session. `isolated`:
   * in a browser context of its own (its own cookies: another person, or another device).
   */
  async newPage(o: { isolated?: boolean } = {}): Promise<Page> {
    const ctx = o.isolated ? ((await this.send('Target.createBrowserContext')) as { browserContextId: string }).browserContextId : undefined;
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank', ...(ctx ? { browserContextId: ctx } : {}) });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    for (const d of ['Page.enable', 'Network.enable', 'Runtime.enable']) await this.send(d, {}, sessionId);
    return new Page(this, sessionId);
  }

  async close() {
    const exited = new Promise((r) => this.proc.once('exit', r));
    await this.send('Browser.close').catch(() => {});
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SeenRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  status?: number;
}

export class Page {
  /** Every request this tab made, with the headers Chromium really sent. */
  readonly requests = new Map<string, SeenRequest>();
  constructor(
    readonly browser: Chromium,
    readonly sessionId: string,
  ) {
    browser.onEvent((m) => {
      if (m.sessionId !== sessionId) return;
      const p = m.params;
      const r = () => this.requests.get(p.requestId) ?? this.requests.set(p.requestId, { url: '', method: '', headers: {} }).get(p.requestId)!;
      if (m.method === 'Network.requestWillBeSent') Object.assign(r(), { url: p.request.url, method: p.request.method });
      if (m.method === 'Network.requestWillBeSentExtraInfo') {
        const lower = Object.fromEntries(Object.entries(p.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
        Object.assign(r().headers, lower);
      }
      if (m.method === 'Network.responseReceived') r().status = p.response.status;
    });
  }

  send(method: string, params: Record<string, unknown> = {}) {
    return this.browser.send(method, params, this.sessionId);
  }

  /** Loads a URL and waits for its load event; `requests` then holds only what this page caused. */
  async goto(url: string) {
    this.requests.clear();
    const loaded = this.browser.waitFor('Page.loadEventFired', this.sessionId);
    await this.send('Page.navigate', { url });
    await loaded;
  }

  /** Runs script in the page (async allowed) and returns its JSON value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`page script failed: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** The first request to a URL (ending with `suffix`) by method, once its response arrived. */
  async request(method: string, suffix: string, timeoutMs = 10_000): Promise<SeenRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Chromium may report the headers it really sent (requestWillBeSentExtraInfo) after the
      // response: wait for both, or a loaded machine reads a request with no headers yet.
      const hit = [...this.requests.values()].find(
        (x) => x.method === method && x.url.endsWith(suffix) && x.status !== undefined && Object.keys(x.headers).length > 0,
      );
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${method} ${suffix} seen`);
      await this.browser.waitFor('Network.*', this.sessionId, () => true, Math.max(1, deadline - Date.now())).catch(() => {});
    }
  }
}
