import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createRiskEvents } from '../../src/risk/events.ts';
import { addLabel } from '../../src/risk/labels.ts';
import { DEFAULT_POLICY, loadActivePolicy } from '../../src/risk/policy.ts';
import { createPolicyStore } from '../../src/risk/policy-store.ts';
import { createRiskRecorder } from '../../src/risk/recorder.ts';
import { decide } from '../../src/risk/score.ts';

// The embedded default (PGlite) runs the same risk store SQL as Postgres.
describe('risk policies, shadow recording, labels and events on PGlite', () => {
  let db: Db;
  const clock = new ManualClock();
  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
  });
  afterAll(async () => db.close());

  it('stores, activates and shadows versions; records the shadow decision; labels and pages events', async () => {
    const audit = createAudit(db, clock);
    const store = createPolicyStore({ db, clock, audit, cacheMs: 60_000 });
    const harsh = { ...DEFAULT_POLICY, version: 'harsh-1', weights: { ...DEFAULT_POLICY.weights, NEW_DEVICE: 120 } };
    await store.create({ ...DEFAULT_POLICY, version: 'copy-1' }, 'admin');
    await store.create(harsh, 'admin');
    await store.activate('copy-1', 'admin');
    expect((await loadActivePolicy(db)).version).toBe('copy-1');
    await store.setShadow('harsh-1', 'admin');
    expect((await store.list()).shadow).toBe('harsh-1');

    const recorder = createRiskRecorder({ db, clock, policies: store });
    const id = randomUUID();
    await db.query(
      `INSERT INTO login_events (id, flow_id, ip, outcome, decision, policy_version, reasons, created_at)
       VALUES ($1, 'flow1', '203.0.113.7', 'succeeded', 'allow', 'copy-1', '["NEW_DEVICE"]', $2)`,
      [id, new Date(clock.now())],
    );
    // A live decision as the engine makes it: a new device on a network the account knows.
    const facts = { hasHistory: true, deviceKnown: false, networkKnown: true, asnKnown: true, uaFamilyKnown: true, countries: [], lastLocated: null,
      accountFailures: 0, ipFailures: 0, ipAccounts: 0, subnetAccounts: 0, deviceAccounts: 0, ipFailedAccounts: 0, subnetFailedAccounts: 0 };
    const network = { ip: '203.0.113.7', prefix: '203.0.113.0/24', asn: null, org: null, type: 'residential' as const, key: '203.0.113.0/24', tor: false, deniedCidr: null, allowedCidr: null, geo: null };
    const risk = decide({ identityId: null, deviceId: 'dev-1', ip: '203.0.113.7', at: clock.now() }, facts, network, { ...DEFAULT_POLICY, version: 'copy-1' });
    expect(risk).toMatchObject({ decision: 'allow', score: 10 });
    await recorder.recorded('flow1', 'succeeded', risk, { identityId: null, deviceId: 'dev-1' });
    const { rows } = await db.query<{ shadow_decision: string; shadow_score: number }>('SELECT shadow_decision, shadow_score FROM login_events WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ shadow_decision: 'deny', shadow_score: 120 });

    expect(await addLabel(db, { eventId: id, label: 'fraud', source: 'analyst', actor: 'admin', at: new Date(clock.now()) }, audit)).toMatchObject({ strength: 'strong' });
    const events = createRiskEvents(db);
    const page = await events.list({ ip: '203.0.113.0/24', label: 'fraud' }, { limit: 10 });
    expect(page.items.map((e) => [e.id, e.label, e.shadow?.decision])).toEqual([[id, 'fraud', 'deny']]);
    expect((await audit.verify()).ok).toBe(true);
  });
});
