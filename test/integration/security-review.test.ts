import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../helpers/db.ts';
import { ADMIN, device, signIn, signInAdmin, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

/** Findings of the outside security review, each pinned by the attack that showed it. */
describe('security review', () => {
  let t: TestServer;
  let admin: Client;

  beforeAll(async () => {
    // No back-test worker: queued jobs stay queued, as under a flood the worker cannot keep up with.
    t = await startTestServer({ BACKTEST_QUEUE: uniqueName('backtest') });
    admin = await signInAdmin(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('one account cannot pile up back-test jobs (each up to 8 MiB of stored upload): the excess is 429', async () => {
    const text = '{"not":"an attempt"}\n'.repeat(1000);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => admin.post('/api/risk/backtests', { policy: 'default', input: { type: 'jsonl', text } })),
    );
    const accepted = answers.filter((r) => r.status === 202).length;
    const refused = answers.filter((r) => r.status === 429);
    expect(accepted + refused.length, JSON.stringify(answers.map((r) => r.status))).toBe(12);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(3);
    for (const r of refused) expect(r.body.code).toBe('RATE_LIMITED');
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM risk_backtests WHERE status IN ('queued', 'running')`);
    expect(rows[0].n).toBe(accepted);
  });

  it('the risk events API never gives out a device id (a bearer secret: X-Device-Id makes a known device and opens its bound flows)', async () => {
    const secret = device('victim');
    await signIn(t.url, ADMIN.email, ADMIN.password, { device: secret });
    const list = await admin.get('/api/risk/events?limit=200');
    expect(list.status).toBe(200);
    const mine = list.body.items.filter((e: { deviceId: string | null }) => e.deviceId !== null);
    expect(mine.length).toBeGreaterThan(0);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    for (const e of list.body.items) {
      const one = await admin.get(`/api/risk/events/${e.id}`);
      expect(one.status).toBe(200);
      expect(JSON.stringify(one.body)).not.toContain(secret);
    }
    // Still a stable reference: the same device reads the same in every event.
    const refs = new Set(list.body.items.map((e: { deviceId: string | null }) => e.deviceId).filter(Boolean));
    expect(refs.size).toBe(2); // the admin's first device and the victim's
  });
});
