/**
 * Risk API query cost (not a vitest test): `npx tsx test/bench/risk-api.ts` (N=100000 events by
 * default, 500 users, every event scored with a shadow decision) on a private schema of the test
 * Postgres. Prints ms per call of the events list (first page, a cursor page, by user, by subnet,
 * by decision + reason) and of the shadow report over the whole table and over one day.
 */
import { randomUUID } from 'node:crypto';
import { createTestDb } from '../helpers/db.ts';
import { createRiskEvents } from '../../src/risk/events.ts';
import { shadowReport } from '../../src/risk/shadow-report.ts';

const N = Number(process.env.N ?? 100000);
const t = await createTestDb();
const T0 = Date.UTC(2026, 0, 1);
const users = Array.from({ length: 500 }, () => randomUUID());
for (const u of users) await t.db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, now())', [u, `${u}@x.test`]);
const t0 = performance.now();
await t.db.query(
  `INSERT INTO login_events (id, flow_id, identity_id, device_id, ip, outcome, signals, policy_version, contributions, score, decision, reasons,
                             shadow_policy_version, shadow_decision, shadow_score, shadow_reasons, created_at)
   SELECT gen_random_uuid(), 'f' || g, ($2::uuid[])[1 + g % 500], 'd' || (g % 900), '10.' || (g % 200) || '.' || (g % 250) || '.' || (g % 7),
          'succeeded', '{"NEW_DEVICE":true,"details":{"hasHistory":true}}', 'default-2', '{"NEW_DEVICE":10}', 10,
          (ARRAY['allow','step_up','deny'])[1 + g % 3], '["NEW_DEVICE"]',
          'shadow-1', (ARRAY['allow','step_up','deny'])[1 + (g / 3) % 3], 30, '["NEW_DEVICE"]',
          to_timestamp($3::double precision / 1000 + g)
     FROM generate_series(1, $1::int) g`,
  [N, users, T0],
);
await t.db.query('ANALYZE login_events');
console.log(`seeded ${N} events in ${(performance.now() - t0).toFixed(0)} ms`);
const ev = createRiskEvents(t.db);
const time = async (name: string, f: () => Promise<unknown>, runs = 20) => {
  await f();
  const s = performance.now();
  for (let i = 0; i < runs; i++) await f();
  console.log(`${name}: ${((performance.now() - s) / runs).toFixed(1)} ms/op`);
};
let cursor: string | undefined;
await time('events page 1 (limit 50, no filter)', () => ev.list({}, { limit: 50 }));
const p1 = await ev.list({}, { limit: 200 });
cursor = p1.nextCursor!;
await time('events page 2 via cursor (limit 200)', () => ev.list({}, { limit: 200, cursor }));
await time('events by user (limit 50)', () => ev.list({ user: users[7] }, { limit: 50 }));
await time('events by subnet /16 (limit 50)', () => ev.list({ ip: '10.7.0.0/16' }, { limit: 50 }), 5);
await time('events by decision+reason (limit 50)', () => ev.list({ decision: 'deny', reason: 'NEW_DEVICE' }, { limit: 50 }));
await time('shadow report over all rows', () => shadowReport(t.db, { from: new Date(T0), to: new Date(T0 + N * 1000 + 1000) }), 3);
await time('shadow report over one day', () => shadowReport(t.db, { from: new Date(T0), to: new Date(T0 + 86_400_000) }), 5);
await t.drop();
