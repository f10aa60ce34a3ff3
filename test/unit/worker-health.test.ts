import { afterAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { readiness, startHealthServer } from '../../workers/health-server.ts';

describe('worker probes', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('readiness names every failed or hung check and answers 503; all up is 200', async () => {
    const up = async () => {};
    const fails = async () => {
      throw new Error('connection refused');
    };
    const hangs = () => new Promise<void>(() => {});
    expect(await readiness({ db: up, risk: up })).toEqual({ status: 200, body: { status: 'ok', checks: { db: 'up', risk: 'up' } } });
    const t0 = Date.now();
    const r = await readiness({ db: fails, risk: hangs, notify: up }, 100);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toEqual({ status: 503, body: { status: 'degraded', checks: { db: 'down', risk: 'down', notify: 'up' } } });
  });

  it('serves only GET /health/live and /health/ready; liveness does not depend on the checks', async () => {
    const s = await startHealthServer({ port: 0, host: '127.0.0.1', checks: { db: async () => { throw new Error('down'); } } });
    servers.push(s);
    const base = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'degraded', checks: { db: 'down' } });
    expect((await fetch(`${base}/health/live`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/`)).status).toBe(404);
  });
});
