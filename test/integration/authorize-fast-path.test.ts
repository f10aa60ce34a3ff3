import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServices } from '../../src/services.ts';
import { createApp } from '../../src/http/app.ts';
import { createPgDb } from '../../src/db/pg.ts';
import { createBullJobs } from '../../src/jobs/bullmq.ts';
import { createLogger } from '../../src/logger.ts';
import type { Db } from '../../src/db/db.ts';
import { ADMIN, Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';
import { TEST_REDIS_URL } from '../helpers/db.ts';

/**
 * Issue 9, item 5: a warm bearer authorization is memory lookups (no SQL), and a role change
 * made through one API process is seen by another process's very next authorization.
 */
describe('authorization from the RBAC snapshot and the verified-token cache', () => {
  let t: TestServer;
  let b: { app: ReturnType<typeof createApp>; db: Db; statements: string[]; close(): Promise<void> };
  let token: string;
  let adminId: string;

  beforeAll(async () => {
    t = await startTestServer();
    // Process B: its own pool, services, caches and snapshot, on the same Postgres and Redis.
    const raw = createPgDb(t.dbUrl);
    const statements: string[] = [];
    const db: Db = {
      ...raw,
      query: ((sql: string, params?: unknown[]) => {
        statements.push(sql);
        return raw.query(sql, params as never);
      }) as Db['query'],
    };
    const jobs = createBullJobs(TEST_REDIS_URL);
    const services = await buildServices({ config: t.config, db, jobs, clock: t.clock, logger: createLogger('silent'), masterKey: t.config.masterKey! });
    b = {
      app: createApp(services),
      db,
      statements,
      async close() {
        await services.close();
        await jobs.close();
        await raw.close();
      },
    };
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('admin-fast') });
    const r = await c.passwordLogin(ADMIN.email, ADMIN.password, { returnTokens: true });
    expect(r.body.step).toBe('done');
    token = r.body.tokens.access_token;
    adminId = (await t.db.query<{ id: string }>('SELECT id FROM identities WHERE email = $1', [ADMIN.email])).rows[0].id;
  });
  afterAll(async () => {
    await b?.close();
    await t?.close();
  });

  const authorizeOnB = async (permission: string) =>
    (await b.app.request('/auth/authorize', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ permission }),
    })).status;

  it('a warm bearer authorization runs no SQL statement', async () => {
    expect(await authorizeOnB('MANAGE_USERS')).toBe(200); // warms the token cache and the snapshot
    b.statements.length = 0;
    for (let i = 0; i < 5; i++) expect(await authorizeOnB('MANAGE_USERS')).toBe(200);
    expect(await authorizeOnB('NO_SUCH_PERMISSION')).toBe(403);
    expect(b.statements).toEqual([]);
  });

  it("a role removed through process A is refused by process B's next authorization, and given back at once", async () => {
    expect(await authorizeOnB('MANAGE_USERS')).toBe(200);
    await t.db.query("DELETE FROM user_roles WHERE identity_id = $1 AND role = 'ADMIN'", [adminId]);
    await t.services.rbac.changed(); // what every writer of roles does after its commit
    expect(await authorizeOnB('MANAGE_USERS')).toBe(403);
    await t.db.query("INSERT INTO user_roles (identity_id, role) VALUES ($1, 'ADMIN')", [adminId]);
    await t.services.rbac.changed();
    expect(await authorizeOnB('MANAGE_USERS')).toBe(200);
  });

  it('a session revoked through process A fails at B at once, although B had the token cached', async () => {
    expect(await authorizeOnB('MANAGE_USERS')).toBe(200);
    const sid = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid as string;
    await t.services.sessions.revoke(sid, 'test');
    expect(await authorizeOnB('MANAGE_USERS')).toBe(401);
  });
});

