import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildServices } from '../../src/services.ts';
import { createApp } from '../../src/http/app.ts';
import { createPgDb } from '../../src/db/pg.ts';
import { createBullJobs } from '../../src/jobs/bullmq.ts';
import { createLogger } from '../../src/logger.ts';
import type { Db, Queryable } from '../../src/db/db.ts';
import { ADMIN, device, startTestServer, type TestServer } from '../helpers/server.ts';
import { TEST_REDIS_URL } from '../helpers/db.ts';

/**
 * Issue 9 item 2: the SQL budget of a password login with no step-up (flow start + password
 * event), in the API process (the risk worker's one history query is the worker's). A change
 * that adds a statement fails here until the budget is raised on purpose.
 */
describe('SQL budget of a password login', () => {
  let t: TestServer;
  let app: ReturnType<typeof createApp>;
  const statements: string[] = [];
  let close: () => Promise<void>;
  beforeAll(async () => {
    t = await startTestServer();
    const raw = createPgDb(t.dbUrl);
    const wrap = (q: Queryable): Queryable => ({
      ...q,
      query: ((sql: string, params?: unknown[]) => {
        statements.push(sql.replace(/\s+/g, ' ').slice(0, 90));
        return q.query(sql, params as never);
      }) as Queryable['query'],
    });
    const db: Db = { ...raw, ...wrap(raw), tx: ((fn: (q: Queryable) => Promise<unknown>) => { statements.push('BEGIN'); return raw.tx((q) => fn(wrap(q))); }) as Db['tx'] };
    const jobs = createBullJobs(TEST_REDIS_URL);
    const services = await buildServices({ config: t.config, db, jobs, clock: t.clock, logger: createLogger('silent'), masterKey: t.config.masterKey! });
    app = createApp(services);
    await vi.waitFor(() => expect(services.limits.redis?.status).toBe('ready'));
    close = async () => { await services.close(); await jobs.close(); await raw.close(); };
  });
  afterAll(async () => { await close?.(); await t?.close(); });

  it('is at most 14 statements in 2 transactions, audited exactly as before', async () => {
    const h = { 'content-type': 'application/json', 'x-device-id': device('budget') };
    const env = { incoming: { socket: { remoteAddress: '127.0.0.1' } } };
    // The second login is the one measured: the first warms signing keys, the RBAC snapshot and caches.
    for (let i = 0; i < 2; i++) {
      statements.length = 0;
      const s = await app.request('/auth/login', { method: 'POST', headers: h, body: '{}' }, env);
      const id = ((await s.json()) as { id: string }).id;
      const r = await app.request(`/auth/login/${id}`, { method: 'POST', headers: h, body: JSON.stringify({ type: 'password', identifier: ADMIN.email, password: ADMIN.password }) }, env);
      if (r.status !== 200) throw new Error(await r.text());
    }
    const transactions = statements.filter((x) => x === 'BEGIN').length;
    const queries = statements.filter((x) => x !== 'BEGIN');
    expect({ queries: queries.length, transactions }, queries.join('\n')).toEqual({ queries: 14, transactions: 2 });
    // Audited as before: the risk decision, the success and the session, in one batch.
    const { rows } = await t.db.query<{ type: string }>("SELECT type FROM audit_events WHERE type IN ('risk.decided', 'login.succeeded', 'session.created') ORDER BY seq DESC LIMIT 3");
    expect(rows.map((r) => r.type).reverse()).toEqual(['risk.decided', 'login.succeeded', 'session.created']);
  });
});
