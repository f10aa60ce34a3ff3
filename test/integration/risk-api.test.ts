import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';
import { DEFAULT_POLICY } from '../../src/risk/policy.ts';
import { deviceRef } from '../../src/flows/binding.ts';

/*
 * The security team's risk API on a real server: Postgres, Redis and a BullMQ risk worker.
 */
describe('risk API (/api/risk)', () => {
  let t: TestServer;
  let admin: Client;
  let adminId = '';
  let adminSecret = '';
  let bobSecret = '';
  let bobId = '';
  const pw = 'bob-has-a-long-password';
  // Explicit documents (not spread from DEFAULT_POLICY) so the expected scores do not move when the default does.
  const doc = (version: string, newDevice: number) => ({
    version,
    weights: { NEW_DEVICE: newDevice, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 50, SUSPICIOUS_IP: 30, FAILED_ATTEMPTS: 15 },
    failedAttempts: { threshold: 3 },
    thresholds: { stepUp: 25, high: 60, deny: 90 },
  });
  const strict = doc('strict-1', 30);
  // A shadow that would deny every new device: it must never be enforced.
  const harsh = doc('harsh-1', 95);

  const totpNow = (secret: string) => {
    t.clock.advance(30_000); // a new time step: codes are single-use per step
    return oathtool(secret, t.clock.now());
  };

  async function freshMfa(c: Client, secret: string) {
    const flow = await c.post('/auth/stepup', { permission: 'MANAGE_RISK' });
    expect(flow.status).toBe(201);
    const done = await c.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: totpNow(secret) });
    expect(done.body.step).toBe('done');
  }

  /** Log bob in from a fresh device; completes a step-up with TOTP when asked. */
  async function bobLogin(ip = IP.london) {
    const c = new Client(t.url, { 'x-forwarded-for': ip, 'x-device-id': device('bob') });
    const start = await c.passwordLogin('bob@example.test', pw);
    const flowId = start.flowId;
    let r: { status: number; body: any } = start;
    const first = r.body.step as string;
    // The person signing in is told why, in words, without figures.
    expect(r.body.risk.message).toEqual(expect.any(String));
    expect(r.body.risk.message).not.toMatch(/\d|score|policy/);
    if (r.body.step === 'choose_method') r = await c.post(`/auth/login/${flowId}`, { type: 'choose', method: 'totp' });
    if (r.body.step === 'totp') r = await c.post(`/auth/login/${flowId}`, { type: 'totp', code: totpNow(bobSecret) });
    expect(r.body.step).toBe('done');
    return { flowId, first, client: c };
  }

  const eventsOf = async (flowId: string) =>
    (
      await t.db.query<{ id: string; outcome: string; decision: string; policy_version: string; shadow_policy_version: string | null; shadow_decision: string | null; shadow_score: number | null; shadow_reasons: string[] | null }>(
        'SELECT id, outcome, decision, policy_version, shadow_policy_version, shadow_decision, shadow_score, shadow_reasons FROM login_events WHERE flow_id = $1 ORDER BY created_at, id',
        [flowId],
      )
    ).rows;

  beforeAll(async () => {
    t = await startTestServer();
    const a = (await t.services.users.byEmail(ADMIN.email))!;
    adminId = a.id;
    const e = await t.services.totp.enrol(a.id, a.email);
    adminSecret = e.secret;
    await t.services.totp.confirm(a.id, e.id, oathtool(adminSecret, t.clock.now()));
    const bob = await t.services.users.create({ email: 'bob@example.test', password: pw, roles: ['PATHOLOGIST'] });
    bobId = bob.id;
    const b = await t.services.totp.enrol(bob.id, bob.email);
    bobSecret = b.secret;
    await t.services.totp.confirm(bob.id, b.id, oathtool(bobSecret, t.clock.now()));
    admin = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('admin') });
    const r = await admin.passwordLogin(ADMIN.email, ADMIN.password);
    expect(r.body.step).toBe('done'); // password only: no fresh MFA yet
  });
  afterAll(async () => t?.close());

  it('refuses non-admins (403) and anonymous callers (401) on every route', async () => {
    const { client: bob } = await bobLogin();
    const anon = new Client(t.url);
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/risk/policies'],
      ['POST', '/api/risk/policies', strict],
      ['GET', '/api/risk/policies/strict-1'],
      ['POST', '/api/risk/policies/strict-1/activate', {}],
      ['POST', '/api/risk/policies/strict-1/shadow', {}],
      ['DELETE', '/api/risk/shadow'],
      ['GET', '/api/risk/shadow/report'],
      ['GET', '/api/risk/events'],
      ['GET', `/api/risk/events/${randomUUID()}`],
      ['POST', `/api/risk/events/${randomUUID()}/labels`, { label: 'fraud' }],
      ['POST', '/api/risk/simulate', { identifier: 'bob@example.test', ip: IP.london }],
    ];
    for (const [m, p, b] of routes) {
      const r = await bob.req(m, p, b);
      expect([m, p, r.status, r.body.code]).toEqual([m, p, 403, 'PERMISSION_DENIED']);
      const a = await anon.req(m, p, b);
      expect([m, p, a.status, a.body.code]).toEqual([m, p, 401, 'UNAUTHENTICATED']);
    }
    const { rows } = await t.db.query("SELECT 1 FROM audit_events WHERE type = 'authorization.denied' AND actor = $1", [bobId]);
    expect(rows.length).toBe(routes.length);
    expect((await t.db.query("SELECT 1 FROM risk_policies WHERE created_by IS NOT NULL")).rowCount).toBe(0);
  });

  it('changing policies needs fresh MFA: an RFC 9470 challenge without it, audited changes with it', async () => {
    const noMfa = await admin.post('/api/risk/policies', strict);
    expect(noMfa.status).toBe(401);
    expect(noMfa.body.code).toBe('STEP_UP_REQUIRED');
    expect(noMfa.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication".*acr_values="urn:threshold:acr:aal2".*max_age=900/);
    const act = await admin.post('/api/risk/policies/strict-1/activate');
    expect(act.status).toBe(401);
    expect(act.body).toMatchObject({ code: 'STEP_UP_REQUIRED', max_age: 900 });
    // Reading needs no step-up.
    expect((await admin.get('/api/risk/policies')).body).toMatchObject({ active: DEFAULT_POLICY.version, shadow: null });

    await freshMfa(admin, adminSecret);
    const created = await admin.post('/api/risk/policies', strict);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ version: 'strict-1', active: false, shadow: false, createdBy: adminId, document: strict });
    expect((await admin.post('/api/risk/policies', harsh)).status).toBe(201);
    // Versions are immutable.
    const again = await admin.post('/api/risk/policies', { ...strict, weights: { ...strict.weights, NEW_DEVICE: 0 } });
    expect([again.status, again.body.code]).toEqual([409, 'CONFLICT']);
    expect((await admin.post('/api/risk/policies', DEFAULT_POLICY)).body.code).toBe('CONFLICT');

    // Fresh MFA ages out after 15 minutes, even if someone loosened the stored requirement.
    t.clock.advance(901_000);
    await t.db.query("UPDATE permissions SET requirement = NULL WHERE name = 'MANAGE_RISK'");
    await t.services.rbac.changed();
    const stale = await admin.post('/api/risk/policies/strict-1/activate');
    await t.db.query(`UPDATE permissions SET requirement = '{"amr": ["mfa"], "maxAge": 900}' WHERE name = 'MANAGE_RISK'`);
    await t.services.rbac.changed();
    expect([stale.status, stale.body.code]).toEqual([401, 'STEP_UP_REQUIRED']);
    expect(stale.headers.get('www-authenticate')).toContain('insufficient_user_authentication');
    expect((await t.db.query("SELECT 1 FROM audit_events WHERE type = 'risk_policy.activated'")).rowCount).toBe(0);
    await freshMfa(admin, adminSecret);
    expect((await admin.post('/api/risk/policies/nope-1/activate')).status).toBe(404);

    const { rows } = await t.db.query<{ type: string; actor: string; subject: string }>(
      "SELECT type, actor, subject FROM audit_events WHERE type LIKE 'risk_policy.%' ORDER BY seq",
    );
    expect(rows).toEqual([
      { type: 'risk_policy.created', actor: adminId, subject: 'strict-1' },
      { type: 'risk_policy.created', actor: adminId, subject: 'harsh-1' },
    ]);
  });

  it('answers an invalid policy with VALIDATION_FAILED naming each field', async () => {
    const bad = {
      ...strict,
      version: 'has space',
      weights: { ...strict.weights, NEW_DEVICE: -1, TOR: 5 },
      thresholds: { stepUp: 50, deny: 10 },
    };
    const r = await admin.post('/api/risk/policies', bad);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.body.code).toBe('VALIDATION_FAILED');
    const fields = r.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['version', 'weights.NEW_DEVICE', 'weights']));
    expect(r.body.detail).toContain('weights.NEW_DEVICE');
    expect(r.body.detail).toContain('TOR');

    const order = await admin.post('/api/risk/policies', { ...strict, version: 'order-1', thresholds: { stepUp: 50, deny: 10 } });
    expect(order.body.errors).toEqual([{ field: 'thresholds.stepUp', message: 'stepUp must not exceed deny' }]);
    const missing = await admin.post('/api/risk/policies', { version: 'empty-1' });
    expect(missing.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(['weights', 'failedAttempts', 'thresholds']));
    const notJson = await admin.req('POST', '/api/risk/policies', undefined, { 'content-type': 'application/json' });
    expect(notJson.status).toBe(400); // empty body → {} → fields missing
    expect((await t.db.query("SELECT 1 FROM risk_policies WHERE version IN ('order-1', 'empty-1')")).rowCount).toBe(0);
  });

  it('shadow: a login records both decisions and enforces only the active one; the report compares them', async () => {
    const set = await admin.post('/api/risk/policies/harsh-1/shadow');
    expect(set.body).toEqual({ shadow: 'harsh-1', previous: null });

    // The active (default) policy allows a new device (10 < 25); the shadow would deny it (95 ≥ 90).
    const login = await bobLogin();
    expect(login.first).toBe('done');
    const [ev] = await eventsOf(login.flowId);
    expect(ev).toMatchObject({
      outcome: 'succeeded',
      decision: 'allow',
      policy_version: DEFAULT_POLICY.version,
      shadow_policy_version: 'harsh-1',
      shadow_decision: 'deny',
      shadow_score: 95,
    });
    expect(ev.shadow_reasons?.[0]).toBe('NEW_DEVICE');

    // Activation propagates to the next login at once; the shadow keeps scoring beside it.
    expect((await admin.post('/api/risk/policies/strict-1/activate')).body).toEqual({ active: 'strict-1', previous: DEFAULT_POLICY.version });
    const stepped = await bobLogin();
    expect(stepped.first).not.toBe('done');
    const evs = await eventsOf(stepped.flowId);
    expect(evs.map((e) => e.outcome)).toEqual(['stepped_up', 'succeeded']);
    for (const e of evs) expect(e).toMatchObject({ decision: 'step_up', policy_version: 'strict-1', shadow_decision: 'deny', shadow_policy_version: 'harsh-1' });

    // The active policy cannot also be the shadow.
    expect((await admin.post('/api/risk/policies/strict-1/shadow')).body.code).toBe('CONFLICT');

    // A known-fraud login: the report shows how each policy treated it.
    expect((await admin.post(`/api/risk/events/${ev.id}/labels`, { label: 'fraud' })).status).toBe(201);
    const report = await admin.get(`/api/risk/shadow/report?from=${encodeURIComponent(new Date(t.clock.now() - 3600_000 * 2).toISOString())}&to=${encodeURIComponent(new Date(t.clock.now() + 60_000).toISOString())}`);
    expect(report.status).toBe(200);
    // One row per login flow, not per event.
    expect(report.body).toMatchObject({
      total: 2,
      agreed: 0,
      shadowVersions: ['harsh-1'],
      activeVersions: [DEFAULT_POLICY.version, 'strict-1'],
      matrix: { allow: { allow: 0, step_up: 0, deny: 1 }, step_up: { allow: 0, step_up: 0, deny: 1 }, deny: { allow: 0, step_up: 0, deny: 0 } },
    });
    expect(report.body.labelled.fraud).toEqual({ active: { allow: 1, step_up: 0, deny: 0 }, shadow: { allow: 0, step_up: 0, deny: 1 } });
    expect(report.body.examples.map((x: { id: string }) => x.id).sort()).toEqual([ev.id, evs[0].id].sort());
    expect(report.body.examples.find((x: { id: string }) => x.id === ev.id).label).toBe('fraud');
    const other = await admin.get(`/api/risk/shadow/report?version=strict-1&from=${encodeURIComponent(new Date(t.clock.now() - 7200_000).toISOString())}`);
    expect(other.body).toMatchObject({ total: 0, agreed: 0, examples: [] });
    expect(report.body.examples[0]).toMatchObject({ shadowDecision: 'deny', shadowReasons: expect.arrayContaining(['NEW_DEVICE']) });
    const badRange = await admin.get('/api/risk/shadow/report?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z');
    expect([badRange.status, badRange.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect((await admin.get('/api/risk/shadow/report?from=yesterday')).body.errors[0].field).toBe('from');
    const tooLong = await admin.get('/api/risk/shadow/report?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z');
    expect([tooLong.status, tooLong.body.errors?.[0]?.field]).toEqual([400, 'from']);

    // Shadow off: the next login records no shadow decision.
    expect((await admin.req('DELETE', '/api/risk/shadow')).status).toBe(204);
    const off = await bobLogin();
    for (const e of await eventsOf(off.flowId)) expect(e).toMatchObject({ shadow_decision: null, shadow_policy_version: null, shadow_score: null });

    // A shadow row whose document no longer parses (written around the API) is skipped once the
    // 5 s cache expires; the login is unaffected.
    await t.db.query("INSERT INTO risk_policies (version, document, active, shadow, created_at) VALUES ('broken-1', '{\"version\":\"broken-1\"}', false, true, now())");
    t.clock.advance(6_000);
    const broken = await bobLogin();
    for (const e of await eventsOf(broken.flowId)) expect(e).toMatchObject({ decision: 'step_up', shadow_decision: null });
    expect((await admin.post('/api/risk/policies/broken-1/activate')).body.code).toBe('VALIDATION_FAILED'); // never enforced
    await t.db.query("DELETE FROM risk_policies WHERE version = 'broken-1'");

    const { rows } = await t.db.query<{ type: string; subject: string; data: Record<string, unknown> }>(
      "SELECT type, subject, data FROM audit_events WHERE type IN ('risk_policy.shadowed', 'risk_policy.activated', 'risk_policy.shadow_cleared') ORDER BY seq",
    );
    expect(rows).toEqual([
      { type: 'risk_policy.shadowed', subject: 'harsh-1', data: { previous: null } },
      { type: 'risk_policy.activated', subject: 'strict-1', data: { previous: DEFAULT_POLICY.version, wasShadow: false } },
      { type: 'risk_policy.shadow_cleared', subject: 'harsh-1', data: {} },
    ]);
    expect((await t.services.audit.verify()).ok).toBe(true);
  });

  it('races: concurrent activations end with exactly one active policy; concurrent labels all land and derive once', async () => {
    const rs = await Promise.all(['harsh-1', 'strict-1', 'harsh-1', 'strict-1'].map((v) => admin.post(`/api/risk/policies/${v}/activate`)));
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const active = await t.db.query<{ version: string }>('SELECT version FROM risk_policies WHERE active');
    expect(active.rows).toHaveLength(1);
    // The audit chain records the activations in the order they took effect: the last one won.
    const last = await t.db.query<{ subject: string }>("SELECT subject FROM audit_events WHERE type = 'risk_policy.activated' ORDER BY seq DESC LIMIT 1");
    expect(last.rows[0].subject).toBe(active.rows[0].version);
    const prevs = await t.db.query<{ previous: string; subject: string }>(
      "SELECT data->>'previous' AS previous, subject FROM audit_events WHERE type = 'risk_policy.activated' ORDER BY seq DESC LIMIT 4",
    );
    // Each activation saw the one before it (no two read the same "previous" under the lock).
    for (let i = 0; i < 3; i++) expect(prevs.rows[i].previous).toBe(prevs.rows[i + 1].subject);
    expect((await admin.post('/api/risk/policies/strict-1/activate')).status).toBe(200);

    const { flowId } = await bobLogin();
    const [a, b] = await eventsOf(flowId);
    const labels = await Promise.all(
      Array.from({ length: 8 }, (_, i) => admin.post(`/api/risk/events/${i % 2 ? a.id : b.id}/labels`, { label: i % 2 ? 'fraud' : 'legit', note: `n${i}` })),
    );
    expect(labels.map((r) => r.status)).toEqual(Array(8).fill(201));
    const { rows } = await t.db.query<{ label: string }>(
      `SELECT l.label FROM login_event_labels l JOIN login_events e ON e.id = l.login_event_id
        WHERE e.flow_id = $1 AND l.strength = 'strong' ORDER BY l.created_at DESC, l.id DESC LIMIT 1`,
      [flowId],
    );
    const current = await t.db.query<{ label: string }>('SELECT DISTINCT label FROM login_events WHERE flow_id = $1', [flowId]);
    expect(current.rows).toEqual([{ label: rows[0].label }]);
    expect((await t.services.audit.verify()).ok).toBe(true);
  });

  it('explains one event: signals and contributions, policy, decision, what the user did next, labels', async () => {
    const { flowId } = await bobLogin(); // strict-1 active: new device → step-up → TOTP
    const [steppedUp, succeeded] = await eventsOf(flowId);
    const r = await admin.get(`/api/risk/events/${steppedUp.id}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      id: steppedUp.id,
      flowId,
      userId: bobId,
      outcome: 'stepped_up',
      decision: 'step_up',
      score: 30,
      policyVersion: 'strict-1',
      contributions: { NEW_DEVICE: 30 },
      next: { stepUp: 'completed', finalOutcome: 'succeeded', factors: ['pwd', 'totp'] },
    });
    expect(r.body.signals).toEqual(
      expect.arrayContaining([
        { name: 'NEW_DEVICE', fired: true, contribution: 30 },
        { name: 'IMPOSSIBLE_TRAVEL', fired: false, contribution: 0 },
      ]),
    );
    expect(r.body.explanation.summary).toMatch(/^stepped up: this device has never completed a sign-in to this account.* \(score 30 under policy strict-1\)$/);
    expect(r.body.reasons[0]).toBe('NEW_DEVICE');
    expect(r.body.explanation.reasons[0]).toEqual({ code: 'NEW_DEVICE', text: 'This device has never completed a sign-in to this account.', direction: 'risk' });
    // The network columns the engine writes, as recorded on the row.
    const net = (await t.db.query<{ asn: number | null; net_type: string | null; net_prefix: string | null }>('SELECT asn, net_type, net_prefix FROM login_events WHERE id = $1', [steppedUp.id])).rows[0];
    expect(net.net_prefix).toMatch(/\/24$/);
    expect(r.body).toMatchObject({ asn: net.asn, netType: net.net_type, netPrefix: net.net_prefix });
    // Every reason the engine recorded, the trust reason too, finds the event.
    expect(r.body.reasons).toContain('KNOWN_NETWORK');
    for (const reason of r.body.reasons as string[]) {
      const found = await admin.get(`/api/risk/events?user=${bobId}&reason=${reason}&decision=step_up&limit=200`);
      expect(found.body.items.map((e: { id: string }) => e.id), reason).toContain(steppedUp.id);
    }
    // The engine's raw observations stay out of the analyst's view.
    expect(r.body.signals.map((x: { name: string }) => x.name)).not.toContain('observed');
    expect(r.body.userMessage).toMatch(/recogni[sz]e this device/);
    expect(r.body.userMessage).not.toMatch(/\d/);
    // A label is about the attempt: the step-up label (on the succeeded event) shows on both events.
    expect(r.body.label).toBe('legit');
    expect(r.body.labels).toEqual([expect.objectContaining({ eventId: succeeded.id, source: 'step_up' })]);

    // The completed step-up with an owned factor is weak evidence the owner was there.
    const s = await admin.get(`/api/risk/events/${succeeded.id}`);
    expect(s.body.label).toBe('legit');
    expect(s.body.labels).toEqual([expect.objectContaining({ label: 'legit', source: 'step_up', strength: 'weak', actor: null })]);
    const audited = await t.db.query<{ actor: string | null; reason: string; data: { source: string } }>(
      "SELECT actor, reason, data FROM audit_events WHERE type = 'risk_event.labelled' AND subject = $1",
      [succeeded.id],
    );
    expect(audited.rows).toEqual([{ actor: null, reason: 'LEGIT', data: expect.objectContaining({ source: 'step_up', strength: 'weak' }) }]);

    expect((await admin.get(`/api/risk/events/${randomUUID()}`)).status).toBe(404);
    expect((await admin.get('/api/risk/events/not-a-uuid')).status).toBe(404);
  });

  it('labels: analysts label events (audited); strong beats weak, then the latest wins; the user report is a fraud label', async () => {
    const { flowId } = await bobLogin();
    const succeeded = (await eventsOf(flowId)).find((e) => e.outcome === 'succeeded')!;
    const fraud = await admin.post(`/api/risk/events/${succeeded.id}/labels`, { label: 'fraud', note: 'session from a known bad actor' });
    expect(fraud.status).toBe(201);
    expect(fraud.body).toMatchObject({ label: 'fraud', source: 'analyst', strength: 'strong', actor: adminId, note: 'session from a known bad actor' });
    expect((await admin.get(`/api/risk/events/${succeeded.id}`)).body.label).toBe('fraud'); // beats the weak step-up legit
    await admin.post(`/api/risk/events/${succeeded.id}/labels`, { label: 'legit' });
    const d = await admin.get(`/api/risk/events/${succeeded.id}`);
    expect(d.body.label).toBe('legit');
    expect(d.body.labels.map((l: { source: string; label: string }) => `${l.source}:${l.label}`)).toEqual(['step_up:legit', 'analyst:fraud', 'analyst:legit']);
    const { rows } = await t.db.query<{ actor: string; subject: string; reason: string }>("SELECT actor, subject, reason FROM audit_events WHERE type = 'risk_event.labelled' AND subject = $1 AND data->>'source' = 'analyst' ORDER BY seq", [succeeded.id]);
    expect(rows).toEqual([
      { actor: adminId, subject: succeeded.id, reason: 'FRAUD' },
      { actor: adminId, subject: succeeded.id, reason: 'LEGIT' },
    ]);

    const bad = await admin.post(`/api/risk/events/${succeeded.id}/labels`, { label: 'fraudulent', extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['extra', 'label']);
    expect((await admin.post(`/api/risk/events/${randomUUID()}/labels`, { label: 'fraud' })).status).toBe(404);
    expect((await t.db.query("SELECT 1 FROM audit_events WHERE type = 'risk_event.labelled' AND subject = $1 AND data->>'source' = 'analyst'", [succeeded.id])).rowCount).toBe(2);

    // The user's "this wasn't me" report lands in the same model as a strong fraud label.
    const token = await t.services.reports.create({ identityId: bobId, sessionId: randomUUID(), loginEventId: succeeded.id });
    expect(await t.services.reports.report(token)).not.toBeNull();
    const after = await admin.get(`/api/risk/events/${succeeded.id}`);
    expect(after.body.label).toBe('fraud');
    expect(after.body.labels.at(-1)).toMatchObject({ label: 'fraud', source: 'user_report', strength: 'strong', actor: bobId });
    // Every event of the attempt carries its current label (back-tests replay the stepped-up one).
    const all = (await eventsOf(flowId)).map((e) => e.id);
    expect(all).toHaveLength(2);
    const fraudIds = (await admin.get(`/api/risk/events?label=fraud&user=${bobId}`)).body.items.map((e: { id: string }) => e.id);
    expect(fraudIds).toEqual(expect.arrayContaining(all));
    expect((await admin.get(`/api/risk/events?label=legit&user=${bobId}`)).body.items.map((e: { id: string }) => e.id)).not.toContain(all[0]);
    const stored = await t.db.query<{ label: string }>('SELECT label FROM login_events WHERE flow_id = $1', [flowId]);
    expect(stored.rows.map((r) => r.label)).toEqual(['fraud', 'fraud']);
  });

  describe('events list', () => {
    const carol = randomUUID();
    const T0 = Date.UTC(2025, 5, 1, 12);
    const seeded: string[] = [];

    beforeAll(async () => {
      await t.db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [carol, 'carol@example.test', new Date(T0 - 86_400_000)]);
      // 40 events, several sharing one timestamp (ties are broken by id), across two subnets.
      for (let i = 0; i < 40; i++) {
        const id = randomUUID();
        seeded.push(id);
        const at = new Date(T0 + Math.floor(i / 4) * 60_000);
        const decision = ['allow', 'step_up', 'deny'][i % 3];
        const reasons = i % 2 ? ['NEW_DEVICE'] : ['SUSPICIOUS_IP', 'NEW_DEVICE'];
        await t.db.query(
          `INSERT INTO login_events (id, flow_id, identity_id, device_id, ip, outcome, signals, policy_version, contributions, score, decision, reasons, created_at)
           VALUES ($1, $2, $3, 'dev', $4, 'denied', $5::jsonb, $6, $7::jsonb, $8, $9, $10::jsonb, $11)`,
          [
            id, `seed${i}`, carol, i < 20 ? `203.0.113.${i}` : `198.51.100.${i}`,
            JSON.stringify({ NEW_DEVICE: true, SUSPICIOUS_IP: i % 2 === 0, details: { deniedCidr: '203.0.113.0/24' } }),
            i < 30 ? 'old-1' : 'old-2', JSON.stringify({ NEW_DEVICE: 10, ...(i % 2 ? {} : { SUSPICIOUS_IP: 30 }) }), i % 2 ? 10 : 40, decision, JSON.stringify(reasons), at,
          ],
        );
      }
      // A row with an address no filter can parse must not break subnet queries.
      await t.db.query("INSERT INTO login_events (id, identity_id, ip, outcome, created_at) VALUES ($1, $2, 'not-an-ip', 'failed', $3)", [randomUUID(), carol, new Date(T0)]);
    });

    const all = async (query: string, limit: number) => {
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: { status: number; body: { items: { id: string; explanation: { summary: string } }[]; nextCursor: string | null } } = await admin.get(
          `/api/risk/events?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(r.status).toBe(200);
        expect(r.body.items.length).toBeLessThanOrEqual(limit);
        for (const e of r.body.items) expect(e.explanation.summary.length).toBeGreaterThan(10);
        ids.push(...r.body.items.map((e) => e.id));
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      return ids;
    };

    it('pages newest first with no duplicates or gaps, even when rows arrive between pages', async () => {
      const expected = (
        await t.db.query<{ id: string }>('SELECT id FROM login_events WHERE identity_id = $1 ORDER BY created_at DESC, id DESC', [carol])
      ).rows.map((r) => r.id);
      expect(expected).toHaveLength(41);
      const ids = await all(`user=${carol}`, 7);
      expect(ids).toEqual(expected);

      // A newer row inserted after page one does not shift later pages.
      const p1 = await admin.get(`/api/risk/events?user=${carol}&limit=10`);
      await t.db.query("INSERT INTO login_events (id, identity_id, ip, outcome, created_at) VALUES ($1, $2, '203.0.113.99', 'failed', $3)", [
        randomUUID(), carol, new Date(T0 + 3600_000),
      ]);
      const p2 = await admin.get(`/api/risk/events?user=${carol}&limit=10&cursor=${p1.body.nextCursor}`);
      expect([...p1.body.items, ...p2.body.items].map((e: { id: string }) => e.id)).toEqual(expected.slice(0, 20));
    });

    it('filters by user (id or email), address, subnet, decision, reason, policy version, time range and label', async () => {
      const q = async (query: string) => (await all(query, 200)).length;
      expect(await q('user=carol@example.test')).toBe(42);
      expect(await q(`user=${carol}&ip=203.0.113.5`)).toBe(1);
      expect(await q(`user=${carol}&ip=203.0.113.0/24`)).toBe(21);
      expect(await q(`user=${carol}&ip=198.51.100.77/16`)).toBe(20); // host bits are masked, as in most tools
      expect(await q(`user=${carol}&decision=deny`)).toBe(13);
      expect(await q(`user=${carol}&reason=SUSPICIOUS_IP`)).toBe(20);
      expect(await q(`user=${carol}&policyVersion=old-2`)).toBe(10);
      expect(await q(`user=${carol}&decision=allow&reason=SUSPICIOUS_IP&policyVersion=old-1`)).toBe(5);
      const from = new Date(T0 + 2 * 60_000).toISOString();
      const to = new Date(T0 + 4 * 60_000).toISOString();
      expect(await q(`user=${carol}&from=${from}&to=${to}`)).toBe(8);
      expect(await q(`user=${carol}&label=none`)).toBe(42);
      await admin.post(`/api/risk/events/${seeded[3]}/labels`, { label: 'fraud' });
      expect(await all(`user=${carol}&label=fraud`, 10)).toEqual([seeded[3]]);
      expect(await q(`user=${carol}&label=none`)).toBe(41);
      expect(await q('user=nobody@example.test')).toBe(0);

      const one = await admin.get(`/api/risk/events?user=${carol}&reason=SUSPICIOUS_IP&limit=1`);
      expect(one.body.items[0].explanation.summary).toMatch(/: the address is inside the deny-listed range 203\.0\.113\.0\/24; this device has never completed a sign-in/);
      expect(one.body.items[0].explanation.reasons[0]).toMatchObject({ code: 'SUSPICIOUS_IP', direction: 'risk' });
    });

    it('rejects a bad cursor, a bad filter or an oversized page with VALIDATION_FAILED', async () => {
      const forged = Buffer.from(JSON.stringify(["2025-01-01T00:00:00.000000Z'; DROP TABLE login_events; --", randomUUID()])).toString('base64url');
      const half = (await admin.get(`/api/risk/events?user=${carol}&limit=2`)).body.nextCursor.slice(0, 20);
      for (const query of [
        'cursor=!!!',
        'cursor=bm90LWpzb24',
        `cursor=${forged}`,
        `cursor=${half}`,
        `cursor=${Buffer.from('[1,2]').toString('base64url')}`,
        'limit=201',
        'limit=0',
        'limit=ten',
        'decision=maybe',
        'ip=203.0.113.0/33',
        'ip=example.com',
        'from=last-week',
        'usr=typo',
        'reason=lower_case',
      ]) {
        const r = await admin.get(`/api/risk/events?${query}`);
        expect([query, r.status, r.body.code]).toEqual([query, 400, 'VALIDATION_FAILED']);
        expect(r.body.errors.length).toBeGreaterThan(0);
      }
      expect((await admin.get('/api/risk/events?cursor=!!!')).body.errors[0].field).toBe('cursor');
      expect((await t.db.query('SELECT 1 FROM login_events')).rowCount).toBeGreaterThan(40);
    });

    it('gives every event an explanation, the unscored ones too', async () => {
      const r = await admin.get('/api/risk/events?limit=200');
      expect(r.body.items.length).toBeGreaterThan(40);
      for (const e of r.body.items) {
        expect(typeof e.explanation.summary).toBe('string');
        expect(e.explanation.summary).toMatch(/^(allowed|stepped up|denied|not scored): /);
      }
      const unscored = r.body.items.find((e: { ip: string }) => e.ip === 'not-an-ip');
      expect(unscored.explanation.summary).toBe('not scored: no risk assessment was recorded');
    });
  });

  it('simulate answers the decision and explanation without writing anything, in any table', async () => {
    const tables = (
      await t.db.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
      )
    ).rows.map((r) => r.table_name);
    expect(tables).toEqual(expect.arrayContaining(['login_events', 'audit_events', 'flows', 'sessions', 'login_event_labels', 'risk_policies']));
    const counts = async () => {
      const out: Record<string, number> = {};
      for (const name of tables) out[name] = Number((await t.db.query<{ n: string }>(`SELECT count(*) AS n FROM "${name}"`)).rows[0].n);
      return out;
    };
    const audit = async () => (await t.db.query<{ hash: string }>('SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1')).rows[0].hash;
    const before = await counts();
    const head = await audit();

    const sim = await admin.post('/api/risk/simulate', { identifier: 'bob@example.test', ip: IP.sydney, deviceId: 'brand-new-device-0001', userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0' });
    expect(sim.status).toBe(200);
    expect(sim.body).toMatchObject({ user: { id: bobId }, policyVersion: 'strict-1', country: 'AU' });
    expect(sim.body.reasons).toEqual(expect.arrayContaining(['NEW_DEVICE', 'NEW_COUNTRY', 'IMPOSSIBLE_TRAVEL']));
    expect(sim.body.decision).toBe('deny'); // 30 + 20 + 50 ≥ 90
    expect(sim.body.explanation.summary).toMatch(/^denied: .*would have travelled \d+ km at [\d.]+ km\/h/);
    expect(sim.body.signals.details.uaFamily).toBe('Firefox/Windows'); // the User-Agent it was given
    expect(sim.body.signals).not.toHaveProperty('observed');
    expect(sim.body.userMessage).not.toMatch(/\d/); // no figures for the person signing in

    // Under another stored version, on the same signals.
    const under = await admin.post('/api/risk/simulate', { identifier: 'bob@example.test', ip: IP.london, deviceId: 'brand-new-device-0001', policyVersion: 'harsh-1' });
    expect(under.body).toMatchObject({ policyVersion: 'harsh-1', decision: 'deny', score: 95 });
    const known = await admin.post('/api/risk/simulate', { identifier: 'nobody@example.test', ip: IP.london, at: new Date(t.clock.now()).toISOString() });
    expect(known.body).toMatchObject({ user: null, decision: 'step_up' });
    expect(known.body.reasons[0]).toBe('NEW_DEVICE');

    expect((await admin.post('/api/risk/simulate', { identifier: 'bob@example.test', ip: 'nowhere' })).body.errors[0].field).toBe('ip');
    expect((await admin.post('/api/risk/simulate', { identifier: 'bob@example.test', ip: IP.london, policyVersion: 'missing-9' })).status).toBe(404);

    expect(await counts()).toEqual(before);
    expect(await audit()).toBe(head);
  });

  it('bodies go through the shared input rule: NUL, lone surrogates and repeated members are 400, never 500', async () => {
    const events = await admin.get('/api/risk/events?limit=1');
    const id = events.body.items[0]?.id as string;
    const cases: [string, unknown][] = [
      ['/api/risk/simulate', { identifier: 'a\u0000b@example.test', ip: IP.sydney }],
      ['/api/risk/simulate', { identifier: 'bob@example.test', ip: IP.sydney, userAgent: 'x\ud800y' }],
      [`/api/risk/events/${id}/labels`, { label: 'fraud', note: 'n\u0000' }],
      ['/api/risk/policies', { ...DEFAULT_POLICY, version: 'nul-1', description: 'bad\u0000' }],
    ];
    for (const [path, b] of cases) {
      const r = await admin.post(path, b);
      expect([path, r.status, r.body.code]).toEqual([path, 400, 'VALIDATION_FAILED']);
    }
    const raw = await fetch(`${t.url}/api/risk/simulate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'x-forwarded-for': IP.london, 'x-device-id': admin.headers['x-device-id'] },
      body: '{"identifier":"bob@example.test","identifier":"eve@example.test","ip":"1.1.1.1"}',
    });
    expect(raw.status).toBe(400);
  });

  it('never shows a device id: the list and the detail name a device by its digest (as the audit does)', async () => {
    // The device id is the browser's device cookie: whoever reads it could present it as that device.
    const dev = device('peek');
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': dev });
    await c.passwordLogin('bob@example.test', pw);
    const list = await admin.get('/api/risk/events?user=bob%40example.test&limit=200');
    expect(list.status).toBe(200);
    const mine = list.body.items.filter((e: any) => e.deviceId === deviceRef(dev));
    expect(mine.length).toBeGreaterThan(0);
    expect(JSON.stringify(list.body)).not.toContain(dev);
    const detail = await admin.get(`/api/risk/events/${mine[0].id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.deviceId).toBe(deviceRef(dev));
    expect(JSON.stringify(detail.body)).not.toContain(dev);
  });
});
