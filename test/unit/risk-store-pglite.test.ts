import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createRiskEvents } from '../../src/risk/events.ts';
import { addLabel } from '../../src/risk/labels.ts';
import { createPgRiskHistory } from '../../src/risk/history-pg.ts';
import { DEFAULT_POLICY, loadActivePolicy, type PolicyDocument } from '../../src/risk/policy.ts';
import { createPolicyStore } from '../../src/risk/policy-store.ts';
import { createRiskRecorder } from '../../src/risk/recorder.ts';
import { decide, scoreAttempt } from '../../src/risk/score.ts';

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

  it("re-reads the history for a shadow with another velocity window, seeing only rows before the attempt", async () => {
    const store = createPolicyStore({ db, clock, audit: createAudit(db, clock), cacheMs: 0 });
    const live: PolicyDocument = { ...DEFAULT_POLICY, version: 'daily-1' };
    await store.create(live, 'admin');
    await store.create({ ...live, version: 'hourly-1', velocity: { ...live.velocity, windowSeconds: 3600 } }, 'admin');
    await store.activate('daily-1', 'admin');
    await store.setShadow('hourly-1', 'admin');
    const at = clock.now() + 86_400_000;
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries()) await db.query("INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)", [id, `v${i}@example.test`, new Date(0)]);
    const [me, other1, other2, other3] = ids;
    const row = (identity: string, outcome: string, device: string, ms: number, deviceNew: boolean, flow: string | null = null) =>
      db.query(
        `INSERT INTO login_events (id, flow_id, identity_id, device_id, ip, outcome, decision, created_at, net_prefix, net_key, device_new)
         VALUES ($1, $2, $3, $4, '198.51.100.4', $5, $6, $7, '198.51.100.0/24', '198.51.100.0/24', $8)`,
        [randomUUID(), flow, identity, device, outcome, flow ? 'step_up' : null, new Date(ms), deviceNew],
      );
    await row(me, 'succeeded', 'old', at - 3 * 86_400_000, false);
    // 20 hours before the attempt, two other accounts were tried here from devices new to them.
    await row(other1, 'failed', 'x', at - 20 * 3_600_000, true);
    await row(other2, 'failed', 'x', at - 20 * 3_600_000, true);
    const network = { ip: '198.51.100.4', prefix: '198.51.100.0/24', asn: null, org: null, type: 'residential' as const, key: '198.51.100.0/24', tor: false, deniedCidr: null, allowedCidr: null, geo: null };
    const { assessment } = await scoreAttempt({ input: { identityId: me, deviceId: 'new-one', ip: network.ip, at }, history: createPgRiskHistory(db), networks: { describe: () => network }, policy: live });
    expect(assessment).toMatchObject({ decision: 'step_up', reasons: ['IP_VELOCITY', 'NEW_DEVICE', 'KNOWN_NETWORK'] });
    // The event is written (and a third account tried) after the attempt: neither is in the shadow's view.
    await row(other3, 'failed', 'x', at + 500, true);
    await row(me, 'stepped_up', 'new-one', at + 1000, true, 'flow-v');
    const recorder = createRiskRecorder({ db, clock, policies: store });
    await recorder.recorded('flow-v', 'stepped_up', assessment, { identityId: me, deviceId: 'new-one' });
    const { rows } = await db.query('SELECT shadow_policy_version, shadow_decision, shadow_reasons FROM login_events WHERE flow_id = $1', ['flow-v']);
    expect(rows).toEqual([{ shadow_policy_version: 'hourly-1', shadow_decision: 'allow', shadow_reasons: ['NEW_DEVICE', 'KNOWN_NETWORK'] }]);
  });
});
