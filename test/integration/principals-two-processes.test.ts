import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTs, type Proc } from '../helpers/processes.ts';
import { TEST_REDIS_URL } from '../helpers/db.ts';
import { ADMIN, Client, IP, signIn, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Issue 11: two real API processes (`src/main.ts`, each its own Node process with its own
 * caches, RBAC snapshot and API-key cache) against one Postgres and one Redis. A key revocation,
 * a rotation, a role change or a session revocation made through one is seen by the other's very
 * next request: no sleep, no retry.
 */
describe('principals across two API processes', () => {
  let t: TestServer;
  const procs: Proc[] = [];
  let a = '';
  let b = '';
  let samId = '';
  const pw = 'sam-has-a-long-password';

  const startApi = async () => {
    const p = spawnTs(
      { file: 'src/main.ts' },
      {
        env: {
          NODE_ENV: 'test',
          DATABASE_URL: t.dbUrl,
          REDIS_URL: TEST_REDIS_URL,
          PORT: '0',
          HOST: '127.0.0.1',
          PUBLIC_URL: t.config.PUBLIC_URL,
          THRESHOLD_MASTER_KEY: t.config.THRESHOLD_MASTER_KEY,
          RISK_QUEUE: t.queue, // the test server's in-process risk worker scores their logins
          NOTIFY_QUEUE: t.config.NOTIFY_QUEUE,
          TRUSTED_PROXIES: 'loopback',
          LOG_LEVEL: 'info',
        },
      },
    );
    procs.push(p);
    const m = await p.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 120_000);
    return `http://127.0.0.1:${m[1]}`;
  };

  beforeAll(async () => {
    t = await startTestServer();
    samId = (await t.services.users.create({ email: 'sam@example.test', password: pw, roles: ['TECHNICIAN'] })).id;
    a = await startApi();
    b = await startApi();
  }, 300_000);
  afterAll(async () => {
    for (const p of procs) await p.stop();
    await t?.close();
  });

  /** The same browser (cookies, device, address) talking to the other process. */
  const over = (c: Client, url: string) => {
    const o = new Client(url, c.headers);
    for (const [k, v] of c.cookies) o.cookies.set(k, v);
    return o;
  };
  const byKey = (url: string, key: string, permission = 'VIEW_CASES') =>
    fetch(`${url}/auth/authorize`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-forwarded-for': IP.london }, body: JSON.stringify({ permission }) }).then((r) => r.status);

  it('a key revoked through A fails at B at once, although B held it verified', async () => {
    const sam = (await signIn(a, 'sam@example.test', pw)).c;
    const k = await sam.post('/api/api-keys', { name: 'deploy', permissions: ['VIEW_CASES'] });
    expect(k.status).toBe(201);
    expect(await byKey(b, k.body.key)).toBe(200);
    expect(await byKey(b, k.body.key)).toBe(200); // held in B's memory now
    expect((await sam.req('DELETE', `/api/api-keys/${k.body.id}`)).status).toBe(204);
    expect(await byKey(b, k.body.key)).toBe(401);
    expect(await byKey(a, k.body.key)).toBe(401);
  });

  it('a rotation through A without overlap: at B the old key fails and the new one works at once', async () => {
    const sam = (await signIn(a, 'sam@example.test', pw)).c;
    const k = await sam.post('/api/api-keys', { name: 'rotating', permissions: ['VIEW_CASES'] });
    expect(await byKey(b, k.body.key)).toBe(200);
    const r = await sam.post(`/api/api-keys/${k.body.id}/rotate`, { overlapSeconds: 0 });
    expect(r.status).toBe(201);
    expect(await byKey(b, k.body.key)).toBe(401);
    expect(await byKey(b, r.body.key)).toBe(200);
  });

  it("a role withdrawn through A is refused by B's next request, for a session and a key alike, and given back at once", async () => {
    const admin = (await signIn(a, ADMIN.email, ADMIN.password)).c;
    const sam = (await signIn(a, 'sam@example.test', pw)).c;
    const samAtB = over(sam, b);
    const k = await sam.post('/api/api-keys', { name: 'roles', permissions: ['VIEW_CASES'] });
    expect((await samAtB.post('/auth/authorize', { permission: 'VIEW_CASES' })).status).toBe(200);
    expect(await byKey(b, k.body.key)).toBe(200);
    expect((await admin.req('DELETE', `/api/users/${samId}/roles?role=TECHNICIAN`)).status).toBe(200);
    expect((await samAtB.post('/auth/authorize', { permission: 'VIEW_CASES' })).status).toBe(403);
    expect(await byKey(b, k.body.key)).toBe(403);
    expect((await admin.req('PUT', `/api/users/${samId}/roles`, { role: 'TECHNICIAN', namespace: 'lab-1' })).status).toBe(200);
    expect((await samAtB.post('/auth/authorize', { permission: 'VIEW_CASES', namespace: 'lab-1' })).status).toBe(200);
    expect((await samAtB.post('/auth/authorize', { permission: 'VIEW_CASES', namespace: 'lab-2' })).status).toBe(403);
    expect((await admin.req('PUT', `/api/users/${samId}/roles`, { role: 'TECHNICIAN' })).status).toBe(200);
    expect((await samAtB.post('/auth/authorize', { permission: 'VIEW_CASES' })).status).toBe(200);
    expect(await byKey(b, k.body.key)).toBe(200);
  });

  it('a session signed out through A is refused at B at once', async () => {
    const sam = (await signIn(a, 'sam@example.test', pw)).c;
    const samAtB = over(sam, b);
    expect((await samAtB.get('/auth/me')).status).toBe(200);
    expect((await sam.post('/auth/logout')).status).toBe(204);
    expect((await samAtB.get('/auth/me')).status).toBe(401);
  });
});
