import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IP, signIn, signInAdmin, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

/**
 * Adversarial review: an API key must stop the moment the people behind it are shut out — the
 * identity it stands for (disabled, locked, deleted) and the creator whose grants bound it — in
 * every process at once, even when the key's record is held in the verifier's cache.
 */
describe('API keys of shut-out identities', () => {
  let t: TestServer;
  let admin: Client;
  const pw = 'a-long-enough-password';
  const ids: Record<string, string> = {};

  const call = async (key: string) => {
    const r = await fetch(`${t.url}/auth/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': IP.london, 'x-api-key': key },
      body: JSON.stringify({ permission: 'VIEW_CASES' }),
    });
    return r.status;
  };
  const keyOf = async (c: Client, body: Record<string, unknown> = {}) => {
    const r = await c.post('/api/api-keys', { name: 'k', permissions: ['VIEW_CASES'], ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.key as string;
  };

  beforeAll(async () => {
    t = await startTestServer({ API_KEY_FAILURES_PER_IP: '1000' });
    for (const name of ['kim', 'lou', 'max', 'svc', 'mgr']) ids[name] = (await t.services.users.create({ email: `${name}@example.test`, password: pw, roles: ['TECHNICIAN'] })).id;
    await t.db.query(`INSERT INTO user_permissions (identity_id, permission, namespace) VALUES ($1, 'MANAGE_API_KEYS', '')`, [ids.mgr]);
    await t.services.rbac.changed();
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  for (const [who, action, done] of [['kim', 'disable', 'disabled'], ['lou', 'lock', 'locked'], ['max', 'delete', 'deleted']] as const) {
    it(`a key stops at once when its identity is ${done} by an administrator, although its record is cached`, async () => {
      const { c } = await signIn(t.url, `${who}@example.test`, pw);
      const key = await keyOf(c);
      expect(await call(key)).toBe(200);
      expect(await call(key)).toBe(200); // now held in the verifier's cache
      const r = action === 'delete' ? await admin.req('DELETE', `/api/users/${ids[who]}`) : await admin.post(`/api/users/${ids[who]}/${action}`);
      expect(r.status).toBeLessThan(300);
      expect(await call(key)).toBe(401);
    });
  }

  it("a key made for a service stops when its creator is disabled (the creator saw the secret), and works again when enabled", async () => {
    const { c } = await signIn(t.url, 'mgr@example.test', pw);
    const key = await keyOf(c, { identityId: ids.svc });
    expect(await call(key)).toBe(200);
    expect((await admin.post(`/api/users/${ids.mgr}/disable`)).status).toBe(200);
    expect(await call(key)).toBe(401);
    // The refusal's audit is written beside the answer, not before it.
    await vi.waitFor(async () => {
      const refused = await t.db.query<{ reason: string }>(`SELECT reason FROM audit_events WHERE type = 'api_key.refused' AND actor = $1`, [ids.svc]);
      expect(refused.rows.map((r) => r.reason)).toContain('CREATOR_INACTIVE');
    }, { timeout: 10_000, interval: 100 });
    expect((await admin.post(`/api/users/${ids.mgr}/enable`)).status).toBe(200);
    t.clock.advance(31_000); // enabling is not urgent: seen within the cache's 30 s
    expect(await call(key)).toBe(200);
  });
});
